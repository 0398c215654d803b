"""The receiver behind a real uvicorn socket; with the emulator, its real deliveries end to end."""
from __future__ import annotations

import collections
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from contextlib import contextmanager

import dlt
import httpx
import pytest
import requests
import uvicorn

from pipelines.webhooks import (
    DuckDBWebhookEventStore,
    WebhookEventStore,
    connector_sync_trigger,
    create_app,
    resources_for_event,
)
from server_helpers import serve_in_thread

SECRET = "whsec_e2e_" + "s" * 24
PATH = "/webhooks/autosync"


@contextmanager
def serve(app):
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port in a thread; yield its root URL."""
    with serve_in_thread(lambda port: uvicorn.Config(app, log_level="warning", lifespan="on")) as port:
        yield f"http://127.0.0.1:{port}"


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, resources, shop_ids):
        self.calls.append((set(resources), set(shop_ids)))


def test_webhooks_over_a_real_socket(tmp_path):
    store = DuckDBWebhookEventStore(str(tmp_path / "warehouse.duckdb"))
    recorder = Recorder()
    app = create_app(SECRET, store, recorder, debounce_seconds=0.05)
    body = json.dumps({"id": "evt_sock", "event": "appointment.created", "created_at": "2025-03-01T10:00:00Z",
                       "shop_id": 5, "data": {"id": 3, "updated_at": "2025-03-01T10:00:00Z"}}).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    with serve(app) as root_url:
        with httpx.Client(base_url=root_url, timeout=10) as http:
            assert http.post(PATH, content=body, headers={"X-AutoSync-Signature": signature}).status_code == 200
            assert http.post(PATH, content=body, headers={"X-AutoSync-Signature": signature}).json()["duplicate"]
            assert http.post(PATH, content=body, headers={"X-AutoSync-Signature": "0" * 64}).status_code == 403
        assert app.state.batcher.flush(timeout=10)
    assert store.event_ids() == ["evt_sock"]
    assert recorder.calls == [({"appointments"}, {5})]


# -- against the emulator's real, signed deliveries --------------------------------------------
emulator_module = pytest.importorskip("autosync_emulator")
ALL_EVENTS = list(__import__("autosync_emulator.webhooks", fromlist=["EVENTS"]).EVENTS)


class FlakyStore(WebhookEventStore):
    """Makes the emulator retry: the 2nd and 5th new event fail once (503); the 3rd is stored
    but answered after the sender's timeout, so the retry is a true replay of a stored event.
    The test sets the writer's batches to one event, so each failure hits one delivery."""

    def __init__(self, path: str, slow_seconds: float):
        super().__init__(dlt.destinations.duckdb(path))
        self.slow_seconds = slow_seconds
        self.attempts: collections.Counter = collections.Counter()
        self.order: list[str] = []
        self.lock = threading.Lock()

    def insert_many(self, events):
        (event,) = list(events)
        with self.lock:
            self.attempts[event.event_id] += 1
            if event.event_id not in self.order:
                self.order.append(event.event_id)
            rank, attempt = self.order.index(event.event_id) + 1, self.attempts[event.event_id]
        if rank in (2, 5) and attempt == 1:
            raise OSError("simulated storage outage")
        stored = super().insert_many([event])
        if rank == 3 and attempt == 1:
            time.sleep(self.slow_seconds)
        return stored


def subscribe(emu, url: str) -> None:
    response = requests.post(
        emu.base_url + "/webhooks", json={"url": url, "events": ALL_EVENTS, "secret": SECRET},
        headers={"Authorization": f"Bearer {emu.api_key}"}, timeout=10,
    )
    assert response.status_code == 201, response.text


def wait_for_deliveries(emu, timeout: float = 60) -> None:
    # pending() counts queued, in-flight and scheduled retries: 0 means every event was answered
    # 2xx or ran out of retries.
    deadline = time.monotonic() + timeout
    while emu.core.webhooks.pending():
        assert time.monotonic() < deadline, "the emulator still has deliveries pending"
        time.sleep(0.05)


def test_webhooks_emulator_deliveries_stored_once_despite_retries(tmp_path):
    from autosync_emulator import Emulator

    recorder = Recorder()
    with Emulator(seed=21, shops=2, work_orders=15, webhook_retry_base_seconds=0.05,
                  webhook_timeout_seconds=0.5) as emu:
        store = FlakyStore(str(tmp_path / "warehouse.duckdb"), slow_seconds=1.0)
        app = create_app(SECRET, store, recorder, debounce_seconds=0.1)
        app.state.writer.max_batch = 1
        with serve(app) as root_url:
            subscribe(emu, root_url + PATH)
            # Every emit() numbers an event (evt_<seed><seq>), so the sequence counts what was emitted.
            seq_before = emu.core.backend.event_seq
            emu.advance(hours=1)
            emitted = emu.core.backend.event_seq - seq_before
            wait_for_deliveries(emu)
            assert app.state.batcher.flush(timeout=10)
        log = emu.webhook_deliveries()

    delivered_ids = {entry["event_id"] for entry in log}
    stored_ids = store.event_ids()
    assert emitted >= 5, "an hour of activity should produce a handful of events"
    assert len(delivered_ids) == emitted
    assert len(stored_ids) == len(set(stored_ids))  # no duplicates
    assert set(stored_ids) == delivered_ids  # nothing lost
    # Every event ended answered 2xx; the three we made fail were retried.
    final = {entry["event_id"]: entry["outcome"] for entry in log}
    assert all(outcome == 200 for outcome in final.values()), final
    outcomes = collections.Counter(entry["outcome"] for entry in log)
    # One writer stores deliveries in order, so a delivery queued behind the slow write may time
    # out as well; its retry is then a replay too, and still ends stored once and answered 200.
    assert outcomes[503] == 2 and outcomes["timeout"] >= 1
    # The timed-out one was a replay of a stored event: delivered twice, stored once.
    replayed = store.order[2]
    assert [e["outcome"] for e in log if e["event_id"] == replayed] == ["timeout", 200]
    assert store.attempts[replayed] == 2
    # The syncs asked for exactly the resources and shops the events touched.
    rows = store._execute(f"SELECT event, shop_id FROM {store.qualified_table}")
    assert set().union(*(call[0] for call in recorder.calls)) == set().union(
        *(resources_for_event(event) for event, _ in rows))
    assert set().union(*(call[1] for call in recorder.calls)) == {shop_id for _, shop_id in rows}


@pytest.mark.slow  # two connector runs (a full sync, then the triggered one): ~10 s
def test_webhooks_emulator_events_trigger_an_incremental_sync(tmp_path, monkeypatch, caplog):
    """Deliveries trigger pipelines.run for the touched resources; those tables then equal the truth."""
    from autosync_emulator import Emulator
    from pipelines import run
    from pipelines.engine import Target
    from source_helpers import compare_with_truth

    caplog.set_level(logging.INFO, logger="pipelines.webhooks")
    warehouse = str(tmp_path / "warehouse.duckdb")
    destination_args = ["--destination", "duckdb", "--duckdb-path", warehouse,
                        "--pipelines-dir", str(tmp_path / "dlt")]
    with Emulator(seed=23, shops=2, work_orders=6, webhook_retry_base_seconds=0.05) as emu:
        monkeypatch.setenv("SOURCES__AUTOSYNC__API_KEY", emu.api_key)  # never a flag: argv shows in ps
        source_args = ["--base-url", emu.base_url]
        assert run.main([*source_args, *destination_args, "--no-dbt"]) == 0  # the initial full sync

        syncs = []
        trigger = connector_sync_trigger(Target("duckdb", duckdb_path=warehouse, pipelines_dir=str(tmp_path / "dlt")),
                                         base_url=emu.base_url)
        gate = threading.Event()  # holds the first sync until the test has seen the stale tables

        def recording_trigger(resources, shop_ids):
            assert gate.wait(60)
            syncs.append((set(resources), set(shop_ids)))
            trigger(resources, shop_ids)

        pipeline = dlt.pipeline(pipeline_name="autosync", destination=dlt.destinations.duckdb(warehouse),
                                dataset_name="autosync_raw", pipelines_dir=str(tmp_path / "dlt"))
        store = DuckDBWebhookEventStore(warehouse)
        app = create_app(SECRET, store, recording_trigger, debounce_seconds=0.2)
        with serve(app) as root_url:
            subscribe(emu, root_url + PATH)
            emu.advance(hours=2)
            truth = emu.truth()
            wait_for_deliveries(emu)
            stale = compare_with_truth(pipeline, truth, resources=["work_orders", "payments"])
            gate.set()
            assert app.state.batcher.flush(timeout=120)

    # Without the triggered sync the warehouse would be behind (so the check below can fail).
    assert stale, "two hours of activity should have changed work orders or payments"
    assert syncs, "the deliveries should have triggered a sync"
    # the receiver says what each triggered sync loaded, not only that one started
    assert re.search(r"the triggered sync of \[.*\] for shops \[.*\] loaded [1-9]\d* rows \(.*work_orders \d+", caplog.text)
    touched = set().union(*(resources for resources, _ in syncs))
    stored_events = {row[0] for row in store._execute(f"SELECT event FROM {store.qualified_table}")}
    assert touched == set().union(*(resources_for_event(name) for name in stored_events))
    problems = compare_with_truth(pipeline, truth, resources=sorted(touched))
    assert not problems, "tables the webhooks touched differ from the truth:\n" + "\n".join(problems)

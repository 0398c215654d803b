"""The webhook receiver: signature, dedupe, storage, out-of-order deliveries, the sync trigger.

One coherent thing, over 400 lines: the receiver's behaviour as a sender sees it, one request at a
time (the flood, fuzz and limits live in their own files).
"""
from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import logging
import subprocess
import sys
import threading
import time
import uuid

import pytest
from starlette.testclient import TestClient

from pipelines import webhooks
from pipelines.webhooks import (
    DuckDBWebhookEventStore,
    SyncTriggerBatcher,
    WebhookEvent,
    connector_sync_trigger,
    create_app,
)

SECRET = "whsec_test_" + "k" * 24
PATH = "/webhooks/autosync"


def sign(body: bytes, secret: str = SECRET) -> str:
    # Written out here, independently of the module, so a wrong algorithm there fails the tests.
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(event_id: str, event: str = "workorder.updated", shop_id: int = 1, object_id: int = 101,
             updated_at: str = "2025-03-01T10:00:00Z", created_at: str | None = None, **data) -> bytes:
    body = {
        "id": event_id,
        "event": event,
        "created_at": created_at or updated_at,
        "shop_id": shop_id,
        "data": {"id": object_id, "shop_id": shop_id, "updated_at": updated_at, **data},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def deliver(client: TestClient, body: bytes, signature: str | bytes | None = "auto"):
    headers = {"Content-Type": "application/json"}
    if signature == "auto":
        signature = sign(body)
    if signature is not None:
        headers["X-AutoSync-Signature"] = signature
    return client.post(PATH, content=body, headers=headers)


class Recorder:
    """An on_events that records each batch."""

    def __init__(self, fail: bool = False):
        self.calls: list[tuple[set[str], set[int]]] = []
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, resources: set[str], shop_ids: set[int]) -> None:
        with self._lock:
            self.calls.append((set(resources), set(shop_ids)))
        if self.fail:
            raise RuntimeError("sync failed (test)")


@pytest.fixture
def store(tmp_path):
    return DuckDBWebhookEventStore(str(tmp_path / "warehouse.duckdb"))


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def client(store, recorder):
    # A long debounce: a test sees a batch only when it flushes, so no timing races.
    app = create_app(SECRET, store, recorder, debounce_seconds=60)
    with TestClient(app) as test_client:
        yield test_client


def flush(client: TestClient) -> None:
    assert client.app.state.batcher.flush(timeout=10)


# -- good deliveries ---------------------------------------------------------------------------
def test_webhooks_good_delivery_is_stored_and_triggers_sync(client, store, recorder):
    body = envelope("evt_1", "workorder.completed", shop_id=2, object_id=7, status="completed")
    response = deliver(client, body)
    assert response.status_code == 200
    assert response.json() == {"success": True, "id": "evt_1", "duplicate": False}

    assert store.event_ids() == ["evt_1"]
    rows = store._execute(
        f"SELECT event_id, event, shop_id, resource, object_id, object_updated_at, created_at, received_at, payload"
        f" FROM {store.qualified_table}"
    )
    event_id, event, shop_id, resource, object_id, object_updated_at, created_at, received_at, payload = rows[0]
    assert (event_id, event, shop_id, resource, object_id) == ("evt_1", "workorder.completed", 2, "work_orders", 7)
    assert object_updated_at.isoformat().startswith("2025-03-01T10:00:00")
    assert created_at == object_updated_at
    assert received_at is not None
    assert payload == body.decode()  # verbatim: the exact text that was signed

    flush(client)
    assert recorder.calls == [({"work_orders"}, {2})]


@pytest.mark.parametrize(
    "event, resources",
    [
        ("payment.received", {"payments", "work_orders"}),
        ("payment.refunded", {"payments", "work_orders"}),
        ("customer.created", {"customers"}),
        ("appointment.created", {"appointments"}),
        ("inspection.approved", {"inspections"}),
        ("inventory.low_stock", {"inventory"}),
        ("workorder.invoiced", {"work_orders"}),
    ],
)
def test_webhooks_event_names_map_to_connector_resources(client, recorder, event, resources):
    assert deliver(client, envelope("evt_" + event, event, shop_id=3)).status_code == 200
    flush(client)
    assert recorder.calls == [(resources, {3})]


def test_webhooks_deliveries_are_batched_into_one_sync(client, recorder):
    deliver(client, envelope("evt_a", "workorder.updated", shop_id=1))
    deliver(client, envelope("evt_b", "customer.updated", shop_id=2, object_id=5))
    deliver(client, envelope("evt_c", "payment.received", shop_id=1, object_id=9))
    flush(client)
    assert recorder.calls == [({"work_orders", "customers", "payments"}, {1, 2})]
    deliver(client, envelope("evt_d", "inventory.low_stock", shop_id=3))
    flush(client)
    assert recorder.calls[1] == ({"inventory"}, {3})


def test_webhooks_unknown_event_is_refused_and_nothing_stored(client, store, recorder):
    # Signed, but an event this receiver cannot map to a resource: 422 says which events it syncs.
    response = deliver(client, envelope("evt_new", "vehicle.updated"))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_event"
    assert "vehicle.updated" in response.json()["error"]["message"]
    assert store.count() == 0
    flush(client)
    assert recorder.calls == []
    assert client.get("/metrics").json()["refused"] == {"unknown_event": 1}


# -- bad and missing signatures ---------------------------------------------------------------
@pytest.mark.parametrize(
    "signature",
    [
        sign(b"some other body"),
        sign(envelope("evt_x"), secret="whsec_wrong"),
        sign(envelope("evt_x")).upper(),  # the contract says lowercase hex
        "sha256=" + sign(envelope("evt_x")),
        "zz",
        "é".encode("latin-1") * 64,  # a non-ASCII header must be a 403, not a 500
    ],
    ids=["other-body", "other-secret", "uppercase", "prefixed", "short", "non-ascii"],
)
def test_webhooks_bad_signature_is_refused_and_nothing_stored(client, store, recorder, signature):
    response = deliver(client, envelope("evt_x"), signature=signature)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    assert store.count() == 0
    flush(client)
    assert recorder.calls == []


def test_webhooks_tampered_body_is_refused(client, store):
    original = envelope("evt_t", status="invoiced", total=100.0)
    tampered = original.replace(b"100.0", b"1.0")
    assert deliver(client, tampered, signature=sign(original)).status_code == 403
    assert store.count() == 0


def test_webhooks_missing_signature_is_refused(client, store):
    response = deliver(client, envelope("evt_m"), signature=None)
    assert response.status_code == 403
    assert response.json()["success"] is False
    assert deliver(client, envelope("evt_m"), signature="").status_code == 403
    assert store.count() == 0


def test_webhooks_signature_checked_with_constant_time_compare(client, monkeypatch):
    seen = []
    real_compare = hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    body = envelope("evt_ct")
    assert deliver(client, body).status_code == 200
    assert deliver(client, body, signature="0" * 64).status_code == 403
    assert len(seen) == 2
    assert seen[0] == (sign(body).encode(), sign(body).encode())
    assert seen[1] == (sign(body).encode(), b"0" * 64)


def test_webhooks_never_log_secret_or_signature(store, recorder, caplog):
    caplog.set_level(logging.DEBUG)
    app = create_app(SECRET, store, recorder, debounce_seconds=60)
    body = envelope("evt_log")
    wrong = sign(body, secret="whsec_other")
    with TestClient(app) as test_client:
        deliver(test_client, body)
        deliver(test_client, body, signature=wrong)
        deliver(test_client, b"{not json", signature=sign(b"{not json"))
        test_client.app.state.batcher.flush(timeout=10)
    assert caplog.records, "the receiver should log what it does"
    for secret_text in (SECRET, sign(body), wrong, sign(b"{not json")):
        assert secret_text not in caplog.text


# -- replays -----------------------------------------------------------------------------------
def test_webhooks_replayed_event_is_stored_once_and_triggers_once(client, store, recorder):
    body = envelope("evt_r", "payment.received", shop_id=4)
    first = deliver(client, body)
    flush(client)
    replay = deliver(client, body)
    # A retry that reached us twice is a success: the sender must stop retrying.
    assert (first.status_code, replay.status_code) == (200, 200)
    assert first.json()["duplicate"] is False
    assert replay.json()["duplicate"] is True
    assert store.event_ids() == ["evt_r"]
    flush(client)
    assert recorder.calls == [({"payments", "work_orders"}, {4})]


def test_webhooks_replay_detected_across_restart_and_second_receiver(tmp_path):
    path = str(tmp_path / "shared.duckdb")
    body = envelope("evt_restart")
    first_calls, second_calls = Recorder(), Recorder()
    with TestClient(create_app(SECRET, DuckDBWebhookEventStore(path), first_calls, debounce_seconds=60)) as first:
        assert deliver(first, body).json()["duplicate"] is False
        flush(first)
    # A fresh process (new app, new store object) on the same warehouse still knows the id.
    with TestClient(create_app(SECRET, DuckDBWebhookEventStore(path), second_calls, debounce_seconds=60)) as second:
        assert deliver(second, body).json()["duplicate"] is True
        flush(second)
    assert DuckDBWebhookEventStore(path).event_ids() == ["evt_restart"]
    assert len(first_calls.calls) == 1 and second_calls.calls == []


def test_webhooks_concurrent_replays_store_once(store):
    body = envelope("evt_race")
    event = WebhookEvent.from_body(body)
    results = []
    threads = [threading.Thread(target=lambda: results.append(store.insert(event))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert store.count() == 1


# -- out of order ------------------------------------------------------------------------------
def test_webhooks_out_of_order_delivery_does_not_regress(client, store, recorder):
    older = envelope("evt_old", "workorder.updated", shop_id=1, object_id=55,
                     updated_at="2025-03-01T10:00:00Z", status="in_progress", total=120.0)
    newer = envelope("evt_new", "workorder.completed", shop_id=1, object_id=55,
                     updated_at="2025-03-01T11:30:00Z", status="completed", total=180.0)
    # The newer change is delivered first, the older one (a retried delivery) after it.
    assert deliver(client, newer).status_code == 200
    assert deliver(client, older).status_code == 200

    assert store.event_ids() == ["evt_new", "evt_old"]  # stored as they came, append-only
    latest = store.latest_object_state("work_orders", 55)
    assert latest["status"] == "completed" and latest["total"] == 180.0
    flush(client)
    # The sync reads the API, not the payloads: it only needs to know what to resync.
    assert recorder.calls == [({"work_orders"}, {1})]


def test_webhooks_latest_state_ties_break_on_event_time(store):
    same_second = "2025-03-01T10:00:00Z"
    for event_id, created_at, status in [("evt_2", "2025-03-01T10:00:02Z", "paid"),
                                         ("evt_1", "2025-03-01T10:00:01Z", "open")]:
        store.insert(WebhookEvent.from_body(
            envelope(event_id, object_id=9, updated_at=same_second, created_at=created_at, status=status)))
    assert store.latest_object_state("work_orders", 9)["status"] == "paid"
    assert store.latest_object_state("work_orders", 10) is None
    assert store.latest_object_state("customers", 9) is None


# -- malformed bodies --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"event": "workorder.updated", "created_at": "2025-03-01T10:00:00Z", "shop_id": 1,
                    "data": {"id": 1}}).encode(),  # no id
        json.dumps({"id": "evt_1", "event": "workorder.updated", "created_at": "2025-03-01T10:00:00Z",
                    "shop_id": "1", "data": {"id": 1}}).encode(),  # shop_id as text
        json.dumps({"id": "evt_1", "event": "workorder.updated", "created_at": "yesterday",
                    "shop_id": 1, "data": {"id": 1}}).encode(),
        json.dumps({"id": "evt_1", "event": "workorder.updated", "created_at": "2025-03-01T10:00:00Z",
                    "shop_id": 1, "data": [1]}).encode(),
        json.dumps({"id": "evt_1", "event": "", "created_at": "2025-03-01T10:00:00Z",
                    "shop_id": 1, "data": {"id": 1}}).encode(),
    ],
)
def test_webhooks_malformed_body_is_400(client, store, recorder, body):
    response = deliver(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert store.count() == 0
    flush(client)
    assert recorder.calls == []


def test_webhooks_odd_object_timestamp_is_kept_without_order_key(client, store):
    # Only the envelope must be understood; an odd `data.updated_at` must not bounce the event.
    body = envelope("evt_odd", object_id=3, updated_at="not a time", created_at="2025-03-01T10:00:00Z")
    assert deliver(client, body).status_code == 200
    assert store.latest_object_state("work_orders", 3)["updated_at"] == "not a time"


def test_webhooks_oversized_body_is_413(client, store):
    body = envelope("evt_big", notes="x" * (webhooks.ReceiverLimits().max_body_bytes + 1))
    assert deliver(client, body).status_code == 413
    assert store.count() == 0


def test_webhooks_storage_failure_is_503_so_the_sender_retries(store, recorder, monkeypatch):
    def broken_insert(events):
        raise OSError("disk full")

    monkeypatch.setattr(store, "insert_many", broken_insert)
    with TestClient(create_app(SECRET, store, recorder, debounce_seconds=60)) as test_client:
        response = deliver(test_client, envelope("evt_503"))
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        test_client.app.state.batcher.flush(timeout=10)
    assert recorder.calls == []


def test_webhooks_create_app_refuses_empty_secret(store):
    with pytest.raises(ValueError, match="secret is empty"):
        create_app("", store)


# -- the trigger -------------------------------------------------------------------------------
def test_webhooks_sync_runs_outside_the_request(store):
    started, release = threading.Event(), threading.Event()

    def slow_sync(resources, shop_ids):
        started.set()
        release.wait(10)

    with TestClient(create_app(SECRET, store, slow_sync, debounce_seconds=0)) as test_client:
        assert deliver(test_client, envelope("evt_s1")).status_code == 200
        assert started.wait(5)
        # The sync is still running; a delivery is still answered at once.
        assert deliver(test_client, envelope("evt_s2")).status_code == 200
        # answered while the first sync still runs (it waits for `release`), not after it
        assert test_client.app.state.batcher.running and not release.is_set()
        release.set()
        assert test_client.app.state.batcher.flush(timeout=10)


def test_webhooks_failed_sync_is_logged_and_receiver_keeps_working(store, caplog):
    failing = Recorder(fail=True)
    with TestClient(create_app(SECRET, store, failing, debounce_seconds=60)) as test_client:
        deliver(test_client, envelope("evt_f1"))
        flush(test_client)
        assert deliver(test_client, envelope("evt_f2", "customer.created")).status_code == 200
        flush(test_client)
    assert [call[0] for call in failing.calls] == [{"work_orders"}, {"customers"}]
    assert "triggered sync failed" in caplog.text
    assert store.count() == 2


def test_webhooks_batcher_survives_a_sync_that_exits():
    calls = []

    def exiting_sync(resources, shop_ids):
        calls.append(resources)
        raise SystemExit(2)  # what argparse does on a bad flag

    batcher = SyncTriggerBatcher(exiting_sync, debounce_seconds=60)
    try:
        batcher.submit({"customers"}, {1})
        assert batcher.flush(timeout=5)
        batcher.submit({"inventory"}, {1})
        assert batcher.flush(timeout=5)
        assert calls == [{"customers"}, {"inventory"}]
    finally:
        batcher.stop(timeout=5)


class SteppedClock:
    """A monotonic clock the test moves by hand, in whole milliseconds (no float drift)."""

    def __init__(self):
        self.ms = 1_000_000

    def __call__(self):
        return self.ms / 1000


def _poll(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the batcher did not get there"
        time.sleep(0.005)


def test_webhooks_batcher_debounces_and_caps_delay():
    recorder = Recorder()
    clock = SteppedClock()
    batcher = SyncTriggerBatcher(recorder, debounce_seconds=0.3, max_delay_seconds=0.8, clock=clock)
    try:
        # A steady stream, a delivery every 0.05 s for 1.5 s: faster than the debounce, so only the
        # cap (0.8 s after the batch's first delivery) makes it sync while the stream runs.
        for step in range(30):
            batcher.submit({"work_orders"}, {1})
            clock.ms += 50
            batcher.wake()
            if step == 15:  # 0.8 s after the first delivery: the cap is due, the batch runs
                _poll(lambda: len(recorder.calls) == 1 and batcher.idle())
            else:
                assert len(recorder.calls) == (0 if step < 15 else 1)
        # The second batch began at 0.85 s; its cap (1.65 s) is not due when the stream ends.
        assert len(recorder.calls) == 1
        clock.ms += 300  # quiet for the debounce: the rest syncs
        batcher.wake()
        _poll(lambda: len(recorder.calls) == 2 and batcher.idle())
        assert recorder.calls == [({"work_orders"}, {1})] * 2
    finally:
        batcher.stop(timeout=5)


def test_webhooks_batcher_stop_runs_pending_batch():
    recorder = Recorder()
    batcher = SyncTriggerBatcher(recorder, debounce_seconds=60)
    batcher.submit({"customers"}, {2})
    batcher.stop(timeout=5)
    assert recorder.calls == [({"customers"}, {2})]


def test_webhooks_connector_trigger_runs_the_sync_engine(monkeypatch):
    import pipelines.engine as engine
    # Imported before the patch: pipelines.run binds run_sync at import, and later tests in this
    # process must get the real one.
    importlib.import_module("pipelines.run")

    received = []
    monkeypatch.setattr(engine, "run_sync", lambda job: received.append(job))

    trigger = connector_sync_trigger(engine.Target("duckdb", duckdb_path="w.duckdb"))
    trigger({"work_orders", "payments"}, {3, 1})
    (job,) = received
    assert (job.door, job.resources, job.shops, job.run_dbt) == ("webhook", ["payments", "work_orders"], [1, 3], False)
    assert (job.target.destination, job.target.duckdb_path) == ("duckdb", "w.duckdb")

    def failing(job):
        raise engine.SyncFailed("the API refused the key")

    monkeypatch.setattr(engine, "run_sync", failing)
    with pytest.raises(engine.SyncFailed, match="refused the key"):
        connector_sync_trigger()({"customers"}, {1})


# -- CLI ---------------------------------------------------------------------------------------
def test_webhooks_cli_without_secret_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("AUTOSYNC_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("WEBHOOKS__SECRET", raising=False)
    monkeypatch.chdir(tmp_path)  # no .dlt/secrets.toml here
    assert webhooks.main(["--duckdb-path", str(tmp_path / "w.duckdb")]) == 2
    assert "no webhook secret" in capsys.readouterr().err


# -- storage -----------------------------------------------------------------------------------
def test_webhooks_table_lives_beside_dlt_raw_tables(tmp_path):
    """The connector's dlt loads into the same DuckDB dataset before and after the table exists."""
    import dlt

    path = str(tmp_path / "warehouse.duckdb")
    pipeline = dlt.pipeline(
        pipeline_name="wh_coexist", destination=dlt.destinations.duckdb(path),
        dataset_name="autosync_raw", pipelines_dir=str(tmp_path / "dlt"),
    )
    store = DuckDBWebhookEventStore(path)  # the receiver created the schema first
    store.insert(WebhookEvent.from_body(envelope("evt_before")))
    pipeline.run([{"id": 1, "name": "a"}], table_name="customers")
    store.insert(WebhookEvent.from_body(envelope("evt_after")))
    pipeline.run([{"id": 2, "name": "b"}], table_name="customers")

    import duckdb

    with duckdb.connect(path) as con:
        assert con.execute("select count(*) from autosync_raw.customers").fetchone()[0] == 2
    assert store.event_ids() == ["evt_before", "evt_after"]


HOLD_DUCKDB_FILE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create table if not exists other_process (id int)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold_file_in_other_process(path: str, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_DUCKDB_FILE, path, str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_webhooks_duckdb_file_is_free_between_deliveries(tmp_path):
    """The connector CLI (another process) must be able to write the file while we listen."""
    path = str(tmp_path / "warehouse.duckdb")
    store = DuckDBWebhookEventStore(path, lock_timeout_seconds=10)
    store.insert(WebhookEvent.from_body(envelope("evt_1")))
    holder = _hold_file_in_other_process(path, 1.0)  # would fail if the store kept the file open
    began = time.monotonic()
    # A delivery during the other process's write waits for its lock instead of failing.
    assert store.insert(WebhookEvent.from_body(envelope("evt_2"))) is True
    assert time.monotonic() - began >= 0.5
    assert holder.wait(10) == 0
    assert store.event_ids() == ["evt_1", "evt_2"]


def test_webhooks_duckdb_file_locked_too_long_is_503(tmp_path, recorder):
    path = str(tmp_path / "warehouse.duckdb")
    store = DuckDBWebhookEventStore(path, lock_timeout_seconds=0.3)
    holder = _hold_file_in_other_process(path, 3.0)
    try:
        with TestClient(create_app(SECRET, store, recorder, debounce_seconds=60)) as test_client:
            assert deliver(test_client, envelope("evt_busy")).status_code == 503
    finally:
        holder.kill()
        holder.wait(10)
    assert store.count() == 0


@pytest.mark.postgres
def test_webhooks_postgres_store(recorder):
    psycopg2 = pytest.importorskip("psycopg2")
    dsn = "postgresql://postgres:postgres@127.0.0.1:5432/test"  # trust auth: dlt wants a password, any will do
    schema = f"wh_test_{uuid.uuid4().hex[:10]}"
    store = webhooks.PostgresWebhookEventStore(dsn, schema)
    try:
        with TestClient(create_app(SECRET, store, recorder, debounce_seconds=60)) as test_client:
            newer = envelope("evt_pg_new", "payment.received", shop_id=2, object_id=8,
                             updated_at="2025-03-02T09:00:00Z", status="succeeded")
            older = envelope("evt_pg_old", "payment.received", shop_id=2, object_id=8,
                             updated_at="2025-03-02T08:00:00Z", status="pending")
            assert deliver(test_client, newer).json()["duplicate"] is False
            assert deliver(test_client, older).json()["duplicate"] is False
            assert deliver(test_client, newer).json()["duplicate"] is True
            assert deliver(test_client, older, signature=sign(newer)).status_code == 403
            flush(test_client)
        # A second receiver (own connection) on the same schema sees the ids: dedupe is in the DB.
        second = webhooks.PostgresWebhookEventStore(dsn, schema)
        try:
            assert second.insert(WebhookEvent.from_body(older)) is False
            assert second.event_ids() == ["evt_pg_new", "evt_pg_old"]
            assert second.latest_object_state("payments", 8)["status"] == "succeeded"
        finally:
            second.close()
        with psycopg2.connect(dsn) as con, con.cursor() as cursor:
            cursor.execute(f'SELECT payload::text FROM "{schema}".webhook_events WHERE event_id = %s', ["evt_pg_new"])
            assert cursor.fetchone()[0] == newer.decode()  # verbatim
        assert recorder.calls == [({"payments", "work_orders"}, {2})]
    finally:
        store.close()
        con = psycopg2.connect(dsn)
        con.autocommit = True
        with con.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        con.close()


@pytest.mark.postgres
def test_webhooks_postgres_receivers_starting_together():
    psycopg2 = pytest.importorskip("psycopg2")
    dsn = "postgresql://postgres:postgres@127.0.0.1:5432/test"  # trust auth: dlt wants a password, any will do
    schema = f"wh_test_{uuid.uuid4().hex[:10]}"
    stores, errors = [], []
    barrier = threading.Barrier(4)

    def start_receiver():
        barrier.wait()
        try:
            stores.append(webhooks.PostgresWebhookEventStore(dsn, schema))
        except Exception as exc:  # collected: an exception in a thread would not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=start_receiver) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        event = WebhookEvent.from_body(envelope("evt_together"))
        assert sorted(store.insert(event) for store in stores) == [False, False, False, True]
    finally:
        for store in stores:
            store.close()
        con = psycopg2.connect(dsn)
        con.autocommit = True
        with con.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        con.close()


# -- BigQuery's way of storing, and its configuration ------------------------------------------
def test_webhooks_merge_strategy_stores_each_id_once(tmp_path):
    """BigQuery enforces no primary key, so its store inserts with MERGE ... WHEN NOT MATCHED.
    The same SQL runs on DuckDB, which checks the strategy here (BigQuery itself is not reachable)."""
    import dlt

    from pipelines.webhooks.store import MERGE, WebhookEventStore

    store = WebhookEventStore(dlt.destinations.duckdb(str(tmp_path / "merge.duckdb")), dialect=MERGE)
    first, second, third = (WebhookEvent.from_body(envelope(f"evt_m{i}", object_id=i)) for i in (1, 2, 3))
    assert store.insert_many([first, second, first]) == {"evt_m1", "evt_m2"}
    assert store.insert_many([second, third]) == {"evt_m3"}
    assert store.insert(first) is False
    assert store.event_ids() == ["evt_m1", "evt_m2", "evt_m3"]
    assert store.latest_object_state("work_orders", 3)["id"] == 3


def test_webhooks_cli_bigquery_without_credentials_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOSYNC_WEBHOOK_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)  # no .dlt/secrets.toml here
    for name in ("PROJECT_ID", "PRIVATE_KEY", "CLIENT_EMAIL"):
        monkeypatch.delenv(f"DESTINATION__BIGQUERY__CREDENTIALS__{name}", raising=False)
    assert webhooks.main(["--bigquery"]) == 2
    err = capsys.readouterr().err
    assert "--bigquery needs destination.bigquery.credentials" in err
    assert SECRET not in err

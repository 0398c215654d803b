"""Issue 14's flood, full size, against a real receiver process on 127.0.0.1 that triggers real
syncs from the emulator: every distinct event stored once, nothing forged stored, oversize bodies
cut off at the cap, slow clients cut off, memory bounded, and the warehouse equal to the truth.

The scenario itself (and the figures in the README) is `benchmarks/webhooks_flood.py`.
"""
from __future__ import annotations

import json
import signal
import sys
import uuid
from pathlib import Path

import dlt
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import webhooks_flood  # noqa: E402

from pipelines.webhooks import ReceiverLimits  # noqa: E402

VALID, FORGED, OVERSIZE, SLOW = 2000, 500, 20, 200
POSTGRES = "postgresql://postgres:postgres@127.0.0.1:5432/test"  # trust auth: dlt wants a password, any will do


@pytest.fixture
def dataset():
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"wh_flood_{uuid.uuid4().hex[:10]}"
    yield name
    con = psycopg2.connect(POSTGRES)
    con.autocommit = True
    with con.cursor() as cursor:
        for schema in (name, name + "_staging"):
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    con.close()


# Postgres, the production case: the receiver runs each sync in a child process, so the memory
# measured is the listening process's own (on DuckDB the sync shares the receiver's process).
@pytest.mark.postgres
@pytest.mark.slow  # about a minute on the loaded 2-core machine: one full sync, the flood, the syncs
@pytest.mark.timeout(600)
def test_webhooks_flood_stores_each_event_once_and_syncs_to_truth(tmp_path, monkeypatch, dataset):
    from autosync_emulator import Emulator
    from pipelines import run
    from source_helpers import compare_with_truth

    import psycopg2

    pipelines_dir = str(tmp_path / "dlt")
    touched = sorted(set(webhooks_flood.EVENTS.values()))
    with Emulator(seed=14, shops=2, work_orders=8) as emu:
        env = {"SOURCES__AUTOSYNC__API_KEY": emu.api_key,  # never a flag: argv shows in ps
               "DESTINATION__POSTGRES__CREDENTIALS": POSTGRES, "RUNTIME__DLTHUB_TELEMETRY": "false"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        sync_args = ["--base-url", emu.base_url, "--pipelines-dir", pipelines_dir]
        assert run.main([*sync_args, "--destination", "postgres", "--dataset", dataset, "--no-dbt"]) == 0
        emu.advance(hours=3)
        truth = emu.truth()
        pipeline = dlt.pipeline(pipeline_name="autosync_probe", destination=dlt.destinations.postgres(POSTGRES),
                                dataset_name=dataset, pipelines_dir=str(tmp_path / "probe"))
        stale = compare_with_truth(pipeline, truth, resources=touched)
        result = webhooks_flood.run_flood(
            tmp_path, truth["objects"],
            ["--postgres", "--dataset", dataset, "--debounce-seconds", "1", "--max-delay-seconds", "60",
             "--header-timeout", "5", "--body-timeout", "5",
             *sync_args],
            env,
            valid=VALID, senders=50, replay_ratio=0.1, forged=FORGED, oversize=OVERSIZE, oversize_mb=50,
            slow=SLOW,
        )
    figures, sent, metrics = result["figures"], result["sent"], result["metrics"]
    print("webhooks flood:", json.dumps(figures))
    log = Path(tmp_path / "receiver.log").read_text()
    # uvicorn re-raises the SIGTERM it handled, after its graceful shutdown
    assert result["exit_code"] in (0, -signal.SIGTERM) and "Finished server process" in log, log[-3000:]

    # Every valid delivery answered 200 in the end (503s and dropped connections retried).
    assert sent["valid"]["final_status"] == {"200": VALID}, sent["valid"]
    # Each distinct event stored exactly once; nothing forged or malformed stored.
    with psycopg2.connect(POSTGRES) as con, con.cursor() as cursor:
        cursor.execute(f'select event_id from "{dataset}".webhook_events')
        stored = [row[0] for row in cursor.fetchall()]
        cursor.execute(f'select count(*) from "{dataset}".webhook_events where strpos(payload::text, %s) > 0',
                       [webhooks_flood.SECRET])
        assert cursor.fetchone()[0] == 0
    assert webhooks_flood.SECRET not in log  # nor in anything the receiver logged
    assert len(stored) == len(set(stored))
    assert set(stored) == result["distinct_ids"]
    assert metrics["outcomes"]["stored"] == len(result["distinct_ids"])
    assert metrics["outcomes"]["duplicate"] == VALID - len(result["distinct_ids"])
    # Every forged or malformed request got a 4xx (the connection may close after a 431).
    for kind, statuses in sent["forged"].items():
        assert all(status.isdigit() and 400 <= int(status) < 500 for status in statuses), (kind, statuses)
    assert sum(sum(statuses.values()) for statuses in sent["forged"].values()) == FORGED
    # Oversize bodies: refused, none read to its end, each after at most cap + one read.
    cap = ReceiverLimits().max_body_bytes
    assert all(o["status"] in (413, None) and not o["complete"] for o in sent["oversize"]), sent["oversize"]
    assert metrics["refused"]["payload_too_large"] == OVERSIZE
    assert cap < metrics["largest_body_read_on_refusal"] <= cap + metrics["largest_chunk"]
    assert metrics["largest_chunk"] <= 512 * 1024  # uvicorn pauses the socket at 64 KiB buffered
    # Slow connections were cut off (408) rather than held, both in headers and in bodies.
    assert sent["slow"].get("408", 0) >= SLOW, sent["slow"]
    assert metrics["refused"]["header_timeout"] >= SLOW // 2
    assert metrics["refused"]["request_timeout"] >= SLOW // 2
    # Memory of the receiver process stayed bounded through all of it.
    assert figures["rss_samples"] > 10
    assert figures["peak_rss_mb"] < 300, figures

    # The triggered syncs brought the warehouse to the emulator's truth.
    assert stale, "three hours of activity should have left the warehouse behind"
    assert metrics["syncs"]["started"] >= 1 and metrics["syncs"]["failed"] == 0, metrics["syncs"]
    problems = compare_with_truth(pipeline, truth, resources=touched)
    assert not problems, "\n".join(problems)

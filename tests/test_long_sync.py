"""Long syncs (issue #12): checkpoints that a kill cannot cost more than one of, late commits
caught with the default settings at no cost for unchanged rows, progress a user can read, and a
failing shop that does not hold the others back."""
from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autosync_emulator import Emulator
from autosync_emulator.world import iso
from autosync_source import RequestStats, autosync_source, run_in_checkpoints
from reliability_helpers import ROOT, assert_exactly_truth, duckdb_at
from source_helpers import RESOURCES, duckdb_pipeline, loaded_rows, read_table, sync


def _checkpointed_sync(pipeline, emu, checkpoint_requests: int, **kwargs):
    """Each shop of the emulator in checkpoints, one after another, into one pipeline."""
    stats = RequestStats()
    runs = []
    for shop in [row["id"] for row in emu.truth()["objects"]["shops"]]:
        def once(checkpoint, shop=shop):
            return pipeline.run(autosync_source(
                base_url=emu.base_url, api_key=emu.api_key, shop=shop, request_stats=stats, checkpoint=checkpoint,
                checkpoint_minutes=0, checkpoint_requests=checkpoint_requests, progress="quiet",
                retry_max_wait=0.2, **kwargs,
            ))

        runs += run_in_checkpoints(once)
    return runs, stats


def test_a_sync_in_checkpoints_resumes_where_each_stopped_and_ends_equal(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="autosync_source")
    with Emulator(seed=21, shops=2, work_orders=40) as emu:
        truth = emu.truth()
        whole = duckdb_pipeline(tmp_path, name="whole")
        _, whole_stats = sync(whole, emu, progress="quiet")
        pipeline = duckdb_pipeline(tmp_path, name="checkpointed")
        runs, stats = _checkpointed_sync(pipeline, emu, checkpoint_requests=40)
        assert len(runs) >= 4, "the budget should have cut the sync into several checkpoints"
        assert sum(checkpoint.complete for checkpoint, _ in runs) == 2 and runs[-1][0].complete  # one run ends each shop
        assert_exactly_truth(pipeline, truth)
        # each checkpoint costs at most one list page per listing it stopped in (its restart)
        restarts = sum(checkpoint.restarts for checkpoint, _ in runs[:-1])
        # the whole sync listed the shops once; each checkpointed run read its shop (GET /shops/{id}:
        # shop=<id>; the engine hands each run the shop's row instead)
        assert whole_stats.requests - 1 + len(runs) <= stats.requests <= whole_stats.requests - 1 + len(runs) + restarts
        assert "resumes after" in caplog.text and "continues the sync stopped at its last checkpoint" in caplog.text
        # cursors of a finished sync carry no checkpoint mark
        from autosync_source.cursors import shop_cursors

        cursors = [cursor for shop in (1, 2) for cursor in shop_cursors(pipeline.state, shop).values()]
        assert cursors and not [cursor for cursor in cursors if cursor.partial]


def _requests_served(emu) -> int:
    return emu.request_log()["total"]


def _child(emu, tmp_path: Path, budget: int) -> list:
    """`pipelines/run.py` as a scheduler runs it, cutting the sync every `budget` requests."""
    return [sys.executable, str(ROOT / "pipelines" / "run.py"), "--base-url", emu.base_url, "--api-key", emu.api_key,
            "--no-dbt", "--quiet", "--duckdb-path", str(tmp_path / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "pipelines"),
            "--checkpoint-minutes", "0", "--checkpoint-requests", str(budget), "--shops", "1"]


def _run_child(emu, tmp_path: Path, budget: int) -> str:
    done = subprocess.run(_child(emu, tmp_path, budget), cwd=str(ROOT), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def _kill_after_first_checkpoint(emu, tmp_path: Path, budget: int, delay: float) -> str:
    err_path = tmp_path / "killed.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(_child(emu, tmp_path, budget), cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"})
        deadline = time.monotonic() + 240
        kill_at = None
        while proc.poll() is None and time.monotonic() < deadline:
            if kill_at is None and "committed (" in err_path.read_text(errors="replace"):
                kill_at = time.monotonic() + delay
            if kill_at is not None and time.monotonic() >= kill_at:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return err_path.read_text(errors="replace")
            time.sleep(0.01)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            raise AssertionError("the checkpointed sync did not reach its first checkpoint in time")
        raise AssertionError("the sync ended before the kill: make the world or the throttle larger")


@pytest.mark.slow
def test_a_sigkill_after_a_checkpoint_costs_at_most_one_checkpoint(tmp_path):
    """Throttled, cut into checkpoints, killed at a random point after the first one, rerun to
    the end: both runs together make at most the requests of an uninterrupted sync plus one
    checkpoint's, and the raw tables equal the truth with no duplicates.

    One shop: the engine syncs shop after shop, each in its own pipeline, so with more shops a
    kill while shop k is read makes the rerun also poll shops 1..k-1 for changes (a new sync's
    cost, not a repeat); --shops spares the door's own listing of shops."""
    rng = random.Random(12)
    budget = 50
    with Emulator(seed=31, shops=1, work_orders=150, rate_limit=100, rate_window_seconds=1) as emu:
        truth = emu.truth()
        whole_dir = tmp_path / "whole"
        whole_dir.mkdir()
        emu.reset_request_log()
        lines = _run_child(emu, whole_dir, budget)
        uninterrupted = _requests_served(emu)
        per_checkpoint = [int(re.search(r"committed \((\d+) requests", line).group(1))
                          for line in lines.splitlines() if "committed (" in line]
        assert len(per_checkpoint) >= 4, lines[-2000:]
        one_checkpoint = max(per_checkpoint)
        assert_exactly_truth(duckdb_at(whole_dir / "raw.duckdb"), truth)

        for attempt in range(2):
            run_dir = tmp_path / f"killed{attempt}"
            run_dir.mkdir()
            emu.reset_request_log()
            delay = rng.uniform(0, 3.0)
            killed_log = _kill_after_first_checkpoint(emu, run_dir, budget, delay)
            _run_child(emu, run_dir, budget)
            total = _requests_served(emu)
            committed = killed_log.count("committed (")
            print(f"kill {attempt}: {delay:.2f}s after checkpoint 1, {committed} checkpoints committed before the kill; "
                  f"requests {total} vs uninterrupted {uninterrupted} + one checkpoint {one_checkpoint}", file=sys.stderr)
            # the kill adds one checkpoint boundary the uninterrupted run did not have, and a listing
            # stopped at a boundary resumes from its cursor's second (re-anchored): at most one
            # more list page per listing (docs/performance.md, "Checkpoints")
            assert total <= uninterrupted + one_checkpoint + len(RESOURCES)
            assert_exactly_truth(duckdb_at(run_dir / "raw.duckdb"), truth)


def _pending_versions(emu) -> list:
    store = emu.core.store
    with store.lock:
        return [obj for _due, _seq, _resource, _oid, obj in store._pending if obj is not None]


def _edit_now(emu, resource: str, shop_id: int, count: int, note: str, skip: int = 0) -> None:
    """Edit records at the emulator's current second: with late commits they show later."""
    store = emu.core.store
    with store.lock:
        stamp = iso(store.clock)
        ids = sorted(oid for oid, obj in store.tables[resource].latest.items() if obj["shop_id"] == shop_id)[skip:skip + count]
        for oid in ids:
            store.put(resource, {**store.latest(resource, oid), "notes": note, "updated_at": stamp})


def _loaded_versions(pipeline, resource: str) -> set:
    return {(row["id"], row["updated_at"].strftime("%Y-%m-%dT%H:%M:%SZ")) for row in read_table(pipeline, resource)}


@pytest.mark.slow
def test_late_commits_are_caught_with_the_default_settings_at_no_cost_for_unchanged_rows(tmp_path):
    """Changes become visible 1-5 s after their updated_at, while the clock moves between and
    during syncs: a long transaction (5 s) commits after a shorter, newer one (1 s), so a sync
    sees the newer rows while the older are still hidden and its cursor passes them (with
    lag_seconds=0 this test fails). With default settings the syncs catch up, and the last one
    makes a detail call only for records whose version it does not hold yet (none for an
    unchanged record in the lag window) and loads only those."""
    with Emulator(seed=61, shops=2, work_orders=30) as emu:
        pipeline = duckdb_pipeline(tmp_path)
        sync(pipeline, emu, progress="quiet")
        pending_seen = 0
        for round_number in range(3):
            emu.configure(late_commit_seconds=5)
            emu.advance(hours=1)
            _edit_now(emu, "customers", 1, 2, f"long {round_number}")  # visible 5 s late
            _edit_now(emu, "work_orders", 2, 1, f"long {round_number}")
            emu.configure(late_commit_seconds=1)
            emu.advance(seconds=2)
            _edit_now(emu, "customers", 1, 2, f"short {round_number}", skip=2)  # newer, visible 1 s late
            _edit_now(emu, "work_orders", 2, 1, f"short {round_number}", skip=1)
            emu.advance(seconds=1)  # the short ones show, the long ones are still hidden
            pending_seen += len(_pending_versions(emu))
            if round_number == 1:  # the clock also runs during this sync (36 s per second)
                emu.start_background_activity(hours_per_second=0.01)
            try:
                sync(pipeline, emu, progress="quiet")
            finally:
                emu.stop_background_activity()
        assert pending_seen, "no late commit was pending at a sync: the scenario proves nothing"
        emu.configure(late_commit_seconds=0)  # whatever is still pending becomes visible now
        truth = emu.truth()
        deleted = {name: set(ids) for name, ids in truth["deleted"].items()}
        expected_rows = {}
        for resource in ("work_orders", "inspections"):
            held = _loaded_versions(pipeline, resource)
            expected_rows[resource] = sum(1 for row in truth["objects"][resource]
                                          if (row["id"], row["updated_at"]) not in held and row["id"] not in deleted.get(resource, ()))
        _, stats = sync(pipeline, emu, progress="quiet")
        details = sum(kinds.get("detail", 0) for kinds in stats.as_dict()["by_resource"].values())
        assert details == sum(expected_rows.values())
        loaded = loaded_rows(pipeline)
        assert {resource: loaded.get(resource, 0) for resource in expected_rows} == expected_rows
        assert_exactly_truth(pipeline, truth)


def test_progress_estimates_the_whole_run_first_reports_shops_and_pages_and_says_when_it_waits(tmp_path, caplog, capsys):
    """One estimate for every shop of the run (not one per shop), progress lines counting the
    shops done and the requests left for the whole run, and the budget's waits."""
    from pipelines.engine import SyncJob, Target, run_sync

    with Emulator(seed=41, shops=2, work_orders=50, rate_limit=40, rate_window_seconds=2) as emu:
        target = Target(destination="duckdb", duckdb_path=str(tmp_path / "raw.duckdb"), pipelines_dir=str(tmp_path / "p"))

        def job(**options):
            return SyncJob(target, base_url=emu.base_url, api_key=emu.api_key,
                           source_options={"retry_max_wait": 0.2, **options})

        summary = run_sync(job(progress="json", progress_interval_seconds=0.5))
        assert summary.requests["rate_limited"] == 0
        # --json: one bare JSON object per stderr line
        # progress="json" makes the progress logger's lines JSON (the CLI's --json does the rest);
        # other loggers keep whatever format the process gave them
        events = [event for event in (json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{"))
                  if event["logger"] == "autosync_source.progress"]
        kinds = [event["event"] for event in events]
        assert kinds[0] == "estimate" and kinds.count("estimate") == 1
        estimate = events[0]
        # page 1 of every listing (8 resources x 2 shops) was read, and reused by its reader: the
        # estimate is within a few requests of the cost (the shops listing aside)
        assert estimate["lists_sampled"] == estimate["lists"] == 16 and estimate["shops"] == 2
        assert abs(estimate["requests"] - (summary.requests["requests"] - 1)) <= 16
        assert "waiting" in kinds and "progress" in kinds
        progress = [event for event in events if event["event"] == "progress"]
        assert all(event["shops"] == 2 for event in progress)
        assert [event["shops_done"] for event in progress] == sorted(event["shops_done"] for event in progress)
        last = progress[-1]
        assert last["requests_left"] <= estimate["requests"]
        assert set(last["resources"]) <= {
            "employees", "customers", "vehicles", "work_orders", "payments", "inspections", "appointments", "inventory",
        }

        caplog.set_level(logging.INFO, logger="autosync_source.progress")
        caplog.clear()  # only the quiet sync's records (an earlier test may have left the logger at INFO)
        capsys.readouterr()
        run_sync(job(progress="quiet"))
        assert not [record for record in caplog.records if record.name == "autosync_source.progress"]
        # quiet: no progress line in any format (other loggers' JSON lines, left by an earlier CLI
        # test's --json logging setup, are not progress)
        assert not [line for line in capsys.readouterr().err.splitlines()
                    if "autosync_source.progress" in line or '"event": "progress"' in line or '"event": "estimate"' in line]


def test_a_failing_shop_does_not_stop_the_others_and_is_read_again_next_run(tmp_path):
    """skip_failing_shops is the engine's: the failing shop's run commits nothing (its cursors stay),
    the others load; the next run reads it again."""
    from pipelines.engine import SyncFailed, SyncJob, Target, run_sync
    from pipelines.engine.target import state_home

    with Emulator(seed=51, shops=3, work_orders=10) as emu:
        truth = emu.truth()
        target = Target(destination="duckdb", duckdb_path=str(tmp_path / "raw.duckdb"), pipelines_dir=str(tmp_path / "p"))
        job = SyncJob(target, base_url=emu.base_url, api_key=emu.api_key,
                      source_options={"skip_failing_shops": True, "retry_attempts": 2, "retry_max_wait": 0.2, "progress": "quiet"})
        emu.set_faults([{"method": "GET", "path": "/v1/shops/2/payments", "behaviour": "error", "status": 502}])
        with pytest.raises(SyncFailed) as failed:
            run_sync(job)
        assert "1 of 3 shops failed (the others are loaded), e.g. shop 2" in failed.value.message
        assert "502" in failed.value.message
        probe = duckdb_at(tmp_path / "raw.duckdb")
        assert {row["shop_id"] for row in read_table(probe, "payments")} == {1, 3}
        from autosync_source.cursors import shop_cursors
        from pipelines.engine.target import api_label

        shop_2 = target.pipeline(state_home(api_label(emu.base_url), 2))
        assert "payments" not in shop_cursors(shop_2.state, 2)
        emu.set_faults([])
        run_sync(job)
        assert_exactly_truth(probe, truth)


def test_the_cli_reports_progress_as_json_lines_or_not_at_all_and_skips_a_failing_shop(tmp_path):
    from reliability_helpers import cli_args, run_cli_process

    with Emulator(seed=71, shops=2, work_orders=5) as emu:
        emu.set_faults([{"method": "GET", "path": "/v1/shops/2/payments", "behaviour": "error", "status": 502}])
        failing = run_cli_process(cli_args(emu, tmp_path, "--json"),
                                  env={"SOURCES__AUTOSYNC__SKIP_FAILING_SHOPS": "true", "SOURCES__AUTOSYNC__RETRY_ATTEMPTS": "2",
                                       "SOURCES__AUTOSYNC__RETRY_MAX_WAIT": "0.2"})
        assert failing.returncode == 2, failing.stderr[-2000:]
        assert "1 of 2 shops failed (the others are loaded), e.g. shop 2" in failing.stderr
        events = [json.loads(line) for line in failing.stderr.splitlines()]  # every line is JSON
        progress = [event for event in events if event["logger"] == "autosync_source.progress"]
        assert progress and progress[0]["event"] == "estimate"
        assert {row["shop_id"] for row in read_table(duckdb_at(tmp_path / "raw.duckdb"), "payments")} == {1}

        emu.set_faults([])
        quiet = run_cli_process(cli_args(emu, tmp_path, "--quiet"))
        assert quiet.returncode == 0, quiet.stderr[-2000:]
        assert "estimate" not in quiet.stderr and "progress:" not in quiet.stderr
        assert_exactly_truth(duckdb_at(tmp_path / "raw.duckdb"), emu.truth())

"""Shops read in worker processes (`processes`, `--processes N`: pipelines/engine/shop_processes.py):
the same warehouse, cursors, checkpoints, logs, failures and interrupts as the in-process path."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from autosync_emulator import Emulator
from reliability_helpers import ROOT, assert_exactly_truth, assert_interrupted_in_one_line_then_whole, cli_args, duckdb_at, run_cli_process
from source_helpers import read_table


def test_shops_read_in_worker_processes_load_exactly_the_truth_checkpoint_by_checkpoint(tmp_path, caplog):
    from autosync_source.cursors import shop_cursors
    from autosync_source.settings import RESOURCE_NAMES
    from pipelines.engine import SyncJob, Target, run_sync
    from pipelines.engine.target import api_label, state_home

    caplog.set_level(logging.INFO, logger="autosync_source")
    with Emulator(seed=61, shops=5, work_orders=12) as emu:
        truth = emu.truth()
        target = Target(destination="duckdb", duckdb_path=str(tmp_path / "raw.duckdb"), pipelines_dir=str(tmp_path / "p"))
        # quiet: no estimate reads pages ahead, so every shop reads in a worker; checkpoints every
        # 15 requests: each shop is several worker reads, each loaded here before the next
        job = SyncJob(target, base_url=emu.base_url, api_key=emu.api_key, run_dbt=False,
                      source_options={"processes": 2, "max_workers": 3, "checkpoint_requests": 15, "progress": "quiet"})
        emu.reset_request_log()
        summary = run_sync(job)
        assert_exactly_truth(duckdb_at(tmp_path / "raw.duckdb"), truth)
        # the workers' requests reach the summary, and their log records this process's handlers
        assert summary.requests["requests"] == emu.request_log()["total"]
        from_workers = [record for record in caplog.records if record.processName != "MainProcess"]
        assert any("checkpoint: budget spent" in record.getMessage() for record in from_workers)
        assert len(summary.load_ids) > 5  # several checkpoints per shop
        for shop_id in summary.shops:  # each shop's cursors in its own state home
            state = target.pipeline(state_home(api_label(emu.base_url), shop_id)).state
            assert set(shop_cursors(state, shop_id)) == set(RESOURCE_NAMES)

        emu.reset_request_log()
        again = run_sync(job)  # nothing changed: one list page per listing, nothing duplicated
        assert again.requests["requests"] == emu.request_log()["total"] == 1 + 8 * 5
        assert_exactly_truth(duckdb_at(tmp_path / "raw.duckdb"), truth)


@pytest.mark.slow  # a minute of CLI runs; the fast suite has the in-process API test above
def test_the_cli_with_worker_processes_writes_json_lines_only_and_skips_a_failing_shop(tmp_path):
    with Emulator(seed=62, shops=8, work_orders=3) as emu:
        # the estimate reads page 1 of the first six shops ahead: they read in this process (the pages
        # are here), shops 7 and 8 in the workers; shop 8 fails there
        emu.set_faults([{"method": "GET", "path": "/v1/shops/8/payments", "behaviour": "error", "status": 502}])
        failing = run_cli_process(cli_args(emu, tmp_path, "--json", "--processes", "2"),
                                  env={"SOURCES__AUTOSYNC__SKIP_FAILING_SHOPS": "true", "SOURCES__AUTOSYNC__RETRY_ATTEMPTS": "2",
                                       "SOURCES__AUTOSYNC__RETRY_MAX_WAIT": "0.2"})
        assert failing.returncode == 2, failing.stderr[-2000:]
        events = [json.loads(line) for line in failing.stderr.splitlines()]  # every line is JSON, the workers' too
        assert any(event["event"] == "AutoSync request failed (HTTP 502); retry 1" for event in events)  # a worker's
        assert "1 of 8 shops failed (the others are loaded), e.g. shop 8" in events[-1]["error"]
        assert {row["shop_id"] for row in read_table(duckdb_at(tmp_path / "raw.duckdb"), "work_orders")} == set(range(1, 8))

        emu.set_faults([])
        done = run_cli_process(cli_args(emu, tmp_path, "--quiet", "--processes", "2"))
        assert done.returncode == 0, done.stderr[-2000:]
        assert_exactly_truth(duckdb_at(tmp_path / "raw.duckdb"), emu.truth())


@pytest.mark.slow
def test_ctrl_c_stops_the_worker_processes_and_the_next_run_completes(tmp_path):
    import psutil

    with Emulator(seed=63, shops=4, work_orders=20) as emu:
        emu.set_faults([{"method": "GET", "path": "/v1/shops/*/*", "behaviour": "slow", "delay": 0.3}])
        args = cli_args(emu, tmp_path, "--processes", "2", "--quiet")
        env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "SOURCES__AUTOSYNC__MAX_WORKERS": "2"}
        with open(tmp_path / "err.txt", "w") as err:
            proc = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "run.py"), *args], cwd=str(ROOT),
                                    stdout=subprocess.DEVNULL, stderr=err, env=env)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not emu.request_log()["total"] > 10:  # the workers are reading
                time.sleep(0.05)
            workers = psutil.Process(proc.pid).children(recursive=True)
            assert workers
            os.kill(proc.pid, signal.SIGINT)  # the engine's process only, as a scheduler would
            assert proc.wait(timeout=120) == 130
        psutil.wait_procs(workers, timeout=30)
        assert not [worker for worker in workers if worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE]
        assert_interrupted_in_one_line_then_whole(tmp_path / "err.txt", emu, args, env)


def test_the_run_wide_duckdb_connection_keeps_no_cache_of_the_files_it_loads(tmp_path):
    """One connection for the whole run: DuckDB's external file cache would keep every shop's
    parquet load files in memory (peak memory growing with the shops of a run)."""
    from pipelines.engine import Target
    from pipelines.engine.target import duckdb_destination, one_duckdb_connection

    target = Target(destination="duckdb", duckdb_path=str(tmp_path / "raw.duckdb"), pipelines_dir=str(tmp_path / "p")).resolved()
    with one_duckdb_connection(target):
        connection = duckdb_destination(str(target.duckdb_path)).config_params["credentials"]
        assert connection.execute("select current_setting('enable_external_file_cache')").fetchone()[0] is False
    # closed with the run: a later pipeline of the file opens it itself
    assert duckdb_destination(str(target.duckdb_path)).config_params["credentials"] == str(target.duckdb_path)

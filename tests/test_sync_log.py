"""The sync log (`_autosync_runs`): a row per run, shop and resource, failed runs included; dbt's
source freshness reads the last successful sync from it, and `sync_health` shows it per shop/table."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from autosync_emulator import Emulator
from pipelines.dbt_runner import run_dbt
from pipelines.engine import Target, marts_pipeline, sync_log
from pipelines.run import main
from source_helpers import RESOURCES

FOUR_DAYS_AGO = datetime.now(timezone.utc) - timedelta(hours=96)


def _cli(tmp_path, emu, *extra, api_key=None):
    return main(["--base-url", emu.base_url, "--api-key", api_key or emu.api_key, "--no-dbt", "--json",
                 "--duckdb-path", str(tmp_path / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
                 "--shops", "1", *extra])


@pytest.mark.slow
def test_a_no_change_resync_keeps_freshness_and_sync_health_shows_failures(tmp_path, capsys):
    target = Target("duckdb", "autosync_raw", str(tmp_path / "raw.duckdb"), str(tmp_path / "p"))
    reader = marts_pipeline(target)
    with Emulator(seed=7, shops=2, work_orders=10, rate_limit=0) as emu:
        assert _cli(tmp_path, emu) == 0
        first_run = json.loads(capsys.readouterr().out)["run_id"]
        # Four days pass with no change at the source: the first sync, and every row it loaded,
        # are that old. (Freshness on the rows' own timestamps would now error: 96 h > 72 h.)
        with reader.sql_client() as sql:
            for table in RESOURCES:
                sql.execute_sql(f"UPDATE {sql.make_qualified_table_name(table)} SET _autosync_synced_at = %s", FOUR_DAYS_AGO)
            sql.execute_sql(f"UPDATE {sql.make_qualified_table_name(sync_log.TABLE)} SET started_at = %s, finished_at = %s",
                            FOUR_DAYS_AGO, FOUR_DAYS_AGO)
        stale = run_dbt(reader, "source freshness", raise_on_failure=False)
        assert not stale.success, "four-day-old syncs must fail freshness (else the check below proves nothing)"
        capsys.readouterr()  # dbt's own lines

        assert _cli(tmp_path, emu) == 0  # nothing changed: nothing loaded, but the sync happened
        again = json.loads(capsys.readouterr().out)
        assert again["rows_total"] == 0
        fresh = run_dbt(reader, "source freshness", raise_on_failure=False)
        assert fresh.success, fresh.summary

        # a failed run is logged too, with its error and without the key
        wrong_key = "sk_sandbox_" + "0" * 32
        assert _cli(tmp_path, emu, api_key=wrong_key) == 2
        capsys.readouterr()

    rows = sync_log.read(reader)
    by_run = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row)
    assert len(by_run) == 3 and first_run in by_run
    for run_rows in by_run.values():  # one row per shop and resource, every run
        assert sorted(row["resource"] for row in run_rows) == sorted(RESOURCES)
        assert {row["door"] for row in run_rows} == {"cli"} and {row["shop_id"] for row in run_rows} == {1}
    failed = [row for row in rows if row["status"] == "failed"]
    assert failed and all(row["error"] for row in failed)
    assert all(wrong_key not in str(row) and emu.api_key not in str(row) for row in rows)
    ok_cursor = [row["cursor_updated_at"] for row in rows if row["run_id"] == again["run_id"] and row["resource"] == "work_orders"]
    assert ok_cursor and ok_cursor[0]

    run_dbt(reader, "build", ["--select", "sync_health"])
    with reader.sql_client() as sql:
        health = sql.execute_sql(
            "SELECT table_name, last_status, last_door, failures_since_success, last_success_at, last_error "
            "FROM autosync.sync_health WHERE shop_id = 1")
    assert sorted(row[0] for row in health) == sorted(RESOURCES)
    for table_name, status, door, failures, last_success_at, error in health:
        assert (status, door, failures) == ("failed", "cli", 1), table_name
        assert last_success_at is not None and error

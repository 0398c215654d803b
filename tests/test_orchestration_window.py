"""A backfill of one interval (what an Airflow backfill run does) reads exactly that window for the
shop, stores no cursors, and the shop's incremental sync afterwards completes it without doubles."""
from __future__ import annotations

import duckdb

from autosync_emulator import Emulator
from pipelines.orchestration import Warehouse, make_pipeline, shop_pipeline_name, sync_shop
from source_helpers import RESOURCES, compare_with_truth

SHOP = 1


def _ids(path, table):
    with duckdb.connect(str(path), read_only=True) as connection:
        return {row[0] for row in connection.execute(f"select id from autosync_raw.{table}").fetchall()}


def test_window_run_reads_its_interval_only_and_leaves_incremental_cursors_alone(tmp_path):
    db = tmp_path / "w.duckdb"
    warehouse = Warehouse("duckdb", "autosync_raw", str(db), str(tmp_path / "dlt"))
    with Emulator(seed=3, shops=2, work_orders=15, rate_limit=0) as emulator:
        truth = emulator.truth()
        stamps = sorted(o["updated_at"] for o in truth["objects"]["work_orders"] if o["shop_id"] == SHOP)
        start, end = stamps[len(stamps) // 3], stamps[2 * len(stamps) // 3]
        credentials = dict(base_url=emulator.base_url, api_key=emulator.api_key)

        summary = sync_shop(SHOP, warehouse, start_date=start, end_date=end, window=True, **credentials)
        assert summary["pipeline"] == shop_pipeline_name(SHOP, window=True, base_url=emulator.base_url)
        for resource in RESOURCES:
            if resource == "shops":  # the shop listing is not filtered by time (only bounded by end)
                continue
            expected = {o["id"] for o in truth["objects"][resource]
                        if o["shop_id"] == SHOP and start <= o["updated_at"] <= end}
            loaded = _ids(db, resource) if expected else set()
            assert loaded == expected, resource
        assert _ids(db, "work_orders")  # the window was not empty

        with duckdb.connect(str(db), read_only=True) as connection:
            tables = {r[0] for r in connection.execute(
                "select table_name from information_schema.tables where table_schema = 'autosync_raw'").fetchall()}
        assert "_dlt_pipeline_state" not in tables  # a window's cursors are never stored, so never restored

        sync_shop(SHOP, warehouse, **credentials)  # incremental: from the configured start_date

    reader = make_pipeline(Warehouse("duckdb", "autosync_raw", str(db), str(tmp_path / "reader")), pipeline_name="reader")
    assert compare_with_truth(reader, truth, shops=[SHOP]) == []

"""Full and incremental syncs of the emulator into DuckDB: the raw tables equal the truth,
every row and every value, and a sync costs the request floor of what changed."""
from __future__ import annotations

import pytest

from autosync_emulator import Emulator
from source_helpers import (
    RESOURCES,
    advance_with_changes,
    all_tables,
    assert_raw_equals_truth,
    duckdb_pipeline,
    loaded_rows,
    read_table,
    request_floor,
    sync,
)


@pytest.fixture(scope="module")
def emulator():
    with Emulator(seed=7, shops=3, work_orders=60) as emu:
        yield emu


def _by_resource(stats):
    return stats.as_dict()["by_resource"]


def test_first_sync_equals_truth_and_costs_the_floor(tmp_path):
    # its own world: the module emulator is advanced by another test
    with Emulator(seed=11, shops=3, work_orders=120) as emu:
        pipeline = duckdb_pipeline(tmp_path)
        truth = emu.truth()
        info, stats = sync(pipeline, emu)
        info.raise_on_failed_jobs()
        assert_raw_equals_truth(pipeline, truth)
        assert _by_resource(stats) == request_floor(None, truth)
        # 120 work orders per shop: two pages each, or three where a page re-anchored before a
        # second of more rows than is left on it; one detail per work order
        assert _by_resource(stats)["work_orders"]["detail"] == len(truth["objects"]["work_orders"])
        assert 6 <= _by_resource(stats)["work_orders"]["list"] <= 9
        assert stats.requests == sum(sum(kinds.values()) for kinds in request_floor(None, truth).values())
        # within 2% of the bare floor (one page per 100 rows): what re-anchoring after every page costs
        bare = sum(sum(kinds.values()) for kinds in request_floor(None, truth, re_anchored=False).values())
        assert stats.requests <= 1.02 * bare
        assert stats.rate_limited == 0 and stats.retries == 0


def test_incremental_sync_catches_up_and_costs_what_changed(tmp_path, emulator):
    pipeline = duckdb_pipeline(tmp_path)
    before = emulator.truth()
    sync(pipeline, emulator)
    assert_raw_equals_truth(pipeline, before)

    changes = advance_with_changes(emulator, hours=6)
    after = emulator.truth()
    assert changes["events"] > 0
    _, stats = sync(pipeline, emulator)
    assert_raw_equals_truth(pipeline, after)
    floor = request_floor(before, after)
    assert _by_resource(stats) == floor
    changed_work_orders = floor["work_orders"].get("detail", 0)
    assert 0 < changed_work_orders < len(after["objects"]["work_orders"])  # what changed, not what exists
    assert loaded_rows(pipeline)["work_orders"] == changed_work_orders

    # and once more with nothing changed: nothing loaded, one list request per shop+resource
    _, stats = sync(pipeline, emulator)
    assert loaded_rows(pipeline) == {}
    shops = len(after["objects"]["shops"])
    assert stats.requests == 1 + shops * (len(RESOURCES) - 1)
    assert all(set(kinds) == {"list"} for kinds in _by_resource(stats).values())
    assert_raw_equals_truth(pipeline, after)


def test_child_rows_of_a_changed_parent_are_replaced_not_accumulated(tmp_path, emulator):
    pipeline = duckdb_pipeline(tmp_path)
    sync(pipeline, emulator)
    advance_with_changes(emulator, hours=3, seed=5)  # removes a job from some work orders
    sync(pipeline, emulator)
    truth = emulator.truth()
    deleted = set(truth["deleted"].get("work_orders", []))
    jobs = [job for job in read_table(pipeline, "work_orders__jobs") if job["work_order_id"] not in deleted]
    expected = sum(len(wo["jobs"]) for wo in truth["objects"]["work_orders"])
    assert len(jobs) == expected
    assert_raw_equals_truth(pipeline, truth)


def test_declared_columns_exist_even_when_every_value_is_null(tmp_path, emulator):
    pipeline = duckdb_pipeline(tmp_path)
    # inventory alone: no row here has a deleted-at, and we ask for a shop subset
    sync(pipeline, emulator, resources=["inventory", "payments"], shops=[1])
    with pipeline.sql_client() as client:
        columns = {
            row[0]: row[1]
            for row in client.execute_sql(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'payments'", pipeline.dataset_name)
        }
    assert columns["_autosync_deleted_at"].startswith("TIMESTAMP")
    assert columns["amount"] == "DECIMAL(12,2)"
    assert columns["created_at"].startswith("TIMESTAMP")
    assert columns["card_brand"] == "VARCHAR"  # null for cash payments, declared anyway
    shop_ids = {row["shop_id"] for row in read_table(pipeline, "inventory")}
    assert shop_ids == {1}


def test_subset_of_shops_and_resources_equals_that_part_of_the_truth(tmp_path, emulator):
    pipeline = duckdb_pipeline(tmp_path)
    truth = emulator.truth()
    _, stats = sync(pipeline, emulator, resources=["shops", "work_orders"], shops=[2, 3])
    assert_raw_equals_truth(pipeline, truth, resources=["shops", "work_orders"], shops=[2, 3])
    assert set(_by_resource(stats)) == {"shops", "work_orders"}
    tables = set(pipeline.default_schema.data_table_names())
    assert tables == {"shops", "work_orders", "work_orders__jobs", "work_orders__jobs__line_items"}


def test_end_date_bounds_a_backfill_and_the_next_run_continues_from_it(tmp_path):
    with Emulator(seed=3, shops=2, work_orders=40) as emu:
        truth = emu.truth()
        stamps = sorted(wo["updated_at"] for wo in truth["objects"]["work_orders"])
        end_date = stamps[len(stamps) // 2]
        pipeline = duckdb_pipeline(tmp_path)
        sync(pipeline, emu, resources=["work_orders"], end_date=end_date)
        loaded = read_table(pipeline, "work_orders")
        assert loaded and all(row["updated_at"].strftime("%Y-%m-%dT%H:%M:%SZ") <= end_date for row in loaded)
        assert len(loaded) == sum(1 for stamp in stamps if stamp <= end_date)
        sync(pipeline, emu, resources=["work_orders"])
        assert_raw_equals_truth(pipeline, truth, resources=["work_orders"])


def test_a_shop_added_later_gets_its_full_history(tmp_path, emulator):
    pipeline = duckdb_pipeline(tmp_path)
    truth = emulator.truth()
    sync(pipeline, emulator, resources=["customers"], shops=[1])
    _, stats = sync(pipeline, emulator, resources=["customers"], shops=[1, 3])
    assert_raw_equals_truth(pipeline, truth, resources=["customers"], shops=[1, 3])
    customers_of_3 = [c for c in truth["objects"]["customers"] if c["shop_id"] == 3]
    assert loaded_rows(pipeline)["customers"] == len(customers_of_3)


def test_full_refresh_drops_and_reloads(tmp_path, emulator):
    pipeline = duckdb_pipeline(tmp_path)
    sync(pipeline, emulator, resources=["employees"])
    truth = emulator.truth()
    sync(pipeline, emulator, resources=["employees"], refresh="drop_resources")  # the first shop's run drops
    assert loaded_rows(pipeline)["employees"] == len(truth["objects"]["employees"])
    assert_raw_equals_truth(pipeline, truth, resources=["employees"])


def test_every_raw_table_is_named_as_the_interface_says(tmp_path, emulator):
    pipeline = duckdb_pipeline(tmp_path)
    sync(pipeline, emulator)
    assert set(pipeline.default_schema.data_table_names()) == set(all_tables())
    assert pipeline.dataset_name == "autosync_raw"


def test_every_child_table_of_the_tree_has_its_declared_columns_and_no_others():
    """The endpoint table names children twice (the `Child` tree and `child_columns`): they agree,
    and each child row's declared columns hold the ids the connector adds to it."""
    from autosync_source.settings import ENDPOINTS

    for endpoint in ENDPOINTS:
        tables = endpoint.child_tables()
        assert {child.path for child in tables} == set(endpoint.child_columns), endpoint.name
        for child in tables:
            added = {"shop_id", endpoint.root_key, child.child.parent_key}
            assert added <= set(endpoint.child_columns[child.path]), child.table


def test_lag_seconds_re_reads_a_margin_before_each_cursor(tmp_path, emulator):
    pipeline = duckdb_pipeline(tmp_path)
    sync(pipeline, emulator, resources=["customers"])
    _, stats = sync(pipeline, emulator, resources=["customers"])
    assert loaded_rows(pipeline) == {}
    _, stats = sync(pipeline, emulator, resources=["customers"], lag_seconds=30 * 24 * 3600)
    assert loaded_rows(pipeline).get("customers", 0) > 0  # the last month, loaded again (merged)
    assert_raw_equals_truth(pipeline, emulator.truth(), resources=["customers"])


def test_the_source_reads_one_shop_and_refuses_a_key_with_several_without_shop(tmp_path, emulator):
    """The shop is the source's unit: shop=<id> reads that shop (GET /shops/{id}: one request,
    no listing); with no shop on a key that sees several, it says to pass shop= or use the engine."""
    from dlt.pipeline.exceptions import PipelineStepFailed

    from autosync_source import RequestStats, autosync_source

    pipeline = duckdb_pipeline(tmp_path)
    stats = RequestStats()
    pipeline.run(autosync_source(base_url=emulator.base_url, api_key=emulator.api_key, shop=2,
                                 resources=["shops", "customers"], request_stats=stats))
    truth = emulator.truth()
    assert_raw_equals_truth(pipeline, truth, resources=["shops", "customers"], shops=[2])
    assert _by_resource(stats) == {"shops": {"detail": 1}, "customers": {"list": 1}}

    with pytest.raises(PipelineStepFailed) as several:
        pipeline.run(autosync_source(base_url=emulator.base_url, api_key=emulator.api_key, resources=["customers"]))
    message = str(several.value)
    assert "see 3 shops" in message and "shop=" in message and "run_sync" in message

    with pytest.raises(PipelineStepFailed) as hidden:
        pipeline.run(autosync_source(base_url=emulator.base_url, api_key=emulator.api_key, shop=99, resources=["customers"]))
    assert "[99] are not visible to these credentials" in str(hidden.value)


def test_a_key_with_one_shop_needs_no_shop_argument(tmp_path):
    from autosync_source import autosync_source

    with Emulator(seed=8, shops=1, work_orders=5) as emu:
        pipeline = duckdb_pipeline(tmp_path)
        pipeline.run(autosync_source(base_url=emu.base_url, api_key=emu.api_key, progress="quiet"))
        assert_raw_equals_truth(pipeline, emu.truth())

"""Dagster: the definitions load, one shop partition materialized into DuckDB holds the same raw
tables as the CLI syncing that shop alone, and the marts asset builds the dbt marts on them."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

dg = pytest.importorskip("dagster", reason="the [dagster] extra is not installed")

import duckdb  # noqa: E402

from autosync_emulator import Emulator  # noqa: E402
from source_helpers import RESOURCES, all_tables, compare_with_truth  # noqa: E402

SHOP = 2
# Differ between any two runs by design: load ids, dlt row ids, and when the row was fetched.
RUN_COLUMNS = {"_dlt_load_id", "_dlt_id", "_dlt_parent_id", "_dlt_root_id", "_autosync_synced_at"}


def test_dagster_definitions_load():
    from pipelines import dagster_defs

    # under a live instance, as dagster's code server loads them: an instance that an earlier test
    # made and dagster left as the current state storage is dead by now, and validate_loadable
    # would fail on its weakref, whatever the definitions hold
    with dg.instance_for_test():
        dg.Definitions.validate_loadable(dagster_defs.defs)
    graph = dagster_defs.defs.resolve_asset_graph()
    raw_keys = {dg.AssetKey(["autosync_raw", name]) for name in RESOURCES}
    assert raw_keys <= set(graph.get_all_asset_keys())
    revenue = dg.AssetKey(["autosync", "fct_revenue_daily"])
    assert raw_keys <= set(graph.get(revenue).parent_keys)  # marts are downstream of every raw table
    assert graph.get(next(iter(raw_keys))).partitions_def is not None
    assert {s.name for s in dagster_defs.defs.schedules} == {"autosync_shops_daily", "autosync_marts_daily"}


def _table(path, schema: str, table: str):
    with duckdb.connect(str(path), read_only=True) as connection:
        cursor = connection.execute(f'select * from "{schema}"."{table}"')
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    kept = [i for i, name in enumerate(names)
            if name not in RUN_COLUMNS and "synced_at" not in name and "load_id" not in name]
    return sorted(names), sorted((tuple(row[i] for i in kept) for row in rows), key=repr)


def _marts(path):
    from pipelines.dagster_defs import mart_names

    with duckdb.connect(str(path), read_only=True) as connection:
        built = {r[0] for r in connection.execute(
            "select table_name from information_schema.tables where table_schema = 'autosync'").fetchall()}
    return sorted(built & set(mart_names()))


@pytest.mark.slow
def test_one_shop_partition_matches_the_cli(tmp_path, monkeypatch):
    from pipelines import dagster_defs, run

    cli_db, dagster_db = tmp_path / "cli.duckdb", tmp_path / "dagster.duckdb"
    with Emulator(seed=5, shops=3, work_orders=20, rate_limit=0) as emulator:
        # Both read the credentials the same way: dlt config from the environment.
        monkeypatch.setenv("SOURCES__AUTOSYNC__API_KEY", emulator.api_key)
        monkeypatch.setenv("SOURCES__AUTOSYNC__BASE_URL", emulator.base_url)
        assert run.main(["--destination", "duckdb", "--duckdb-path", str(cli_db), "--pipelines-dir",
                         str(tmp_path / "cli_state"), "--shops", str(SHOP), "--no-dbt"]) == 0

        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(dagster_defs.SHOP_PARTITIONS_NAME, [str(SHOP)])
        resources = {
            "warehouse": dagster_defs.AutosyncWarehouse(destination="duckdb", duckdb_path=str(dagster_db),
                                                        pipelines_dir=str(tmp_path / "dagster_state")),
        }
        raw = dg.materialize([dagster_defs.autosync_raw_assets], partition_key=str(SHOP),
                             resources=resources, instance=instance)
        assert raw.success
        materialized = {event.asset_key for event in raw.get_asset_materialization_events()}
        assert materialized == set(dagster_defs.autosync_raw_assets.keys)
        marts = dg.materialize([dagster_defs.autosync_marts], resources=resources, instance=instance,
                               selection=dg.AssetSelection.assets(dagster_defs.autosync_marts))
        assert marts.success
        truth = emulator.truth()

    for table in all_tables():
        assert _table(dagster_db, "autosync_raw", table) == _table(cli_db, "autosync_raw", table), table
    # The marts asset ran the project's dbt build on what the partition loaded (the CLI's own
    # dbt step is the same run_dbt call, tested with the marts; one build is enough here).
    assert _marts(dagster_db) == dagster_defs.mart_names()
    _, revenue = _table(dagster_db, "autosync", "fct_revenue_daily")
    assert revenue

    # And both are the source's truth for that shop (the comparison above cannot pass on two
    # identical mistakes).
    from pipelines.orchestration import Warehouse, make_pipeline

    reader = make_pipeline(Warehouse("duckdb", "autosync_raw", str(dagster_db), str(tmp_path / "reader")),
                           pipeline_name="reader")
    assert compare_with_truth(reader, truth, shops=[SHOP]) == []


def test_shop_discovery_sensor_adds_new_shops_and_the_daily_schedule_runs_each(monkeypatch):
    from pipelines import dagster_defs

    if not isinstance(dagster_defs.SHOP_PARTITIONS, dg.DynamicPartitionsDefinition):
        pytest.skip("shops are configured statically in this environment")
    with dg.instance_for_test() as instance, Emulator(seed=5, shops=3, work_orders=2, rate_limit=0) as emulator:
        instance.add_dynamic_partitions(dagster_defs.SHOP_PARTITIONS_NAME, ["1"])
        monkeypatch.setenv("SOURCES__AUTOSYNC__API_KEY", emulator.api_key)
        monkeypatch.setenv("SOURCES__AUTOSYNC__BASE_URL", emulator.base_url)
        result = dagster_defs.autosync_shop_discovery(dg.build_sensor_context(instance=instance))
        (request,) = result.dynamic_partitions_requests
        assert sorted(request.partition_keys) == ["2", "3"]  # shop 1 was known already
        instance.add_dynamic_partitions(dagster_defs.SHOP_PARTITIONS_NAME, list(request.partition_keys))

        context = dg.build_schedule_context(instance=instance,
                                            scheduled_execution_time=datetime(2025, 6, 2, 2, tzinfo=timezone.utc))
        runs = dagster_defs.autosync_shops_daily(context)
    assert sorted(r.partition_key for r in runs) == ["1", "2", "3"]
    assert len({r.run_key for r in runs}) == 3

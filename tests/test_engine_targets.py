"""State is bound to its target: switching destination or dataset never reuses another target's
cursors, and the demo never writes into a real warehouse."""
from __future__ import annotations

import hashlib
import json
import uuid

import dlt
import pytest

import pipelines.run as run
from autosync_emulator import Emulator
from reliability_helpers import assert_exactly_truth

PG_URL = "postgresql://postgres:trust@127.0.0.1:5432/test"


def _reader(kind: str, tmp_path, dataset: str) -> dlt.Pipeline:
    destination = dlt.destinations.duckdb(str(tmp_path / "raw.duckdb")) if kind == "duckdb" else dlt.destinations.postgres(PG_URL)
    return dlt.pipeline(f"reader_{uuid.uuid4().hex[:6]}", destination=destination, dataset_name=dataset,
                        pipelines_dir=str(tmp_path / "readers"))


def _drop_postgres(dataset: str) -> None:
    import psycopg2

    with psycopg2.connect(PG_URL.replace(":trust", "")) as connection, connection.cursor() as cursor:
        cursor.execute("select nspname from pg_namespace where nspname like %s", (dataset + "%",))
        for (schema,) in cursor.fetchall():
            cursor.execute(f'drop schema "{schema}" cascade')


@pytest.mark.parametrize("second", [
    pytest.param("postgres", marks=pytest.mark.postgres, id="duckdb-then-postgres"),
    pytest.param("duckdb", id="two-datasets-of-one-duckdb"),
])
def test_switching_target_syncs_each_from_its_own_state(tmp_path, monkeypatch, capsys, second):
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", PG_URL)
    dataset_b = f"autosync_switch_{uuid.uuid4().hex[:8]}"
    common = ["--no-dbt", "--json", "--pipelines-dir", str(tmp_path / "p"), "--duckdb-path", str(tmp_path / "raw.duckdb")]
    target_a = ["--destination", "duckdb", "--dataset", "autosync_raw"]
    target_b = ["--destination", second, "--dataset", dataset_b]
    try:
        with Emulator(seed=17, shops=1, work_orders=25, rate_limit=0) as emu:
            monkeypatch.setenv("SOURCES__AUTOSYNC__API_KEY", emu.api_key)
            source = ["--base-url", emu.base_url]
            for target in (target_a, target_b):  # both synced once (the same pipelines dir: the trap)
                assert run.main([*source, *common, *target]) == 0
            capsys.readouterr()
            emu.advance(hours=30)  # the source changes
            assert run.main([*source, *common, *target_a]) == 0  # A catches up first
            capsys.readouterr()
            assert run.main([*source, *common, *target_b]) == 0  # then B, from B's own cursors
            b_run = json.loads(capsys.readouterr().out)
            truth = emu.truth()
        assert b_run["rows_total"] > 0, "B saw nothing changed: it used A's cursors"
        assert_exactly_truth(_reader("duckdb", tmp_path, "autosync_raw"), truth)
        assert_exactly_truth(_reader(second, tmp_path, dataset_b), truth)
    finally:
        if second == "postgres":
            _drop_postgres(dataset_b)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_next_to_a_real_warehouse_leaves_it_byte_for_byte_unchanged(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # where a user keeps their real warehouse.duckdb
    monkeypatch.setattr(run, "DEMO_WORLD", dict(seed=42, shops=1, work_orders=8))
    with Emulator(seed=3, shops=1, work_orders=8, rate_limit=0) as real:
        assert run.main(["--base-url", real.base_url, "--api-key", real.api_key, "--no-dbt",
                         "--resources", "shops,customers"]) == 0
    warehouse = tmp_path / "warehouse.duckdb"
    before = _digest(warehouse)
    capsys.readouterr()

    assert run.main(["--demo", "--no-dbt", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dataset"] == "autosync_demo_raw" and summary["rows"]["work_orders"] == 8
    assert (tmp_path / "autosync_demo.duckdb").exists()
    assert _digest(warehouse) == before

    # pointed at the real warehouse, the demo refuses before it starts anything
    assert run.main(["--demo", "--no-dbt", "--duckdb-path", str(warehouse)]) == 2
    assert "holds data that is not the demo's" in capsys.readouterr().err
    assert _digest(warehouse) == before


def test_dbt_vars_from_the_configuration_reach_every_dbt_build(tmp_path, monkeypatch):
    import pipelines.dbt_runner as dbt_runner
    from pipelines.engine import SyncSummary, Target
    from pipelines.engine.sync import _run_dbt

    calls = []
    monkeypatch.setattr(dbt_runner, "run_dbt", lambda pipeline, extra_args=None: calls.append(extra_args) or
                        type("Result", (), {"success": True, "summary": "ok"})())
    target = Target("duckdb", "autosync_raw", str(tmp_path / "w.duckdb"), str(tmp_path / "dlt")).resolved()
    summary = SyncSummary(run_id="r", door="test", destination="duckdb", dataset="autosync_raw")
    _run_dbt(target, summary)
    monkeypatch.setenv("AUTOSYNC__DBT_VARS", '{"shop_timezones": {"2": "America/Denver"}, "enforce_contracts": false}')
    _run_dbt(target, summary)
    # the job's own vars (the demo's as_of_date) go over the configuration's
    _run_dbt(target, summary, {"as_of_date": "2025-06-01", "enforce_contracts": True})
    assert calls[0] is None
    assert calls[1][0] == "--vars"
    assert json.loads(calls[1][1]) == {"shop_timezones": {"2": "America/Denver"}, "enforce_contracts": False}
    assert json.loads(calls[2][1]) == {"shop_timezones": {"2": "America/Denver"}, "enforce_contracts": True,
                                       "as_of_date": "2025-06-01"}


def test_duckdb_keeps_one_staging_schema_however_many_shops(tmp_path):
    """A staging schema per shop is for warehouses that several workers load at once; on DuckDB
    (one writer process) it only filled the file's catalog, and every connect read it: 100 shops
    made 1,319 tables and each shop slower than the one before (benchmarks/long_sync.py cli100)."""
    import duckdb

    from autosync_emulator import Emulator
    from pipelines.engine import SyncJob, Target, run_sync

    path = tmp_path / "raw.duckdb"
    with Emulator(seed=3, shops=3, work_orders=2, rate_limit=0) as emu:
        run_sync(SyncJob(Target(destination="duckdb", duckdb_path=str(path), pipelines_dir=str(tmp_path / "p")),
                         base_url=emu.base_url, api_key=emu.api_key))
    with duckdb.connect(str(path), read_only=True) as connection:
        schemas = {row[0] for row in connection.execute("select schema_name from information_schema.schemata").fetchall()}
    assert "autosync_raw" in schemas
    assert not [schema for schema in schemas if "staging_shop" in schema], schemas

"""The product end to end: emulator -> connector (autosync_source + dlt) -> dbt (run_dbt) -> marts,
compared with marts computed independently from the emulator's truth dump (marts_reference),
every row and column to the cent; then the emulator moves on, an incremental sync runs, and the
marts match again. On DuckDB and on Postgres."""
from __future__ import annotations

import collections
import contextlib
import io
from decimal import Decimal

import dlt
import duckdb
import pytest

import dbt_helpers as h
import marts_reference as ref
from autosync_emulator import Emulator
from pipelines.dbt_runner import fetch_mart, preview_marts, run_dbt
from source_helpers import advance_with_changes, sync

WORLD = dict(seed=5, shops=3, work_orders=15, rate_limit=0)
PG_PASSWORD = "pw-must-not-leak-7731"


def _mart_rows(pipeline, mart, model_schema=None):
    columns, rows = fetch_mart(pipeline, mart, model_schema=model_schema)
    return [dict(zip(columns, row)) for row in rows]


def _assert_marts_equal_truth(pipeline, truth, model_schema=None):
    expected = ref.compute_marts(truth)
    for mart in h.MAIN_MARTS:
        problems = ref.compare_mart(expected[mart], _mart_rows(pipeline, mart, model_schema), h.MART_KEYS[mart])
        assert problems == [], f"{mart}: {problems[:10]}"


def _assert_world_has_the_cases(truth):
    """The comparison is only as strong as the world: it must hold what the issue singles out."""
    objects = truth["objects"]
    assert len(objects["shops"]) >= 3
    jobs = collections.Counter(j["status"] for w in objects["work_orders"] for j in w["jobs"])
    assert jobs["declined"] > 0
    assert any(p["refunds"] for p in objects["payments"])
    assert any(p["status"] != "succeeded" for p in objects["payments"])
    paid = collections.Counter()
    for p in objects["payments"]:
        if p["status"] == "succeeded":
            paid[p["work_order_id"]] += Decimal(str(p["amount"]))
    assert any(0 < paid[w["id"]] < Decimal(str(w["total"])) for w in objects["work_orders"])  # partial payments
    assert any(i["approval"] == "pending" for insp in objects["inspections"] if insp["sent_at"]
               for i in insp["items"])  # unanswered inspections
    assert any(insp["sent_at"] is None for insp in objects["inspections"])  # never sent


def test_run_py_syncs_then_builds_marts_equal_to_the_truth_full_and_incremental(tmp_path):
    """`python pipelines/run.py` as a user runs it: load, then dbt build, same DuckDB file."""
    from pipelines.run import main

    dlt_dir, warehouse = str(tmp_path / "dlt"), tmp_path / "warehouse.duckdb"
    with Emulator(**WORLD) as emu:
        argv = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--pipelines-dir", dlt_dir,
                "--duckdb-path", str(warehouse)]
        truth = emu.truth()
        _assert_world_has_the_cases(truth)
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(argv) == 0
        _assert_duckdb_marts_equal_truth(warehouse, truth)

        advance_with_changes(emu, hours=6)
        deleted_draft = _delete_a_draft_work_order(emu, truth)
        truth_later = emu.truth()
        assert truth_later != truth and deleted_draft in truth_later["deleted"]["work_orders"]
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(argv + ["--reconcile-deletes"]) == 0  # incremental: same pipeline state
        _assert_duckdb_marts_equal_truth(warehouse, truth_later)

        # deletes found by the connector's reconciliation are flagged in staging, absent from marts
        live = {k: {o["id"] for o in truth_later["objects"][k]} for k in ("work_orders", "customers", "vehicles")}
        marts = {k: {r[f"{k[:-1]}_id"] for r in h.read_table_duckdb(warehouse, "autosync", m)}
                 for k, m in (("work_orders", "fct_work_orders"), ("customers", "dim_customers"),
                              ("vehicles", "dim_vehicles"))}
        assert marts == live
        flagged = {r["work_order_id"] for r in h.read_table_duckdb(warehouse, "autosync", "stg_autosync__work_orders")
                   if r["is_deleted"]}
        assert deleted_draft in flagged and not flagged & live["work_orders"]
        assert deleted_draft not in {r["work_order_id"] for r in h.read_table_duckdb(warehouse, "autosync", "fct_line_items")}

    pipeline = dlt.pipeline("marts_e2e", destination=dlt.destinations.duckdb(str(warehouse)),
                            dataset_name="autosync_raw", pipelines_dir=dlt_dir)
    preview = preview_marts(pipeline, limit=3)
    for mart in h.MAIN_MARTS:
        assert f"{mart} (3 rows shown)" in preview
    assert "average_repair_order" in preview and "item_approval_rate" in preview


def test_run_py_no_dbt_loads_without_building_marts(tmp_path):
    from pipelines.run import main

    warehouse = tmp_path / "skipped.duckdb"
    with Emulator(seed=3, shops=1, work_orders=5, rate_limit=0) as emu, \
            contextlib.redirect_stdout(io.StringIO()):
        assert main(["--base-url", emu.base_url, "--api-key", emu.api_key, "--pipelines-dir", str(tmp_path / "dlt"),
                     "--duckdb-path", str(warehouse), "--no-dbt"]) == 0
    with contextlib.closing(duckdb.connect(str(warehouse), read_only=True)) as con:
        schemas = {r[0] for r in con.execute("select schema_name from information_schema.schemata").fetchall()}
    assert "autosync_raw" in schemas and "autosync" not in schemas


def _delete_a_draft_work_order(emu, truth) -> int:
    """Delete at the source a draft work order the first sync loaded (with jobs if there is one),
    as the emulator's own activity deletes: a hard delete, no webhook."""
    drafts = [w for w in truth["objects"]["work_orders"] if w["status"] == "draft"]
    draft = max(drafts, key=lambda w: (len(w["jobs"]) > 0, -w["id"]))
    backend = emu.core.backend
    with emu.core.store.lock:
        backend.delete_work_order(backend.latest("work_orders", draft["id"]))
    return draft["id"]


def _assert_duckdb_marts_equal_truth(warehouse, truth):
    expected = ref.compute_marts(truth)
    for mart in h.MAIN_MARTS:
        problems = ref.compare_mart(expected[mart], h.read_table_duckdb(warehouse, "autosync", mart), h.MART_KEYS[mart])
        assert problems == [], f"{mart}: {problems[:10]}"


@pytest.mark.postgres
def test_postgres_marts_equal_the_truth_after_full_and_incremental_syncs(tmp_path):
    raw, marts = h.unique_name("e2e_raw"), h.unique_name("e2e_marts")
    try:
        with Emulator(**WORLD) as emu:
            pipeline = dlt.pipeline(
                pipeline_name="marts_e2e_pg",
                # trust auth accepts any password; a distinctive one shows whether it leaks
                destination=dlt.destinations.postgres(f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:5432/test"),
                dataset_name=raw, pipelines_dir=str(tmp_path / "dlt"))
            truth = emu.truth()
            sync(pipeline, emu)[0].raise_on_failed_jobs()
            result = run_dbt(pipeline, model_schema=marts)
            assert result.success and result.target == "postgres", result.summary
            _assert_marts_equal_truth(pipeline, truth, marts)

            advance_with_changes(emu, hours=6)
            truth_later = emu.truth()
            sync(pipeline, emu)[0].raise_on_failed_jobs()
            run_dbt(pipeline, model_schema=marts)
            _assert_marts_equal_truth(pipeline, truth_later, marts)

        dbt_files = [p for p in (tmp_path / "dlt").rglob("*") if p.is_file()]
        assert any(p.name == "dbt.log" for p in dbt_files)
        for path in dbt_files:
            assert PG_PASSWORD not in path.read_text(errors="ignore"), path
    finally:
        h.drop_postgres_schemas(raw, f"{raw}_staging", marts)

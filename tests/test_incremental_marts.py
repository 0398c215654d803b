"""Incremental dbt builds equal full builds, value for value.

The models whose input grows with history (int_work_orders_localized, int_line_items_enriched,
fct_work_orders, fct_line_items, fct_revenue_daily, fct_technician_throughput_weekly) rebuild only
what changed since their last build (dbt_project/macros/incremental.sql). Here the real emulator and
connector make the changes an incremental build must get right: records changed and created by the
emulator's activity, a work order hard-deleted at the source and marked by the delete
reconciliation, late commits (writes that become visible hours after their updated_at), and the
week daylight saving time ends in two of the three shops' zones. After each sync the incremental
build is compared with a `--full-refresh` build of the same raw data, every table and every row.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
from decimal import Decimal

import dlt
import duckdb
import pytest

import dbt_helpers as h
from autosync_emulator import Emulator
from autosync_source.deletes import reconcile_deletes
from pipelines.dbt_runner import run_dbt
from source_helpers import advance_with_changes, delete_a_draft_work_order, sync
from test_marts_end_to_end import AS_OF, WORLD, _assert_the_clock_cases, _make_the_clock_cases

INCREMENTAL_MODELS = h.INCREMENTAL_MODELS
STATE_TABLE = "autosync_incremental_state"
# the incremental models and everything they read: what the comparison with a full build is about
# (the other marts are full builds whatever happens, and other tests build the whole project)
LINEAGE = ["--select", " ".join("+" + model for model in INCREMENTAL_MODELS), "--indirect-selection", "cautious"]
VARS = ["--vars", json.dumps({"as_of_date": AS_OF.isoformat()})]


def _tables(con, schema):
    return sorted(r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE'",
        [schema]).fetchall() if r[0] != STATE_TABLE)


def _rows(con, schema, table):
    cursor = con.execute(f'select * from {schema}."{table}"')
    names = [d[0] for d in cursor.description]
    return names, sorted((tuple(_comparable(v) for v in row) for row in cursor.fetchall()), key=repr)


def _comparable(value):
    return value.normalize() if isinstance(value, Decimal) else value


def _assert_incremental_equals_full(warehouse, incremental, full):
    # marts build into the schema, staging and intermediate models into <schema>_staging
    with contextlib.closing(duckdb.connect(str(warehouse), read_only=True)) as con:
        pairs = [(suffix, table) for suffix in ("", "_staging") for table in _tables(con, full + suffix)]
        assert set(INCREMENTAL_MODELS) <= {table for _, table in pairs}
        for suffix in ("", "_staging"):  # the reference may build a selection of what the incremental schema holds
            assert set(_tables(con, full + suffix)) <= set(_tables(con, incremental + suffix))
        for suffix, table in pairs:
            columns, rows = _rows(con, incremental + suffix, table)
            full_columns, full_rows = _rows(con, full + suffix, table)
            assert columns == full_columns, table
            assert len(rows) > 0, table  # the world is not trivially empty for this table
            missing, extra = set(full_rows) - set(rows), set(rows) - set(full_rows)
            assert rows == full_rows, f"{table}: {len(missing)} rows of the full build missing, {len(extra)} extra: " \
                                      f"{sorted(missing, key=repr)[:3]} / {sorted(extra, key=repr)[:3]}"


def _build(pipeline, schema, *args, command="build"):
    result = run_dbt(pipeline, command, extra_args=VARS + list(args), model_schema=schema)
    assert result.success, result.summary
    return {getattr(r.node, "name", None): getattr(r.node, "compiled_code", "") or ""
            for r in result.dbt_result.result.results if getattr(r, "node", None) is not None}


def _window(compiled_code):
    window = h.incremental_window(compiled_code)
    assert window is not None, "no incremental window in the compiled SQL"
    return window


def _assert_built_incrementally(compiled):
    for model in INCREMENTAL_MODELS:
        assert _window(compiled[model])["full"] is False, f"{model} was rebuilt whole"


def _late_rows(warehouse, built_at, table="work_orders"):
    """Rows of the last load updated before `built_at` (the source's clock when the previous build's
    data was read): written then, visible only now. An incremental build that looked for changes
    by updated_at since its last run would never see them."""
    with contextlib.closing(duckdb.connect(str(warehouse), read_only=True)) as con:
        return con.execute(
            f"select count(*) from autosync_raw.{table} "
            f"where _dlt_load_id = (select max(_dlt_load_id) from autosync_raw.{table}) and updated_at < ?",
            [built_at]).fetchone()[0]


@pytest.mark.timeout(2400)  # three syncs and five dbt runs on a shared 2-core machine
def test_incremental_builds_equal_full_builds_after_changes_deletes_late_commits_and_a_dst_week(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    pipeline = dlt.pipeline("incremental_marts", destination=dlt.destinations.duckdb(str(warehouse)),
                            dataset_name="autosync_raw", pipelines_dir=str(tmp_path / "dlt"))
    with Emulator(**WORLD) as emu:
        truth = emu.truth()
        sync(pipeline, emu)[0].raise_on_failed_jobs()
        _build(pipeline, "marts", *LINEAGE, command="run")  # the first build of an incremental model is a full one

        # a day of change: a draft deleted at the source, a work order completed the hour before
        # DST ends and an invoice minutes before local midnight, the emulator's own activity
        # (updates, payments, refunds, more hard deletes), and late commits: from here on a write
        # becomes visible two hours after its updated_at
        deleted_draft = delete_a_draft_work_order(emu, truth)
        before_dst_end, late_invoice = _make_the_clock_cases(emu, truth)
        emu.configure(late_commit_seconds=2 * 3600)
        advance_with_changes(emu, hours=6)
        sync(pipeline, emu)[0].raise_on_failed_jobs()
        read_at = dt.datetime.fromisoformat(emu.clock.replace("Z", "+00:00"))
        report = reconcile_deletes(pipeline, api_key=emu.api_key, base_url=emu.base_url)
        assert report.resources["work_orders"].marked_deleted >= 1
        _assert_the_clock_cases(emu.truth(), before_dst_end, late_invoice)

        # the models and their data tests, incrementally; the reference is built once, at the end: a
        # row this build got wrong stays wrong there, since the next window reads other changes
        _assert_built_incrementally(_build(pipeline, "marts", *LINEAGE))
        with contextlib.closing(duckdb.connect(str(warehouse), read_only=True)) as con:
            assert con.execute("select count(*) from marts.fct_work_orders where work_order_id = ?",
                               [deleted_draft]).fetchone()[0] == 0

        # the late writes become visible: the next sync loads rows older than ones already built
        emu.configure(late_commit_seconds=0)
        advance_with_changes(emu, hours=3)
        sync(pipeline, emu)[0].raise_on_failed_jobs()
        assert _late_rows(warehouse, read_at) > 0
        reconcile_deletes(pipeline, api_key=emu.api_key, base_url=emu.base_url)
        _assert_built_incrementally(_build(pipeline, "marts", *LINEAGE, command="run"))
        _build(pipeline, "marts_full", "--full-refresh", *LINEAGE, command="run")  # the reference
        _assert_incremental_equals_full(warehouse, "marts", "marts_full")


def test_a_build_with_nothing_new_rewrites_no_row_and_a_full_refresh_is_one_flag_away(tmp_path):
    """On the synthetic world: a second build finds nothing to rebuild (a row tampered with stays as
    it is, which shows it was not rewritten), and `--full-refresh` rebuilds it."""
    warehouse = tmp_path / "synthetic.duckdb"
    h.load_raw_duckdb(h.make_world(), warehouse)
    pipeline = dlt.pipeline("incremental_synthetic", destination=dlt.destinations.duckdb(str(warehouse)),
                            dataset_name="autosync_raw", pipelines_dir=str(tmp_path / "dlt"))
    selection = ["--select", "+fct_revenue_daily"]
    _build(pipeline, "marts", *selection, command="run")

    def tamper():
        with contextlib.closing(duckdb.connect(str(warehouse))) as con:
            con.execute("update marts.fct_revenue_daily set work_orders_invoiced = -1 "
                        "where date = (select min(date) from marts.fct_revenue_daily)")

    def tampered():
        with contextlib.closing(duckdb.connect(str(warehouse), read_only=True)) as con:
            return con.execute("select count(*) from marts.fct_revenue_daily where work_orders_invoiced = -1").fetchone()[0]

    tamper()
    compiled = _build(pipeline, "marts", *selection, command="run")
    window = _window(compiled["fct_revenue_daily"])
    assert window["full"] is False and window["keys"] == [] and tampered() == 1
    with contextlib.closing(duckdb.connect(str(warehouse), read_only=True)) as con:
        state = con.execute(f"select model_name, watermark, is_committed from marts.{STATE_TABLE} union all "
                            f"select model_name, watermark, is_committed from marts_staging.{STATE_TABLE}").fetchall()
    # one committed watermark per incremental model built (the model and its hooks share one row)
    assert sorted((m, w, c) for m, w, c in state) == [
        (m, h.FIRST_LOAD_ID, True) for m in ("fct_revenue_daily", "int_line_items_enriched", "int_work_orders_localized")]
    _build(pipeline, "marts", *selection, "--full-refresh", command="run")
    assert tampered() == 0
    # a change of what decides every row (here the default zone) rebuilds it whole, without the flag
    tamper()
    run_dbt(pipeline, "run", extra_args=["--vars", json.dumps({"default_timezone": "America/Denver"})] + selection,
            model_schema="marts")
    assert tampered() == 0
    # more changed work orders and payments than autosync_incremental_max_keys rebuild it whole (a
    # limit below zero: the nothing that changed here is more than it)
    tamper()
    result = run_dbt(pipeline, "run", model_schema="marts", extra_args=["--vars", json.dumps(
        {"default_timezone": "America/Denver", "autosync_incremental_max_keys": -1})] + selection)
    assert result.success and tampered() == 0
    built = {r.node.name: r.node.compiled_code for r in result.dbt_result.result.results}
    assert _window(built["fct_revenue_daily"])["full"] is True

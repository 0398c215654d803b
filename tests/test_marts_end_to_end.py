"""The product end to end: emulator -> connector (autosync_source + dlt) -> dbt (run_dbt) -> marts,
compared with marts computed independently from the emulator's truth dump (marts_reference),
every row and column to the cent; then the emulator moves on, an incremental sync runs, and the
marts match again. On DuckDB and on Postgres.

Every mart is on the shop's own clock, so the world is built to make that hard: shops in three
zones (Phoenix without DST, New York, Chicago), a clock that starts the day before daylight saving
time ends (2025-11-02), a New York work order moved just before the change and more activity just
after it (one ISO week on two UTC offsets), and a Phoenix invoice four minutes before local
midnight (the next day in UTC)."""
from __future__ import annotations

import collections
import contextlib
import datetime as dt
import io
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import dlt
import duckdb
import pytest
import requests

import dbt_helpers as h
import marts_reference as ref
from autosync_emulator import Emulator
from autosync_source.deletes import reconcile_deletes
from pipelines.dbt_runner import fetch_mart, preview_marts, run_dbt
from source_helpers import advance_with_changes, delete_a_draft_work_order, sync

# the day before DST ends in the US (Sunday 2025-11-02, 06:00 UTC in New York, 07:00 in Chicago)
WORLD = dict(seed=5, shops=3, work_orders=15, rate_limit=0, start="2025-11-01T20:00:00Z")
ZONES = {1: "America/Phoenix", 2: "America/New_York", 3: "America/Chicago"}
# the day receivables are aged to in these tests (the emulator's clock is in 2025)
AS_OF = dt.date(2025, 11, 3)
COMPARED_MARTS = ("fct_revenue_daily", "fct_technician_throughput_weekly", "fct_inspection_approval_monthly",
                  "fct_shop_kpis_monthly", "fct_service_advisor_monthly", "fct_declined_work",
                  "fct_appointments_monthly", "fct_accounts_receivable", "fct_work_orders", "fct_jobs",
                  "fct_inspections", "dim_shops", "dim_customers", "dim_vehicles")
PG_PASSWORD = "pw-must-not-leak-7731"


def _mart_rows(pipeline, mart, model_schema=None):
    columns, rows = fetch_mart(pipeline, mart, model_schema=model_schema)
    return [dict(zip(columns, row)) for row in rows]


def _assert_marts_equal_truth(pipeline, truth, model_schema=None):
    expected = ref.compute_marts(truth, as_of=AS_OF)
    for mart in COMPARED_MARTS:
        assert len(expected[mart]) > 0, mart  # the world is not trivially empty for this mart
        problems = ref.compare_mart(expected[mart], _mart_rows(pipeline, mart, model_schema), ref.MART_KEYS[mart])
        assert problems == [], f"{mart}: {problems[:10]}"


def _set_clock(emu, when: dt.datetime) -> None:
    now = dt.datetime.fromisoformat(emu.clock.replace("Z", "+00:00"))
    assert when > now, (when, now)
    emu.advance(seconds=(when - now).total_seconds())


def _move_work_order(emu, truth, shop_id: int, to: str) -> int:
    """Through the public API, move one of the shop's work orders to `to` (invoiced: a completed one,
    completing an in-progress one first if needed) at the emulator's current clock."""
    flows = {"invoiced": [("completed", ["invoiced"]), ("in_progress", ["completed", "invoiced"]),
                          ("waiting_parts", ["completed", "invoiced"]), ("draft", ["in_progress", "completed", "invoiced"])],
             "completed": [("in_progress", ["completed"]), ("waiting_parts", ["completed"]),
                           ("draft", ["in_progress", "completed"])]}
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {emu.api_key}"
    current = {w["id"]: w for w in emu.truth()["objects"]["work_orders"]}
    for status, steps in flows[to]:
        candidates = sorted(w["id"] for w in current.values() if w["shop_id"] == shop_id and w["status"] == status)
        if candidates:
            for step in steps:
                answer = session.patch(f"{emu.base_url}/shops/{shop_id}/workorders/{candidates[0]}/status",
                                       json={"status": step}, timeout=10)
                assert answer.status_code == 200, answer.text
            return candidates[0]
    raise AssertionError(f"shop {shop_id} has no work order that can become {to}")


def _make_the_clock_cases(emu, truth) -> tuple[int, int]:
    """After the full sync: a New York work order completed at 01:50 EDT just before DST ends, and a
    Phoenix invoice at 23:56 local (06:56 UTC, the next UTC day). Returns their ids."""
    _set_clock(emu, dt.datetime(2025, 11, 2, 5, 50, tzinfo=dt.timezone.utc))
    before_dst_end = _move_work_order(emu, truth, 2, "completed")
    _set_clock(emu, dt.datetime(2025, 11, 2, 6, 56, tzinfo=dt.timezone.utc))
    late_invoice = _move_work_order(emu, truth, 1, "invoiced")
    return before_dst_end, late_invoice


def _assert_the_clock_cases(truth_later, before_dst_end: int, late_invoice: int) -> None:
    shops = {s["id"]: s["timezone"] for s in truth_later["objects"]["shops"]}
    assert shops == ZONES  # three zones, one without DST
    work_orders = {w["id"]: w for w in truth_later["objects"]["work_orders"]}
    invoiced_at = ref.ts(work_orders[late_invoice]["invoiced_at"])
    local = invoiced_at.astimezone(ZoneInfo(ZONES[1]))
    assert (local.hour, local.minute) == (23, 56) and local.date() != invoiced_at.date()
    # one ISO week of New York on both UTC offsets: the work order before the change, activity after
    week = dt.date(2025, 10, 27)
    offsets = set()
    for w in work_orders.values():
        if w["shop_id"] != 2:
            continue
        for field in ("created_at", "started_at", "completed_at", "invoiced_at", "updated_at"):
            if w.get(field):
                t = ref.ts(w[field]).astimezone(ZoneInfo(ZONES[2]))
                if week <= t.date() <= week + dt.timedelta(days=6):
                    offsets.add(t.utcoffset())
    assert ref.ts(work_orders[before_dst_end]["completed_at"]).astimezone(ZoneInfo(ZONES[2])).utcoffset() \
        == dt.timedelta(hours=-4)
    assert offsets == {dt.timedelta(hours=-4), dt.timedelta(hours=-5)}, offsets


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


@pytest.mark.timeout(900)  # two syncs and two full dbt builds; the 2-core machine is shared
def test_run_py_syncs_then_builds_marts_equal_to_the_truth_full_and_incremental(tmp_path):
    """`python pipelines/run.py` as a user runs it: load, then dbt build, same DuckDB file."""
    from pipelines.run import main

    dlt_dir, warehouse = str(tmp_path / "dlt"), tmp_path / "warehouse.duckdb"
    with Emulator(**WORLD) as emu:
        argv = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--pipelines-dir", dlt_dir,
                "--duckdb-path", str(warehouse)]
        truth = emu.truth()
        _assert_world_has_the_cases(truth)
        days_before = _shop_days_today()
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(argv) == 0
        _assert_duckdb_marts_equal_truth(warehouse, truth, days_before)

        deleted_draft = delete_a_draft_work_order(emu, truth)
        before_dst_end, late_invoice = _make_the_clock_cases(emu, truth)
        advance_with_changes(emu, hours=6)
        truth_later = emu.truth()
        assert truth_later != truth and deleted_draft in truth_later["deleted"]["work_orders"]
        _assert_the_clock_cases(truth_later, before_dst_end, late_invoice)
        days_before = _shop_days_today()
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(argv + ["--reconcile-deletes"]) == 0  # incremental: same pipeline state
        _assert_duckdb_marts_equal_truth(warehouse, truth_later, days_before)

    # deletes found by the connector's reconciliation are flagged in staging, absent from marts
        live = {k: {o["id"] for o in truth_later["objects"][k]} for k in ("work_orders", "customers", "vehicles")}
        marts = {k: {r[f"{k[:-1]}_id"] for r in h.read_table_duckdb(warehouse, "autosync", m)}
                 for k, m in (("work_orders", "fct_work_orders"), ("customers", "dim_customers"),
                              ("vehicles", "dim_vehicles"))}
        assert marts == live
        flagged = {r["work_order_id"] for r in h.read_table_duckdb(warehouse, "autosync_staging", "stg_autosync__work_orders")
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


def _shop_days_today():
    return {shop: dt.datetime.now(ZoneInfo(zone)).date() for shop, zone in ZONES.items()}


def _assert_duckdb_marts_equal_truth(warehouse, truth, days_before):
    """run.py builds with the var's default: receivables aged to today in each shop's zone. The build
    may straddle a shop's midnight (CI once ran this at 05:00 UTC, New York's midnight), so each shop's
    day is the one the build used, which must be that shop's day before or after the build."""
    receivable = h.read_table_duckdb(warehouse, "autosync", "fct_accounts_receivable")
    days_after = _shop_days_today()
    used = {r["shop_id"]: r["as_of_date"] for r in receivable}
    assert len({(r["shop_id"], r["as_of_date"]) for r in receivable}) == len(used), "one as_of_date a shop"
    for shop, day in used.items():
        assert day in (days_before[shop], days_after[shop]), (shop, day, days_before[shop], days_after[shop])
    expected = ref.compute_marts(truth, as_of={shop: used.get(shop, days_after[shop]) for shop in ZONES})
    for mart in COMPARED_MARTS:
        assert len(expected[mart]) > 0, mart
        problems = ref.compare_mart(expected[mart], h.read_table_duckdb(warehouse, "autosync", mart),
                                    ref.MART_KEYS[mart])
        assert problems == [], f"{mart}: {problems[:10]}"


@pytest.mark.postgres
@pytest.mark.slow  # a minute: the suite has the Postgres load and the Postgres marts apart (test_source_postgres, test_dbt_project)
@pytest.mark.timeout(900)
def test_postgres_marts_equal_the_truth_after_full_and_incremental_syncs(tmp_path):
    raw, marts = h.unique_name("e2e_raw"), h.unique_name("e2e_marts")
    try:
        with Emulator(**WORLD) as emu:
            pipeline = dlt.pipeline(
                pipeline_name="marts_e2e_pg",
                # trust auth accepts any password; a distinctive one shows whether it leaks
                destination=dlt.destinations.postgres(f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:5432/test"),
                dataset_name=raw, pipelines_dir=str(tmp_path / "dlt"))
            as_of = ["--vars", json.dumps({"as_of_date": AS_OF.isoformat()})]
            truth = emu.truth()
            sync(pipeline, emu)[0].raise_on_failed_jobs()
            result = run_dbt(pipeline, extra_args=as_of, model_schema=marts)
            assert result.success and result.target == "postgres", result.summary
            _assert_marts_equal_truth(pipeline, truth, marts)

            before_dst_end, late_invoice = _make_the_clock_cases(emu, truth)
            advance_with_changes(emu, hours=6)
            truth_later = emu.truth()
            _assert_the_clock_cases(truth_later, before_dst_end, late_invoice)
            sync(pipeline, emu)[0].raise_on_failed_jobs()
            # the emulator's activity hard-deletes records (appointments among them): the
            # reconciliation marks them, as run.py --reconcile-deletes does in the DuckDB test
            reconcile_deletes(pipeline, api_key=emu.api_key, base_url=emu.base_url)
            run_dbt(pipeline, extra_args=as_of, model_schema=marts)
            _assert_marts_equal_truth(pipeline, truth_later, marts)

        dbt_files = [p for p in (tmp_path / "dlt").rglob("*") if p.is_file()]
        assert any(p.name == "dbt.log" for p in dbt_files)
        for path in dbt_files:
            assert PG_PASSWORD not in path.read_text(errors="ignore"), path
    finally:
        h.drop_postgres_schemas(raw, f"{raw}_staging", marts, f"{marts}_staging")

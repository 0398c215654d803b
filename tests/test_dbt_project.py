"""The dbt project on a purpose-built world (tests/dbt_helpers.make_world): raw tables shaped as the
connector loads them are written directly, so these tests need neither the emulator nor the
connector. The world holds the edge cases: declined jobs, partial/failed payments, refunds on other
days, unsent and unanswered inspections, deleted work orders/customers/inspections/payments, events a
second either side of midnight and of the ISO week start, averages ending in half a cent, shops in
three zones (one without DST) over the March DST change. The semantic layer (MetricFlow) is asked
the same questions on DuckDB and Postgres and compared with the same reference.

One coherent thing, over 400 lines: every mart against one purpose-built world and one reference.
"""
from __future__ import annotations

import contextlib
from decimal import Decimal
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
import yaml

import dbt_helpers as h
import marts_reference as ref
import mf_helpers
from pipelines.dbt_runner import DbtRunError, DbtTarget, dbt_command, environment, invoke_dbt

# The module's first test builds the world (a minute or more on the shared 2-core machine).
pytestmark = pytest.mark.timeout(900)

ALL_MARTS = h.MAIN_MARTS + ("fct_shop_kpis_monthly", "fct_service_advisor_monthly", "fct_declined_work", "fct_jobs",
                            "fct_inspections",
                            "fct_appointments_monthly", "fct_accounts_receivable", "dim_shops", "dim_customers",
                            "dim_vehicles", "dim_employees", "dim_dates", "fct_work_orders", "fct_line_items",
                            "fct_payments", "fct_inspection_items")
# receivables are aged to this day (the world's clock), not to today
AS_OF = dt.date(2025, 3, 20)
AS_OF_VARS = ["--vars", json.dumps({"as_of_date": AS_OF.isoformat()})]
# the marts with a fixed grain (contract enforced) and the dims and facts compared with the reference
COMPARED = tuple(ref.MART_KEYS)


@pytest.fixture(scope="module")
def world():
    return h.make_world(seed=7, shops=3, work_orders=40)


@pytest.fixture(scope="module")
def dbt_work_dir(tmp_path_factory):
    """One dbt target/ for the module's DuckDB runs, so dbt re-parses only what changed."""
    return str(tmp_path_factory.mktemp("dbt_work"))


@pytest.fixture(scope="module")
def built_duckdb(world, tmp_path_factory, dbt_work_dir):
    """The world's raw tables in a DuckDB file, after one `dbt build`."""
    path = tmp_path_factory.mktemp("dbt_duckdb") / "warehouse.duckdb"
    h.load_raw_duckdb(world, path)
    result = invoke_dbt(DbtTarget.duckdb(path, "autosync_raw", work_dir=dbt_work_dir), "build", AS_OF_VARS)
    # the semantic manifest of this build (later tests rebuild copies into the same target/)
    shutil.copy(Path(dbt_work_dir) / "target" / "semantic_manifest.json", path.parent / "semantic_manifest.json")
    return path, result


def _copy(path: Path, tmp_path: Path) -> Path:
    # the same file name: DuckDB names the catalog after the file, and dbt-duckdb's views refer to
    # their inputs through it ("warehouse"."autosync"....), so a renamed copy breaks every view
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    return copy


def test_build_on_duckdb_passes_every_test_including_unit_and_reconciliation_tests(built_duckdb):
    _, result = built_duckdb
    assert result.success and not result.failures, result.summary
    nodes = [r.node.unique_id for r in result.dbt_result.result.results]
    unit_tests = [n for n in nodes if n.startswith("unit_test.")]
    assert len(unit_tests) >= 3, unit_tests
    assert any("sums_reconcile_fct_revenue_daily_invoiced_total" in n for n in nodes)
    assert any("sums_reconcile_fct_revenue_daily_net_collected" in n for n in nodes)
    for mart in ALL_MARTS:
        assert f"model.autosync.{mart}" in nodes


@pytest.mark.parametrize("mart", COMPARED)
def test_duckdb_marts_equal_the_reference_to_the_cent(built_duckdb, world, mart):
    path, _ = built_duckdb
    expected = ref.compute_marts(world, as_of=AS_OF)[mart]
    actual = h.read_table_duckdb(path, "autosync", mart)
    assert len(expected) >= 3  # the world is not trivially empty
    assert ref.compare_mart(expected, actual, ref.MART_KEYS[mart]) == []


def test_the_marts_follow_the_shops_clock_not_utc(built_duckdb, world):
    """Guards the comparison above: in this world the local dates differ from the UTC ones."""
    path, _ = built_duckdb
    revenue = ref.compute_marts(world)["fct_revenue_daily"]
    utc_days = {(w["shop_id"], ref.utc_date(w["invoiced_at"])) for w in ref.live_objects(world)["work_orders"]
                if w.get("invoiced_at")}
    local_days = {(r["shop_id"], r["date"]) for r in revenue.to_dict("records") if r["work_orders_invoiced"]}
    assert utc_days != local_days
    shops = {r["shop_id"]: r["timezone"] for r in h.read_table_duckdb(path, "autosync", "dim_shops")}
    assert shops == {1: "America/Phoenix", 2: "America/New_York", 3: "America/Chicago"}


def test_the_world_holds_the_analysts_cases_and_the_marts_get_them_right(built_duckdb, world):
    """Guards the comparisons above (METRICS, 2026-12-06): the cases that were wrong are in the world,
    and the built marts show them as defined."""
    path, _ = built_duckdb
    declined = {(r["source"], r["source_id"]): r for r in h.read_table_duckdb(path, "autosync", "fct_declined_work")}
    back = [r for r in declined.values() if r["customer_name"] == "Back Again"]
    by_name = {ref.name_key(r["description"]): r for r in back}
    # the declined brake job once, with the later of its two declined items, sold later in other spelling
    brakes = by_name["brake pads"]
    assert brakes["source"] == "job" and brakes["inspection_item_id"] is not None
    assert brakes["recovered"] and brakes["recovered_amount"] == Decimal("320.00") and brakes["amount"] == Decimal("310.00")
    assert ("inspection_item", brakes["inspection_item_id"]) not in declined
    assert by_name["wiper blades"]["source"] == "inspection_item" and by_name["wiper blades"]["recovered"]
    assert by_name["alignment"]["source"] == "inspection_item" and not by_name["alignment"]["recovered"]
    assert by_name["alignment"]["vehicle_returned"] and "battery" not in by_name  # sold after all: no row
    # a paid invoice refunded in full: the API says balance_due > 0, nothing is owed
    work_orders = {w["id"]: w for w in ref.live_objects(world)["work_orders"]}
    receivable = {r["work_order_id"] for r in h.read_table_duckdb(path, "autosync", "fct_accounts_receivable")}
    refunded = [p["work_order_id"] for p in world["objects"]["payments"] if p["refunds"]
                and ref.dec(p["refunded_amount"]) == ref.dec(work_orders[p["work_order_id"]]["total"])]
    assert refunded and not set(refunded) & receivable
    assert all(ref.dec(work_orders[w]["balance_due"]) > 0 for w in refunded)
    kpis = h.read_table_duckdb(path, "autosync", "fct_shop_kpis_monthly")
    assert sum(r["reactivated_customers"] for r in kpis) >= 1 and sum(r["comeback_jobs"] for r in kpis) >= 1
    assert all(r["customers_served"] == r["new_customers"] + r["returning_customers"] + r["reactivated_customers"]
               for r in kpis)
    appointments = h.read_table_duckdb(path, "autosync", "fct_appointments_monthly")
    assert sum(r["scheduled"] for r in appointments) >= 1 and sum(r["converted"] for r in appointments) >= 1


def test_a_timezone_override_and_the_default_zone_move_the_dates(built_duckdb, world, tmp_path, dbt_work_dir):
    """var shop_timezones beats the shop's own zone; default_timezone applies to shops without one."""
    path = _copy(built_duckdb[0], tmp_path)
    with contextlib.closing(duckdb.connect(str(path))) as con:
        con.execute("update autosync_raw.shops set timezone = null where id = 3")
    zones = {"shop_timezones": {"1": "Pacific/Honolulu"}, "default_timezone": "Asia/Tokyo",
             "as_of_date": AS_OF.isoformat()}
    # `run`, not `build`: the copy's other relations still point at the original file's catalog
    invoke_dbt(DbtTarget.duckdb(path, "autosync_raw", work_dir=dbt_work_dir), "run",
               ["--select", "+fct_revenue_daily", "+dim_shops", "--vars", json.dumps(zones)])
    shops = {r["shop_id"]: (r["timezone"], r["timezone_source"]) for r in h.read_table_duckdb(path, "autosync", "dim_shops")}
    assert shops == {1: ("Pacific/Honolulu", "override"), 2: ("America/New_York", "shop"), 3: ("Asia/Tokyo", "default")}
    without_zone = {**world, "objects": {**world["objects"], "shops": [
        {**s, "timezone": None} if s["id"] == 3 else s for s in world["objects"]["shops"]]}}
    expected = ref.compute_marts(without_zone, overrides={1: "Pacific/Honolulu"}, default_timezone="Asia/Tokyo")
    actual = h.read_table_duckdb(path, "autosync", "fct_revenue_daily")
    assert ref.compare_mart(expected["fct_revenue_daily"], actual, ref.MART_KEYS["fct_revenue_daily"]) == []


def test_a_zone_var_that_is_not_a_zone_name_fails_with_a_clear_message(built_duckdb, tmp_path, dbt_work_dir):
    path = _copy(built_duckdb[0], tmp_path)
    with pytest.raises(DbtRunError) as error:
        invoke_dbt(DbtTarget.duckdb(path, "autosync_raw", work_dir=dbt_work_dir), "run",
                   ["--select", "int_shop_timezones", "--vars", json.dumps({"shop_timezones": {"1": "x'; drop"}})])
    assert "is not an IANA time zone name" in str(error.value)


def test_metricflow_answers_equal_the_reference_on_duckdb(built_duckdb, world, tmp_path):
    """`mf validate-configs` (semantic and warehouse checks) and `mf query` calls, in one process."""
    path, _ = built_duckdb
    answer = mf_helpers.run_probe(path.parent / "semantic_manifest.json",
                                  DbtTarget.duckdb(path, "autosync_raw").profile_env, tmp_path)
    assert all(result["rows"] for result in answer["results"])
    assert mf_helpers.compare_answers(answer, world) == []
    assert mf_helpers.kpi_ratios_match_their_marts(world) == []


def test_the_world_exercises_the_edge_cases(world):
    """Guards the fixture: if the generator stops producing these cases the tests above go soft."""
    revenue = ref.compute_marts(world)["fct_revenue_daily"]
    inspection = ref.compute_marts(world)["fct_inspection_approval_monthly"]
    throughput = ref.compute_marts(world)["fct_technician_throughput_weekly"]
    assert (revenue["average_repair_order"].isna()).any()          # payment-only days
    assert (revenue["refunds"] > 0).any()
    assert "0.15" in {str(v) for v in revenue["average_repair_order"].dropna()}  # 0.29 / 2, half up
    assert inspection["item_approval_rate"].isna().any() or inspection["red_item_approval_rate"].isna().any()
    assert (throughput["avg_cycle_time_hours"].isna()).any()         # technicians with jobs but no work orders
    assert world["deleted"]["work_orders"] and world["deleted"]["customers"] and world["deleted"]["payments"]


def test_deleted_records_are_flagged_in_staging_and_absent_from_marts(built_duckdb, world):
    path, _ = built_duckdb
    deleted_wo = set(world["deleted"]["work_orders"])
    deleted_customers = set(world["deleted"]["customers"])
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        flagged = {r[0] for r in con.execute(
            "select work_order_id from autosync_staging.stg_autosync__work_orders where is_deleted").fetchall()}
        assert flagged == deleted_wo
        in_marts = {r[0] for r in con.execute("select work_order_id from autosync.fct_work_orders").fetchall()}
        assert not in_marts & deleted_wo
        line_item_orders = {r[0] for r in con.execute("select work_order_id from autosync.fct_line_items").fetchall()}
        assert not line_item_orders & deleted_wo
        payment_orders = {r[0] for r in con.execute("select work_order_id from autosync.fct_payments").fetchall()}
        assert not payment_orders & deleted_wo
        customers = {r[0] for r in con.execute("select customer_id from autosync.dim_customers").fetchall()}
        assert not customers & deleted_customers and customers


def test_every_mart_and_column_is_documented_and_the_docs_match_the_tables(built_duckdb):
    path, _ = built_duckdb
    documented = {}
    for yml in (h.DBT_PROJECT_DIR / "models").rglob("*.yml"):
        for model in (yaml.safe_load(yml.read_text()) or {}).get("models", []):
            documented[model["name"]] = model
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        for mart in ALL_MARTS:
            model = documented[mart]
            assert model.get("description", "").strip(), mart
            described = {c["name"]: c.get("description", "").strip() for c in model["columns"]}
            assert all(described.values()), (mart, [c for c, d in described.items() if not d])
            actual = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'autosync' "
                "and table_name = ? order by ordinal_position", [mart]).fetchall()]
            assert list(described) == actual, mart
    main_columns = {"fct_revenue_daily": ref.REVENUE_COLUMNS,
                    "fct_technician_throughput_weekly": ref.THROUGHPUT_COLUMNS,
                    "fct_inspection_approval_monthly": ref.INSPECTION_COLUMNS}
    for mart, columns in main_columns.items():  # exactly the defined columns, in that order
        assert [c["name"] for c in documented[mart]["columns"]] == columns


def test_a_model_per_raw_table_and_a_yml_beside_each_model():
    models = h.DBT_PROJECT_DIR / "models"
    staging = sorted(p.stem for p in (models / "staging").rglob("stg_*.sql"))
    assert len(staging) == len(h.RAW_TABLES)
    for sql in models.rglob("*.sql"):
        assert sql.with_suffix(".yml").exists(), sql
    for sql in (models / "marts").glob("*.sql"):
        text = sql.read_text()
        assert text.lstrip().startswith(("with", "{#-")) and text.rstrip().endswith("select * from final"), sql


def test_a_failing_data_test_raises_an_error_naming_the_node(built_duckdb, tmp_path, dbt_work_dir):
    path = _copy(built_duckdb[0], tmp_path)
    with contextlib.closing(duckdb.connect(str(path))) as con:
        con.execute("update autosync_raw.work_orders set status = 'teleported' where id = (select min(id) from autosync_raw.work_orders)")
    with pytest.raises(DbtRunError) as failure:
        invoke_dbt(DbtTarget.duckdb(path, "autosync_raw", work_dir=dbt_work_dir), "build",
                   ["--select", "stg_autosync__work_orders"])
    assert "accepted_values_stg_autosync__work_orders_work_order_status" in str(failure.value)
    assert [f for f in failure.value.failures if f[1] == "fail"]


def test_reconciliation_catches_a_mart_that_drifts_from_its_work_orders(built_duckdb, tmp_path, dbt_work_dir):
    path = _copy(built_duckdb[0], tmp_path)
    with contextlib.closing(duckdb.connect(str(path))) as con:
        shop_id, day = con.execute("select shop_id, date from autosync.fct_revenue_daily "
                                   "where work_orders_invoiced > 0 order by date limit 1").fetchone()
        con.execute("update autosync.fct_revenue_daily set invoiced_total = invoiced_total + 0.01, "
                    "invoiced_revenue = invoiced_revenue + 0.01 where shop_id = ? and date = ?", [shop_id, day])
        con.execute("update autosync.fct_payments set net_collected_amount = net_collected_amount - 1 "
                    "where payment_id = (select min(payment_id) from autosync.fct_payments where refunds_count > 0)")
    with pytest.raises(DbtRunError) as failure:
        invoke_dbt(DbtTarget.duckdb(path, "autosync_raw", work_dir=dbt_work_dir), "test",
                   ["--select", "fct_revenue_daily", "--exclude", "test_type:unit"])
    failing = " ".join(node for node, _, _ in failure.value.failures)
    assert "sums_reconcile_fct_revenue_daily_invoiced_total" in failing
    assert "sums_reconcile_fct_revenue_daily_invoiced_revenue" in failing
    assert "sums_reconcile_fct_revenue_daily_net_collected" in failing


def test_source_freshness_passes_after_a_sync_and_fails_when_the_last_sync_is_stale(built_duckdb, tmp_path, dbt_work_dir):
    # Freshness reads the sync log (_autosync_runs), which every sync of the engine appends to:
    # here, one successful sync of every table just now (tests/test_sync_log.py runs the real one).
    import dlt

    from pipelines.engine import sync_log

    path = _copy(built_duckdb[0], tmp_path)
    now = datetime.now(timezone.utc)
    rows = [{name: None for name, _ in sync_log.COLUMNS} | {
        "run_id": "r1", "door": "test", "shop_id": 1, "resource": table, "status": "ok",
        "started_at": now, "finished_at": now} for table in h.TOP_LEVEL]
    probe = dlt.pipeline("probe", destination=dlt.destinations.duckdb(str(path)), dataset_name="autosync_raw",
                         pipelines_dir=str(tmp_path / "dlt"))
    assert sync_log.record(probe, rows)
    target = DbtTarget.duckdb(path, "autosync_raw", work_dir=dbt_work_dir)
    fresh = invoke_dbt(target, "source freshness")
    assert fresh.success and fresh.counts.get("pass", 0) == len(h.TOP_LEVEL), fresh.summary
    with contextlib.closing(duckdb.connect(str(path))) as con:
        con.execute("update autosync_raw._autosync_runs set finished_at = finished_at - interval 10 day "
                    "where resource = 'work_orders'")
    with pytest.raises(DbtRunError) as stale:
        invoke_dbt(target, "source freshness")
    assert "source.autosync.autosync.work_orders" in str(stale.value)


def test_docs_generate_writes_a_catalog_of_the_marts(built_duckdb, tmp_path, dbt_work_dir):
    path = _copy(built_duckdb[0], tmp_path)
    work_dir = Path(dbt_work_dir)
    result = invoke_dbt(DbtTarget.duckdb(path, "autosync_raw", work_dir=dbt_work_dir), "docs generate")
    assert result.success
    catalog = json.loads((work_dir / "target" / "catalog.json").read_text())
    for mart in ALL_MARTS:
        node = catalog["nodes"][f"model.autosync.{mart}"]
        assert node["metadata"]["schema"] == "autosync"
    assert (work_dir / "target" / "index.html").exists()


@pytest.mark.postgres
def test_postgres_build_equals_the_reference_to_the_cent_whatever_the_session_time_zone(world, tmp_path):
    raw, marts = h.unique_name("dbt_raw"), h.unique_name("dbt_marts")
    try:
        h.load_raw_postgres(world, raw)
        # a session 14 hours ahead of UTC: dates, weeks and months must still be the shops' own
        target = DbtTarget.postgres(raw, marts, work_dir=str(tmp_path / "dbt"))
        with environment({"PGTZ": "Pacific/Kiritimati"}):
            result = invoke_dbt(target, "build", AS_OF_VARS)
        assert result.success and result.counts.get("pass", 0) > 200, result.summary
        expected = ref.compute_marts(world, as_of=AS_OF)
        for mart in COMPARED:
            actual = h.read_table_postgres(marts, mart)
            assert ref.compare_mart(expected[mart], actual, ref.MART_KEYS[mart]) == [], mart
        # the semantic layer on Postgres: same questions, same reference
        answer = mf_helpers.run_probe(tmp_path / "dbt" / "target" / "semantic_manifest.json",
                                      {**target.profile_env, "PGTZ": "Pacific/Kiritimati"}, tmp_path)
        assert mf_helpers.compare_answers(answer, world) == []
    finally:
        h.drop_postgres_schemas(raw, marts, f"{marts}_staging")


# ----------------------------------------------------------------------------------------------
# BigQuery: no account here. `dbt parse` and `dbt compile` run offline with a locally generated
# service-account key (compile needs --no-populate-cache, else it retries Google's token host).
def _fake_service_account_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "autosync-offline", "private_key_id": "0" * 40,
        "private_key": pem, "client_email": "dbt@autosync-offline.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token"}))


def _bigquery_dbt(tmp_path: Path, command: str, *extra_args: str) -> subprocess.CompletedProcess:
    target = DbtTarget.bigquery("autosync_raw", "autosync-offline", str(tmp_path / "key.json"), work_dir=str(tmp_path))
    args, env = dbt_command(target, command, extra_args, quiet=False)
    # A subprocess with a timeout: without --no-populate-cache (or on a dbt-bigquery that changes
    # it) compile would retry the token host for minutes instead of failing.
    return subprocess.run([sys.executable, "-c", "from dbt.cli.main import cli; cli()", *args],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=240)


@pytest.mark.slow  # a minute on the shared machine (a dbt process and 200 files through sqlglot)
def test_bigquery_parse_and_compile_offline_with_portable_sql(tmp_path):
    pytest.importorskip("dbt.adapters.bigquery", reason="dbt-bigquery is in the bigquery extra")
    sqlglot = pytest.importorskip("sqlglot")
    _fake_service_account_key(tmp_path / "key.json")
    # parses first; no warehouse to ask whether the raw tables exist
    compiled = _bigquery_dbt(tmp_path, "compile", "--no-populate-cache", "--vars", "{check_source_tables: false}")
    assert compiled.returncode == 0, compiled.stdout[-3000:]

    compiled_dir = tmp_path / "target" / "compiled" / "autosync" / "models"
    files = sorted(compiled_dir.rglob("*.sql"))  # models and their data tests
    models = [f for f in files if f.parent.suffix != ".yml"]
    assert len(models) == len(list((h.DBT_PROJECT_DIR / "models").rglob("*.sql")))
    assert len(files) > 200
    for sql_file in files:
        sql = sql_file.read_text()
        # DuckDB/Postgres-only spellings must not reach BigQuery
        for forbidden in ("timestamptz", "::", "double precision", "decimal(", "hugeint", "//", "at time zone"):
            assert forbidden not in sql.lower(), (sql_file.name, forbidden)
        sqlglot.parse_one(sql, read="bigquery")  # raises on a syntax BigQuery's grammar rejects
    weekly = (compiled_dir / "marts" / "fct_technician_throughput_weekly.sql").read_text()
    # the Monday of the ISO week (BigQuery's `week` starts on Sunday), stepped back by day of week
    assert "mod(extract(dayofweek from date(completed_on)) + 5, 7)" in weekly
    # the shop's clock: BigQuery's own conversion of a TIMESTAMP to a zone's date
    localized = (compiled_dir / "intermediate" / "int_work_orders_localized.sql").read_text()
    assert "date(invoiced_at, shop_timezone)" in localized
    revenue = (compiled_dir / "marts" / "fct_revenue_daily.sql").read_text()
    assert "union distinct" in revenue and "bignumeric" in revenue


def test_preview_reads_the_marts_of_a_file_named_like_the_schema(built_duckdb, tmp_path):
    """autosync.duckdb is catalog `autosync`: `autosync.<mart>` would be ambiguous in DuckDB."""
    import dlt

    from pipelines.dbt_runner import preview_marts

    path = tmp_path / "autosync.duckdb"
    shutil.copy(built_duckdb[0], path)
    pipeline = dlt.pipeline("preview", destination=dlt.destinations.duckdb(str(path)), dataset_name="autosync_raw",
                            pipelines_dir=str(tmp_path / "dlt"))
    preview = preview_marts(pipeline, limit=2)
    for mart in h.MAIN_MARTS:
        assert f"{mart} (2 rows shown)" in preview
    assert preview.count("\n") > 12


def test_a_bigquery_pipeline_maps_to_a_profile_that_parses_without_writing_the_key(tmp_path):
    pytest.importorskip("dbt.adapters.bigquery", reason="dbt-bigquery is in the bigquery extra")
    import dlt

    from pipelines.dbt_runner import target_for_pipeline

    _fake_service_account_key(tmp_path / "key.json")
    key = json.loads((tmp_path / "key.json").read_text())
    pipeline = dlt.pipeline("bq_mapping", destination=dlt.destinations.bigquery(credentials=key, location="EU"),
                            dataset_name="raw_bq", pipelines_dir=str(tmp_path / "dlt"))
    with environment({"AUTOSYNC_BIGQUERY_KEYFILE": None, "GOOGLE_APPLICATION_CREDENTIALS": None}):
        target = target_for_pipeline(pipeline, "marts_bq")
        assert target.name == "bigquery_json" and target.raw_schema == "raw_bq" and target.model_schema == "marts_bq"
        assert target.env["AUTOSYNC_BIGQUERY_PROJECT"] == "autosync-offline"
        assert target.env["AUTOSYNC_BIGQUERY_LOCATION"] == "EU"
        assert key["private_key"] not in repr(target)
        target.work_dir = str(tmp_path / "dbt")
        assert invoke_dbt(target, "parse").success
    assert not any(key["private_key"][40:80] in p.read_text(errors="ignore")
                   for p in (tmp_path / "dbt").rglob("*") if p.is_file())
    with environment({"AUTOSYNC_BIGQUERY_KEYFILE": str(tmp_path / "key.json")}):
        assert target_for_pipeline(pipeline).name == "bigquery"


def test_raw_tables_not_created_yet_read_as_empty(built_duckdb, tmp_path, dbt_work_dir):
    """dlt creates a table only when rows arrive (no refund yet: no payments__refunds table)."""
    path = _copy(built_duckdb[0], tmp_path)
    with contextlib.closing(duckdb.connect(str(path))) as con:
        for table in ("payments__refunds", "inspections__items__photos", "appointments"):
            con.execute(f'drop table autosync_raw."{table}"')
    # no --full-refresh: the incremental marts notice the vanished tables themselves
    result = invoke_dbt(DbtTarget.duckdb(path, "autosync_raw", work_dir=dbt_work_dir), "build",
                        ["--exclude", "test_type:unit"])
    assert result.success, result.summary
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        assert con.execute("select sum(refunds_count), count(*) from autosync.fct_payments").fetchone()[1] > 0
        assert con.execute("select sum(refunds_count) from autosync.fct_payments").fetchone()[0] == 0
        assert con.execute("select sum(refunds) from autosync.fct_revenue_daily").fetchone()[0] == 0
        assert con.execute("select count(*) from autosync_staging.stg_autosync__appointments").fetchone()[0] == 0


def test_a_raw_dataset_that_does_not_exist_fails_clearly_and_vars_reach_dbt(built_duckdb, tmp_path, dbt_work_dir):
    path = _copy(built_duckdb[0], tmp_path)
    with pytest.raises(DbtRunError) as failure:  # the caller's --vars are merged with raw_schema, and win
        invoke_dbt(DbtTarget.duckdb(path, "autosync_raw", work_dir=dbt_work_dir), "run",
                   ["--select", "stg_autosync__shops", "--vars", "{raw_schema: never_loaded}"])
    assert "the raw dataset 'never_loaded' has no tables" in str(failure.value)
    assert failure.value.failures[0][0] == "model.autosync.stg_autosync__shops"

"""BigQuery for real, on a local BigQuery emulator: `python pipelines/run.py --destination bigquery`
loads the AutoSync emulator's world (full, then incremental with a hard delete reconciled), then
builds the whole dbt project on the BigQuery target. The raw tables equal the world's truth, and
every mart equals the DuckDB mart of the same world value for value (money to the cent, dates
as dates).

The product is configured only as a user configures it for Google's BigQuery: dlt's settings
(`DESTINATION__BIGQUERY__CREDENTIALS__TOKEN` / `__PROJECT_ID`, `DESTINATION__BIGQUERY__LOCATION`)
and Google's own `BIGQUERY_EMULATOR_HOST`. Emulator-only settings are marked below.

The emulator is bqemulator (DuckDB underneath, SQL translated by sqlglot), in its own venv
(tests/bigquery_emulator.py); the tier is skipped when it is not built. What it cannot show about
Google's service (types it returns differently, permissions, quotas, costs, partitioning) is in
the README's BigQuery section.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List

import pytest

pytest.importorskip("google.cloud.bigquery", reason="the bigquery extra is not installed")

import dlt  # noqa: E402

import dbt_helpers as h  # noqa: E402
from autosync_emulator import Emulator  # noqa: E402
from bigquery_emulator import SKIP_REASON, BigQueryEmulator, emulator_bin  # noqa: E402
from reliability_helpers import assert_exactly_truth, deletion_problems  # noqa: E402
from source_helpers import advance_with_changes, delete_a_draft_work_order  # noqa: E402

# The emulator runs every query through sqlglot on one core: on the shared 2-core machine the tier
# took 5-9 minutes under load (about 2.5 min of CPU), over the suite's default 300 s per test.
pytestmark = [pytest.mark.skipif(emulator_bin() is None, reason=SKIP_REASON), pytest.mark.slow,
              pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[1]
WORLD = dict(seed=5, shops=3, work_orders=12, rate_limit=0)
TOKEN = "ya29.static-token-must-not-leak-4471"  # distinctive, to search the logs and state for it
MARTS = sorted(p.stem for p in (ROOT / "dbt_project" / "models" / "marts").glob("*.sql"))


@pytest.fixture(scope="module")
def bigquery():
    """One emulator for the module, on free 127.0.0.1 ports; stopped at the end."""
    with BigQueryEmulator() as emulator:
        yield emulator


def _user_settings(bq: BigQueryEmulator) -> Dict[str, str]:
    """The environment of a scheduled run.py against BigQuery."""
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("DESTINATION__", "SOURCES__", "AUTOSYNC", "DLT_", "BIGQUERY_"))}
    return {
        **inherited,
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        # what a user of Google's BigQuery sets as well: an access token and the project
        # (pipelines/bigquery_destination.py), the dataset location
        "DESTINATION__BIGQUERY__CREDENTIALS__TOKEN": TOKEN,
        "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID": bq.project,
        "DESTINATION__BIGQUERY__LOCATION": "US",
        # emulator only: Google's client library sends every call here instead of to Google
        "BIGQUERY_EMULATOR_HOST": bq.endpoint,
        # emulator only: bqemulator does not un-gzip load files (BigQuery does; dlt gzips them)
        "DATA_WRITER__DISABLE_COMPRESSION": "true",
        # never let google-auth probe a cloud metadata server from a test machine
        "NO_GCE_CHECK": "True",
        # emulator only: bqemulator cannot run the `CREATE TABLE t (columns) AS SELECT` that
        # dbt-bigquery issues for a contracted mart (Google's BigQuery can); the marts' values are
        # compared with DuckDB's, where the contracts are enforced
        "AUTOSYNC__DBT_VARS": '{"enforce_contracts": false}',
    }


def _run_py(env: Dict[str, str], *args: str) -> Dict[str, Any]:
    result = subprocess.run([sys.executable, str(ROOT / "pipelines" / "run.py"), "--destination", "bigquery",
                             "--json", *args], cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=900)
    messages = "\n".join(line for line in result.stderr.splitlines()  # without dlt's progress bars
                         if line.strip() and "| Time:" not in line and not line.startswith("---"))
    assert result.returncode == 0, f"run.py exited {result.returncode}:\n{messages[-8000:]}"
    assert TOKEN not in result.stdout + result.stderr
    return json.loads(result.stdout)


@contextlib.contextmanager
def _reader(bq: BigQueryEmulator, tmp_path: Path):
    """A dlt pipeline in this process that only reads the emulator's `autosync_raw` dataset."""
    from google.oauth2.credentials import Credentials

    previous = os.environ.get("BIGQUERY_EMULATOR_HOST")
    os.environ["BIGQUERY_EMULATOR_HOST"] = bq.endpoint
    try:
        yield dlt.pipeline(
            "bq_reader", dataset_name="autosync_raw", pipelines_dir=str(tmp_path / "reader"),
            destination=dlt.destinations.bigquery(
                credentials=Credentials(token=TOKEN, quota_project_id=bq.project), location="US"),
        )
    finally:
        if previous is None:
            os.environ.pop("BIGQUERY_EMULATOR_HOST", None)
        else:
            os.environ["BIGQUERY_EMULATOR_HOST"] = previous


def _bigquery_rows(reader: dlt.Pipeline, dataset: str, table: str) -> List[Dict[str, Any]]:
    with reader.sql_client() as client:
        with client.execute_query(f"select * from `{dataset}`.`{table}`") as cursor:
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]


def _duckdb_run(emu: Emulator, tmp_path: Path, *extra: str) -> None:
    from pipelines.run import main

    argv = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--pipelines-dir", str(tmp_path / "duck"),
            "--duckdb-path", str(tmp_path / "warehouse.duckdb"), *extra]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0


# -- comparing marts across warehouses: values, not column types ------------------------------
def _value(value: Any, twin: Any) -> Any:
    """`value` (from BigQuery) in the form of `twin` (the DuckDB value of the same cell)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, datetime) and isinstance(twin, date) and not isinstance(twin, datetime):
        # emulator only: bqemulator returns DATETIME for date_trunc of a DATE (BigQuery: DATE);
        # midnight of that day is the same date
        assert value.time() == datetime.min.time(), f"{value!r} is not a date"
        return value.date()
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    if isinstance(value, (int, Decimal)) and not isinstance(twin, float):
        # an integer count may come back NUMERIC (the emulator's sum(int)); money is NUMERIC: exact
        return Decimal(value)
    return value


def _duck_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):  # rates: doubles on both sides
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _sort_key(row: Dict[str, Any]) -> tuple:
    return tuple(str(v) for v in row.values() if not isinstance(v, float))


def mart_differences(mart: str, duck_rows: List[Dict[str, Any]], bq_rows: List[Dict[str, Any]]) -> List[str]:
    if not duck_rows and not bq_rows:
        return []
    columns = list(duck_rows[0] if duck_rows else bq_rows[0])
    if bq_rows and set(bq_rows[0]) != set(columns):
        return [f"{mart}: columns differ: BigQuery {sorted(bq_rows[0])}, DuckDB {sorted(columns)}"]
    if len(duck_rows) != len(bq_rows):
        return [f"{mart}: {len(bq_rows)} rows on BigQuery, {len(duck_rows)} on DuckDB"]
    duck = sorted(({c: _duck_value(r[c]) for c in columns} for r in duck_rows), key=_sort_key)
    twins = {}  # the DuckDB value type of each column, for the BigQuery side's conversion
    for row in duck:
        for c, v in row.items():
            if v is not None:
                twins.setdefault(c, v)
    big = sorted(({c: _value(r[c], twins.get(c)) for c in columns} for r in bq_rows), key=_sort_key)
    problems = []
    for want, got in zip(duck, big):
        for c in columns:
            if not _same(want[c], got[c]):
                problems.append(f"{mart}: {c} is {got[c]!r} on BigQuery, {want[c]!r} on DuckDB (row {want})")
    return problems[:10]


def _as_of_dates(rows: List[Dict[str, Any]]) -> set:
    return {_value(r["as_of_date"], date.min) for r in rows if "as_of_date" in r}


def _assert_marts_equal_duckdb(reader, tmp_path):
    problems = []
    for mart in MARTS:
        duck_rows = h.read_table_duckdb(tmp_path / "warehouse.duckdb", "autosync", mart)
        bq_rows = _bigquery_rows(reader, "autosync", mart)
        if _as_of_dates(duck_rows) != _as_of_dates(bq_rows):
            continue  # aged to "today" in the shop's zone, and a shop's midnight fell between the builds
        problems += mart_differences(mart, duck_rows, bq_rows)
    assert problems == [], "\n".join(problems)


def _incremental_windows(dbt_dir: Path) -> Dict[str, bool]:
    """Each incremental model: whether the last dbt build read a window of changes (not whole), from
    the window it writes into its compiled SQL (dbt's run_results.json keeps the compiled code)."""
    results = sorted(dbt_dir.rglob("target/run_results.json"), key=lambda p: p.stat().st_mtime)
    built = {}
    for result in json.loads(results[-1].read_text())["results"] if results else []:
        model = result["unique_id"].split(".")[-1]
        if result["unique_id"].startswith("model.") and model in h.INCREMENTAL_MODELS:
            window = h.incremental_window(result.get("compiled_code"))
            built[model] = window is not None and window["full"] is False
    return built


def test_run_py_loads_bigquery_full_and_incremental_and_dbt_builds_marts_equal_to_duckdb(bigquery, tmp_path):
    env = _user_settings(bigquery)
    env["DLT_DATA_DIR"] = str(tmp_path / "dlt")  # the scheduled job's pipeline state, nothing in ~/.dlt
    with Emulator(**WORLD) as emu, _reader(bigquery, tmp_path) as reader:
        env.update(SOURCES__AUTOSYNC__API_KEY=emu.api_key, SOURCES__AUTOSYNC__BASE_URL=emu.base_url)

        # full load, raw only (dbt once, after the incremental run: the emulator is slow at dbt)
        first = _run_py(env, "--no-dbt")
        truth = emu.truth()
        assert first["rows"]["work_orders"] == len(truth["objects"]["work_orders"])
        assert_exactly_truth(reader, truth)
        _duckdb_run(emu, tmp_path, "--no-dbt")  # the DuckDB twin reads the same world

        # the shops go on working; one draft work order is hard-deleted (no trace in the API)
        advance_with_changes(emu, hours=6)
        deleted = delete_a_draft_work_order(emu)
        later = _run_py(env, "--reconcile-deletes")
        truth_later = emu.truth()
        assert later["rows"], "the incremental run loaded nothing: the world did not move"
        # incremental: only what changed since the cursors (a few parts restocked, not the catalogue)
        assert 0 < later["rows"].get("inventory", 0) < first["rows"]["inventory"]
        assert later["reconciliation"]["marked_deleted"].get("work_orders", 0) >= 1
        assert later["dbt"]["success"], later["dbt"]
        assert_exactly_truth(reader, truth_later)
        assert deletion_problems(reader, truth_later) == []
        _duckdb_run(emu, tmp_path, "--reconcile-deletes")

        _assert_marts_equal_duckdb(reader, tmp_path)
        for mart in h.MAIN_MARTS:
            assert _bigquery_rows(reader, "autosync", mart), f"{mart} is empty: the comparison proves nothing"
        work_orders = {r["work_order_id"] for r in _bigquery_rows(reader, "autosync", "fct_work_orders")}
        assert deleted not in work_orders and work_orders
        # the sync log: a row per run, shop and resource, written with BigQuery's own SQL
        log = _bigquery_rows(reader, reader.dataset_name, "_autosync_runs")
        assert {r["status"] for r in log} == {"ok"}
        assert len({r["run_id"] for r in log}) == 2 and {r["shop_id"] for r in log} == set(range(1, WORLD["shops"] + 1))

        # a third run: dbt builds the incremental models incrementally on BigQuery (merge, the
        # touched keys as constants, unix_date) after more change
        advance_with_changes(emu, hours=6)
        third = _run_py(env)
        assert third["rows"] and third["dbt"]["success"], third["dbt"]
        _duckdb_run(emu, tmp_path)
        windows = _incremental_windows(tmp_path / "dlt")
        assert set(windows) == set(h.INCREMENTAL_MODELS) and all(windows.values()), \
            f"not every incremental model was built incrementally: {windows}"
        _assert_marts_equal_duckdb(reader, tmp_path)

    for path in (tmp_path / "dlt").rglob("*"):  # pipeline state, load packages, dbt's logs
        if path.is_file():
            assert TOKEN not in path.read_text(errors="ignore"), path

"""Airflow DAG `autosync`: one mapped task per shop, then one dbt build over every shop.

    pip install -e ".[airflow]"        # in the Airflow environment (its own venv: see README)
    export AIRFLOW__CORE__DAGS_FOLDER=$PWD/pipelines   # or copy/symlink this file into yours
    airflow dags test autosync                          # one run, in-process, end to end

Configuration is the CLI's (pipelines/run.py), read by dlt in the task: environment variables
(SOURCES__AUTOSYNC__API_KEY, SOURCES__AUTOSYNC__BASE_URL, AUTOSYNC__DESTINATION, AUTOSYNC__DATASET,
AUTOSYNC__DUCKDB_PATH, DESTINATION__POSTGRES__CREDENTIALS, DLT_DATA_DIR, ...), `.dlt/*.toml`, or,
inside Airflow, dlt's Airflow provider: a Variable `dlt_secrets_toml` holding the secrets.toml
text. Nothing secret is in this file.

Shops: `[sources.autosync] shops` (or SOURCES__AUTOSYNC__SHOPS) when set, else every shop
`GET /shops` lists at run time. Each shop task is one call of the sync engine the CLI uses
(`pipelines.orchestration.sync_shop_for_interval` -> `pipelines.engine.run_sync`): the shop's own
dlt pipeline, the same one a CLI run of that shop uses (state restored from the warehouse, so any
worker can run it), its own staging dataset (Postgres, BigQuery), recovery of a package a killed worker left, the
scheduled delete reconciliation and a row per table in the sync log; the executor may run shops
in parallel into one Postgres/BigQuery dataset (several workers on one key: docs/orchestration.md).
DuckDB takes one writer at a time: use it with the sequential executor or `dags test` only.

The data interval drives what is read: a scheduled or manual run syncs each shop incrementally
up to the interval's end (cursors never move past it); a backfill run (`airflow backfill create`,
or `-c '{"window": true}'` on a manual run) reads exactly [interval start, interval end] with
cursors of its own, leaving the incremental cursors alone. Failed shop tasks retry (3 times,
exponential backoff); the marts are built only when every shop succeeded.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

# Shops synced at once per DAG run: each task already reads its shop's endpoints in parallel.
# Tasks on one API key share its rate budget wherever they run: each paces itself from the API's
# X-RateLimit-Remaining/Reset (autosync_source/ratelimit.py), so several workers meet few 429s and
# each one met is waited out, never a failure. To cap shop tasks across DAG runs as well, put them
# in an Airflow pool (docs/orchestration.md).
SHOPS_IN_PARALLEL = 4


@dag(
    dag_id="autosync",
    description="AutoSync API -> warehouse (dlt, one task per shop) -> dbt marts",
    # Daily intervals [previous 02:00, 02:00) UTC: a backfill over days gives one window per day.
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,  # history comes from the first incremental run (start_date in dlt config)
    max_active_runs=1,  # two runs of one shop's pipeline must not overlap
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
    },
    params={"window": Param(False, type="boolean",
                            description="read exactly the data interval (a backfill) instead of syncing incrementally")},
    tags=["autosync", "dlt", "dbt"],
)
def autosync() -> None:
    @task
    def shops_to_sync() -> List[int]:
        from pipelines.orchestration import configured_shop_ids, list_shop_ids

        return configured_shop_ids() or list_shop_ids()

    @task(max_active_tis_per_dagrun=SHOPS_IN_PARALLEL)
    def sync_shop(shop_id: int) -> Dict[str, Any]:
        from pipelines.orchestration import sync_shop_for_interval

        start, end, window = _interval(get_current_context())
        return sync_shop_for_interval(shop_id, start, end, window)

    @task
    def build_marts() -> str:
        from pipelines.orchestration import build_marts as build

        return build().summary  # raises (naming the failing nodes) when dbt fails

    sync_shop.expand(shop_id=shops_to_sync()) >> build_marts()


def _interval(context: Any) -> "tuple[Optional[str], Optional[str], bool]":
    """(start, end, window) of this run as ISO strings, from the DAG run's data interval."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    run = context.get("dag_run")
    run_type = str(getattr(getattr(run, "run_type", None), "value", getattr(run, "run_type", "")))
    window = run_type == "backfill" or bool(context["params"].get("window"))
    if window and (start is None or end is None or start >= end):
        raise ValueError(f"a window run needs a data interval, got [{start}, {end}]")
    return (start.isoformat() if start else None), (end.isoformat() if end else None), window


autosync()

"""Per-shop runs of the AutoSync pipeline, for Dagster, Airflow or any pool of workers.

Past one machine, a platform with hundreds of shops scales through its orchestrator's workers,
each syncing some shops into one shared warehouse. Everything here is built on pipelines/run.py
(its parser, `_pipeline` and `_source_arguments`), so the CLI, Dagster and Airflow read one
configuration: `.dlt/config.toml`, `.dlt/secrets.toml` and the same environment variables
(SOURCES__AUTOSYNC__API_KEY, DESTINATION__POSTGRES__CREDENTIALS, ...).

What a shop's run gets so that workers syncing different shops into the same dataset at the same
time never meet:
- its own pipeline name, `autosync_shop_<id>`: its own working directory under the pipelines dir
  and its own row in `_dlt_pipeline_state`, so each shop's cursors are restored from the
  warehouse on a fresh worker and no shop can overwrite another's;
- its own staging dataset (`<dataset>_staging_shop_<id>`): dlt merges through staging tables it
  truncates at the start of each load; one shared staging dataset would let one worker empty
  another's rows between its insert and its merge;
- a retry of the load when two workers race to create the same table or column (dlt's own
  `retry_schema_update`, see `run_with_schema_retry`).
Rows cannot collide: tables merge on `id`, and ids are unique per resource across shops, so a
shop's delete-insert touches only that shop's records (and their children, by root key).

    from pipelines.orchestration import sync_shop, list_shop_ids, build_marts
    for shop_id in list_shop_ids():
        sync_shop(shop_id, destination="postgres")      # one worker per call, in any order
    build_marts(destination="postgres")                  # once, after the shops
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar

import dlt
from dlt.extract import DltSource
from dlt.pipeline.helpers import retry_schema_update
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from autosync_source import RequestStats, autosync_source
from pipelines.run import _pipeline, _source_arguments, build_parser

logger = logging.getLogger("autosync.orchestration")

SHOP_PIPELINE_PREFIX = "autosync_shop_"
MARTS_PIPELINE_NAME = "autosync_marts"
SCHEMA_RACE_ATTEMPTS = 5

T = TypeVar("T")


@dataclass(frozen=True)
class Warehouse:
    """Where runs land; None means what the CLI would use (flags unset: dlt config, then defaults)."""

    destination: Optional[str] = None  # duckdb, postgres or bigquery
    dataset: Optional[str] = None
    duckdb_path: Optional[str] = None
    pipelines_dir: Optional[str] = None  # where dlt keeps each pipeline's working dir


def shop_pipeline_name(shop_id: int, window: bool = False) -> str:
    return f"{SHOP_PIPELINE_PREFIX}{int(shop_id)}" + ("_window" if window else "")


def shop_staging_layout(shop_id: int) -> str:
    # dlt formats the dataset name into %s: autosync_raw -> autosync_raw_staging_shop_7
    return f"%s_staging_shop_{int(shop_id)}"


def cli_arguments(
    warehouse: Warehouse = Warehouse(),
    *,
    pipeline_name: Optional[str] = None,
    shop_id: Optional[int] = None,
    resources: Optional[Sequence[str]] = None,
    start_date: Optional[str] = None,
    end_date: Optional[str] = None,
    base_url: Optional[str] = None,
    api_key: Optional[str] = None,
) -> argparse.Namespace:
    """The namespace `python pipelines/run.py ...` would build for this run (never sys.argv)."""
    argv: List[str] = []
    for flag, value in (
        ("--destination", warehouse.destination),
        ("--dataset", warehouse.dataset),
        ("--duckdb-path", warehouse.duckdb_path),
        ("--pipelines-dir", warehouse.pipelines_dir),
        ("--pipeline-name", pipeline_name),
        ("--shops", None if shop_id is None else str(int(shop_id))),
        ("--resources", ",".join(resources) if resources else None),
        ("--start-date", start_date),
        ("--end-date", end_date),
    ):
        if value:
            argv += [flag, str(value)]
    args = build_parser().parse_args(argv + ["--no-dbt"])
    # Set after parsing, not as argv: a key belongs in memory, not in anything that logs argv.
    args.base_url, args.api_key = base_url or None, api_key or None
    return args


def make_pipeline(warehouse: Warehouse = Warehouse(), shop_id: Optional[int] = None, *,
                  pipeline_name: Optional[str] = None) -> dlt.Pipeline:
    """run.py's pipeline; for a shop, with the shop's own name, working dir and staging dataset."""
    if pipeline_name is None and shop_id is not None:
        pipeline_name = shop_pipeline_name(shop_id)
    pipeline = _pipeline(cli_arguments(warehouse, pipeline_name=pipeline_name))
    if shop_id is not None:
        # run.py builds the destination from config alone; the staging layout is the one setting
        # a partition adds. Destination factories keep their explicit settings in config_params,
        # read when the load step resolves the destination configuration.
        pipeline.destination.config_params["staging_dataset_name_layout"] = shop_staging_layout(shop_id)
    return pipeline


def make_source(shop_id: Optional[int] = None, *, resources: Optional[Sequence[str]] = None,
                start_date: Optional[str] = None, end_date: Optional[str] = None,
                base_url: Optional[str] = None, api_key: Optional[str] = None,
                request_stats: Optional[RequestStats] = None) -> DltSource:
    """run.py's source (credentials from dlt config/secrets unless given), limited to one shop."""
    args = cli_arguments(shop_id=shop_id, resources=resources, start_date=start_date,
                         end_date=end_date, base_url=base_url, api_key=api_key)
    return autosync_source(**_source_arguments(args), request_stats=request_stats)


def run_with_schema_retry(run: Callable[[], T], attempts: int = SCHEMA_RACE_ATTEMPTS) -> T:
    """Call `run` (a `pipeline.run(source)`), repeating it while the load loses a DDL race.

    Two workers loading the same dataset for the first time both see a table (or column, or the
    dataset itself) missing and both create it; Postgres refuses the second CREATE and dlt raises
    SchemaUpdateError before any row is written. dlt documents the retry as safe: the extracted
    package stays pending, and `pipeline.run` then loads that pending package (without extracting
    again) after re-reading the destination's tables and applying only what is still missing.
    A Postgres advisory lock would serialise the DDL too, but dlt gives no hook around its schema
    step and the lock would not carry over to BigQuery; the retry works on every destination.
    """
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.2, max=3),  # jitter: the racers must not meet again
        retry=retry_if_exception(retry_schema_update()),
        before_sleep=lambda state: logger.warning(
            "schema update lost a race with another worker; loading again (attempt %s)", state.attempt_number + 1),
        reraise=True,
    )
    return retrying(run)


def sync_shop(
    shop_id: int,
    warehouse: Warehouse = Warehouse(),
    *,
    resources: Optional[Sequence[str]] = None,
    start_date: Optional[str] = None,
    end_date: Optional[str] = None,
    window: bool = False,
    base_url: Optional[str] = None,
    api_key: Optional[str] = None,
) -> Dict[str, Any]:
    """Sync one shop into the shared dataset; returns a summary (rows per table, load ids, requests).

    Incremental by default: the shop's cursors continue where its last run stopped (`end_date`
    bounds how far they move, as a scheduler's interval end does). `window=True` reads exactly
    [start_date, end_date] (a backfill of one interval, merged on id: nothing doubles) with
    cursors of its own that start empty and are never stored, so the shop's incremental cursors
    are untouched.
    """
    pipeline = make_pipeline(warehouse, shop_id, pipeline_name=shop_pipeline_name(shop_id, window))
    if window:
        if not start_date:
            raise ValueError("a window run needs its start_date (and usually its end_date)")
        # Empty cursors: wipe the local working dir, neither restore this name's state from the
        # warehouse nor store it there (it would never be read back).
        pipeline.drop()
        pipeline.config.restore_from_destination = False
    stats = RequestStats()
    source = make_source(shop_id, resources=resources, start_date=start_date, end_date=end_date,
                         base_url=base_url, api_key=api_key, request_stats=stats)
    traces: List[Any] = []

    def run_once() -> Any:
        try:
            return pipeline.run(source)
        finally:
            traces.append(pipeline.last_trace)  # a retry only loads: its trace has no row counts

    load_info = run_with_schema_retry(run_once)
    load_info.raise_on_failed_jobs()
    return summarize(pipeline, load_info, stats, traces)


def summarize(pipeline: dlt.Pipeline, load_info: Any, stats: Optional[RequestStats] = None,
              traces: Sequence[Any] = ()) -> Dict[str, Any]:
    rows: Dict[str, int] = {}
    for trace in list(traces) or [pipeline.last_trace]:
        if trace is not None and trace.last_normalize_info is not None:
            for table, n in trace.last_normalize_info.row_counts.items():
                if not table.startswith("_dlt"):
                    rows[table] = rows.get(table, 0) + n
    rows = dict(sorted(rows.items()))
    summary: Dict[str, Any] = {
        "pipeline": pipeline.pipeline_name,
        "destination": pipeline.destination.destination_name,
        "dataset": pipeline.dataset_name,
        "load_ids": list(getattr(load_info, "loads_ids", []) or []),
        "rows": rows,
    }
    if stats is not None:
        summary["requests"] = stats.as_dict()["requests"]
    return summary


def configured_shop_ids() -> List[int]:
    """The shops listed in config (`[sources.autosync] shops`, SOURCES__AUTOSYNC__SHOPS); [] if none."""
    return [int(shop) for shop in (dlt.config.get("sources.autosync.shops", list) or [])]


def list_shop_ids(*, base_url: Optional[str] = None, api_key: Optional[str] = None) -> List[int]:
    """The shops the credentials can see (GET /shops, through the source's own `shops` resource)."""
    source = make_source(resources=["shops"], base_url=base_url, api_key=api_key)
    return sorted(int(row["id"]) for row in source.resources["shops"])


def build_marts(warehouse: Warehouse = Warehouse(), **run_dbt_kwargs: Any) -> Any:
    """`dbt build` once over the shared dataset (every shop), after the shops' syncs."""
    from pipelines.dbt_runner import run_dbt

    return run_dbt(make_pipeline(warehouse, pipeline_name=MARTS_PIPELINE_NAME), **run_dbt_kwargs)

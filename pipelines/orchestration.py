"""Per-shop runs of the sync engine, for Dagster, Airflow or any pool of workers.

Past one machine, a platform with hundreds of shops scales through its orchestrator's workers,
each syncing some shops into one shared warehouse. Every function here is a thin call into
`pipelines.engine` (the same `run_sync` the CLI calls), so a shop synced by a worker gets
exactly what a CLI run gets: recovery of a package a killed run left, the scheduled delete
reconciliation, the schema-change report, a row in the sync log, one error type (`SyncFailed`).
Configuration is the CLI's: `.dlt/config.toml`, `.dlt/secrets.toml` and the same environment
variables (SOURCES__AUTOSYNC__API_KEY, AUTOSYNC__DESTINATION, DESTINATION__POSTGRES__CREDENTIALS, ...).

Workers syncing different shops into one dataset at the same time never meet: each shop has its
own pipeline (`autosync_<api>_shop_<id>`: its own working dir and its own row in
`_dlt_pipeline_state`, restored from the warehouse on a fresh worker), its own staging dataset
(Postgres, BigQuery; DuckDB, one writer at a time, keeps one),
and the engine retries a load that lost a DDL race with another worker. These are the pipelines
the CLI uses too, so a worker continues from a CLI run's cursors and the other way round.

    from pipelines.orchestration import sync_shop, list_shop_ids, build_marts
    for shop_id in list_shop_ids():
        sync_shop(shop_id, Target(destination="postgres"))   # one worker per call, in any order
    build_marts(Target(destination="postgres"))              # once, after the shops
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence

import dlt

from pipelines.engine import (
    SyncJob,
    Target,
    api_label,
    build_marts,
    run_sync,
    shop_staging_layout,
    state_home,
    visible_shop_ids,
)

logger = logging.getLogger("autosync.orchestration")

Warehouse = Target  # the name this module's callers used before the engine existed

__all__ = ["Warehouse", "Target", "sync_shop", "sync_shop_for_interval", "make_pipeline", "configured_shop_ids",
           "list_shop_ids", "build_marts", "shop_pipeline_name"]


def sync_shop(
    shop_id: int,
    warehouse: Target = Target(),
    *,
    resources: Optional[Sequence[str]] = None,
    start_date: Optional[str] = None,
    end_date: Optional[str] = None,
    window: bool = False,
    base_url: Optional[str] = None,
    api_key: Optional[str] = None,
    door: str = "orchestration",
) -> Dict[str, Any]:
    """Sync one shop into the shared dataset; the engine's summary as a dict, plus `pipeline`
    (the shop's state home). Raises `pipelines.engine.SyncFailed`.

    Incremental by default: the shop's cursors continue where its last run stopped, whichever
    door ran it (`end_date` bounds how far they move, as a scheduler's interval end does).
    `window=True` reads exactly [start_date, end_date] (a backfill of one interval, merged on
    id: nothing doubles) with cursors of its own that start empty and are never stored, so the
    shop's incremental cursors are untouched.
    """
    summary = run_sync(SyncJob(
        target=warehouse, door=door, shops=[int(shop_id)], resources=resources, start_date=start_date,
        end_date=end_date, window=window, base_url=base_url, api_key=api_key,
    ))
    return {**summary.as_dict(), "pipeline": summary.pipelines[0]}


def sync_shop_for_interval(shop_id: int, interval_start: Optional[str], interval_end: Optional[str],
                           window: bool, warehouse: Target = Target(), door: str = "airflow") -> Dict[str, Any]:
    """The Airflow task `sync_shop` (pipelines/airflow_dag.py), callable without Airflow: an
    incremental sync bounded by the interval's end, or, for a backfill, exactly the interval."""
    if window:
        return sync_shop(shop_id, warehouse, start_date=interval_start, end_date=interval_end, window=True, door=door)
    return sync_shop(shop_id, warehouse, end_date=interval_end, door=door)


def shop_pipeline_name(shop_id: int, window: bool = False, *, base_url: Optional[str] = None,
                       api_key: Optional[str] = None) -> str:
    """The pipeline holding the shop's cursors for the configured API (or the one given)."""
    return state_home(api_label(base_url, api_key), shop_id, window)


def make_pipeline(warehouse: Target = Target(), shop_id: Optional[int] = None, *,
                  pipeline_name: Optional[str] = None, base_url: Optional[str] = None,
                  api_key: Optional[str] = None) -> dlt.Pipeline:
    """A dlt pipeline object of the target: the shop's state home when `shop_id` is given (to read
    its cursors), else one named `pipeline_name` that only reads the warehouse. Syncs go
    through `sync_shop`, never through this object's `run`."""
    if pipeline_name is None:
        if shop_id is None:
            raise ValueError("make_pipeline needs a shop_id or a pipeline_name")
        pipeline_name = shop_pipeline_name(shop_id, base_url=base_url, api_key=api_key)
    layout = shop_staging_layout(shop_id) if shop_id is not None else None
    return warehouse.pipeline(pipeline_name, layout)


def configured_shop_ids() -> List[int]:
    """The shops listed in config (`[sources.autosync] shops`, SOURCES__AUTOSYNC__SHOPS); [] if none."""
    return [int(shop) for shop in (dlt.config.get("sources.autosync.shops", list) or [])]


def list_shop_ids(*, base_url: Optional[str] = None, api_key: Optional[str] = None) -> List[int]:
    """The shops the credentials can see (GET /shops)."""
    given = {name: value for name, value in (("base_url", base_url), ("api_key", api_key)) if value}
    return visible_shop_ids(**given)

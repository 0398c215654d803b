"""`run_sync`: one job, shop by shop, each shop in its own state home; recovery of an interrupted
package, the start-date check, the load (retried on a lost DDL race), the schema-change report,
the scheduled delete reconciliation, the sync log, dbt."""
from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar

import dlt
from dlt.common.configuration.inject import with_config
from dlt.pipeline.helpers import retry_schema_update
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from autosync_source import (
    Checkpoint,
    RequestStats,
    ShopDirectory,
    autosync_source,
    preflight,
    run_in_checkpoints,
    selected_endpoints,
)
from autosync_source.client import RetryPolicy, build_client
from autosync_source.deletes import (
    clear_scheduled_reconciliation,
    reconcile_deletes,
    reconciliation_due,
    schedule_reconciliation,
    scheduled_reconciliation,
)
from autosync_source.paging import parse_ts
from autosync_source.settings import RESOURCE_NAMES
from autosync_source.schema_changes import columns_snapshot, schema_changes
from autosync_source.schema_changes import describe as describe_schema_change
from pipelines.engine import sync_log
from pipelines.engine.errors import EXIT_DBT_FAILED, SyncFailed, as_sync_failed, raise_if_interrupted, short_reason
from pipelines.engine.job import SyncJob, SyncSummary, add_request_counts
from pipelines.engine.target import Target, api_label, shop_staging_layout, state_home

logger = logging.getLogger("autosync.engine")

DEFAULT_RECONCILE_EVERY_HOURS = 24.0
SCHEMA_RACE_ATTEMPTS = 5
RUN_WIDE_CATEGORIES = ("configuration", "destination", "interrupted")

T = TypeVar("T")


def run_sync(job: SyncJob) -> SyncSummary:
    """Run one sync job; the summary, or `SyncFailed` (nothing else) for any failure."""
    started = time.monotonic()
    try:
        target = job.target.resolved()
        label = job.api_label or api_label(job.base_url, job.api_key, job.source_options.get("environment"))
    except SyncFailed:
        raise
    except BaseException as failure:
        raise as_sync_failed(failure) from None
    summary = SyncSummary(run_id=uuid.uuid4().hex[:16], door=job.door, destination=str(target.destination),
                          dataset=str(target.dataset))
    try:
        if job.shops:
            shop_ids = [int(shop) for shop in job.shops]
        else:
            listing = RequestStats()
            shop_ids = list_shop_ids(job, listing)
            summary.requests = add_request_counts(summary.requests, listing.as_dict())
    except BaseException as failure:
        raise as_sync_failed(failure, summary=summary) from None
    summary.shops = shop_ids
    logger.info("syncing %d shop(s) into %s", len(shop_ids), target.describe())
    last_pipeline: Optional[dlt.Pipeline] = None
    failed: List[Any] = []
    for shop_id in shop_ids:
        try:
            last_pipeline = _sync_one_shop(job, target, label, shop_id, summary)
        except SyncFailed as failure:
            # With skip_failing_shops (a source option) one shop's failure does not hold the
            # others back (1,000 shops on one key): it is reported at the end, and its cursors,
            # not moved, make the next run read it again. What would fail every shop stops the
            # run: credentials, scopes, configuration, the destination, an interrupt.
            if not _skip_failing_shops(job) or failure.category in RUN_WIDE_CATEGORIES:
                raise
            logger.error("shop %s failed, the other shops go on (it is read again next run): %s", shop_id, failure.message)
            failed.append((shop_id, failure))
    if failed:
        first = failed[0][1]
        summary.status = "failed"
        raise SyncFailed(f"{len(failed)} of {len(shop_ids)} shops failed (the others are loaded), e.g. shop "
                         f"{failed[0][0]}: {first.message}", first.exit_code, first.category, summary)
    if job.run_dbt:
        summary.dbt = _run_dbt(target, summary)
    summary.duration_seconds = round(time.monotonic() - started, 2)
    del last_pipeline
    return summary


def _sync_one_shop(job: SyncJob, target: Target, label: str, shop_id: int, summary: SyncSummary) -> dlt.Pipeline:
    name = state_home(label, shop_id, job.window)
    stats = RequestStats()
    pipeline: Optional[dlt.Pipeline] = None
    started_at = datetime.now(timezone.utc)
    traces: List[Any] = []
    try:
        pipeline = target.pipeline(name, shop_staging_layout(shop_id), job.progress)
        summary.pipelines.append(name)
        if job.window:
            # Throwaway cursors: wipe the local working dir, neither restore this name's state
            # from the warehouse nor store it there (it would never be read back).
            pipeline.drop()
            pipeline.config.restore_from_destination = False
        finish_interrupted_run(pipeline)
        if not job.window and not job.full_refresh and job.start_date:
            pipeline.sync_destination()  # the cursors this run will use, restored if needed
            warning = start_date_warning(pipeline, job.start_date, shop_id)
            if warning:
                logger.warning(warning)
                summary.warnings.append(warning)
        schema_before = columns_snapshot(pipeline)
        refresh = "drop_resources" if job.full_refresh else None
        logger.info("syncing shop %s into %s (pipeline %s)", shop_id, target.describe(), name)
        active = pipeline

        def run_checkpoint(checkpoint: Checkpoint) -> Any:
            # One committed load per checkpoint (autosync_source/checkpoints.py): a long sync is
            # cut every `checkpoint_minutes`, so a kill loses at most one.
            nonlocal refresh
            # skip_failing_shops is the engine's (run_sync): a run of one shop must fail when it does
            source = autosync_source(**{**source_arguments(job, [shop_id]), "skip_failing_shops": False},
                                     request_stats=stats, checkpoint=checkpoint)

            def run_once() -> Any:
                try:
                    return active.run(source, refresh=refresh)
                finally:
                    traces.append(active.last_trace)  # a retry only loads: its trace has no row counts

            raise_if_interrupted()
            load_info = run_with_schema_retry(run_once)
            raise_if_interrupted()  # one that arrived while DuckDB ran is not lost
            load_info.raise_on_failed_jobs()
            summary.load_ids += list(getattr(load_info, "loads_ids", []) or [])
            refresh = None  # only the first checkpoint drops what --full-refresh drops
            return load_info

        run_in_checkpoints(run_checkpoint)
        rows = _row_counts(traces)
        for table, count in rows.items():
            summary.rows[table] = summary.rows.get(table, 0) + count
        changes = schema_changes(schema_before, pipeline)
        for change in changes:
            logger.warning("schema change: %s", describe_schema_change(change))
        summary.schema_changes += changes
        residual = sorted(name for name, shops in stats.as_dict()["paging_residual"].items() if shop_id in shops)
        notes = {name: _residual_note(shop_id, name, job.window) for name in residual}
        summary.warnings += [notes[name] for name in residual]
        if not job.window:
            reconciliation = _reconcile(pipeline, job, shop_id)
            if reconciliation is not None:
                summary.reconciliation = _merge_reconciliation(summary.reconciliation, reconciliation)
            schedule_reconciliation(pipeline, {name: [shop_id] for name in residual})
    except BaseException as failure:
        error = as_sync_failed(failure, pipeline, summary)
        summary.requests = add_request_counts(summary.requests, stats.as_dict())
        summary.status = "failed"
        if pipeline is not None:
            sync_log.record(pipeline, sync_log.rows_for_shop(
                pipeline, summary, shop_id, job.resources, started_at, "failed", _row_counts(traces),
                stats.as_dict(), error=error.message))
        raise error from None
    summary.requests = add_request_counts(summary.requests, stats.as_dict())
    sync_log.record(pipeline, sync_log.rows_for_shop(
        pipeline, summary, shop_id, job.resources, started_at, "ok", rows, stats.as_dict(), notes=notes))
    return pipeline


def _residual_note(shop_id: int, resource: str, window: bool) -> str:
    """The paging's residual case (autosync_source/paging.py), in the summary and the sync log."""
    then = ("this window run cannot schedule it: run --reconcile-deletes" if window
            else "its delete reconciliation runs on the next run and rewinds the cursor before anything missed")
    return (f"{resource} of shop {shop_id}: more rows in one second than a page holds were read by page numbers; "
            f"a delete or update during that listing may have hidden a row ({then})")


def _skip_failing_shops(job: SyncJob) -> bool:
    """`skip_failing_shops` from the job's source options, else [sources.autosync] (env or toml)."""
    if "skip_failing_shops" in job.source_options:
        return bool(job.source_options["skip_failing_shops"])
    return bool(dlt.config.get("sources.autosync.skip_failing_shops", bool) or False)


def list_shop_ids(job: SyncJob, request_stats: Optional[RequestStats] = None) -> List[int]:
    """The shops the job's credentials can see (GET /shops), in id order."""
    given = {k: v for k, v in source_arguments(job, None).items()
             if k in ("base_url", "api_key", "client_id", "client_secret", "environment")}
    return visible_shop_ids(**given, request_stats=request_stats)


@with_config(sections=("sources", "autosync"))
def visible_shop_ids(
    api_key: Optional[str] = dlt.secrets.value,
    client_id: Optional[str] = dlt.secrets.value,
    client_secret: Optional[str] = dlt.secrets.value,
    base_url: Optional[str] = dlt.config.value,
    environment: Optional[str] = dlt.config.value,
    retry_attempts: int = 5,
    retry_max_wait: float = 20.0,
    request_timeout: float = 30.0,
    request_stats: Optional[RequestStats] = None,
) -> List[int]:
    """Every shop the credentials can see. Not through the source's `shops` resource: that one
    emits only shops changed since its cursor, and here every shop is wanted."""
    selected = selected_endpoints(["shops"])
    auth, resolved_base_url = preflight(api_key, client_id, client_secret, base_url, environment, selected)
    stats = request_stats if request_stats is not None else RequestStats()
    retry = RetryPolicy(attempts=int(retry_attempts), max_wait=float(retry_max_wait), timeout=float(request_timeout))
    client = build_client(resolved_base_url, auth, stats, retry=retry)
    return sorted(int(shop) for shop in ShopDirectory(client, stats, None).ids())


def source_arguments(job: SyncJob, shops: Optional[Sequence[int]]) -> Dict[str, Any]:
    """Only what the job sets: the rest comes from dlt config and secrets, as the source reads it."""
    given: Dict[str, Any] = dict(job.source_options)
    for name in ("base_url", "api_key", "start_date", "end_date"):
        if getattr(job, name):
            given[name] = getattr(job, name)
    if job.resources:
        given["resources"] = list(job.resources)
    if shops:
        given["shops"] = [int(shop) for shop in shops]
    return given


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


def finish_interrupted_run(pipeline: dlt.Pipeline) -> None:
    """Deal with what a killed run left behind, before this run extracts anything.

    dlt's `run()` loads pending packages and then returns without extracting: a run after a
    crash would report success having synced nothing new. So pending packages are handled
    here first:
    - not yet loading (killed in extract's end or in normalize): normalized and loaded; their
      rows and cursors are what the killed run read;
    - killed while loading: not resumed. A job whose insert committed but whose completion
      was not recorded runs again on resume, its rows land twice in the staging table with
      the same _dlt_id, and dlt's merge (which picks rows by _dlt_id) then inserts both. So
      the local working state is dropped and this run starts from the state the destination
      committed with its last complete load (dlt restores it), re-reading what the killed run
      read. Rows a partial merge already wrote are merged again by key: no duplicates.
    """
    for load_id in pipeline.list_normalized_load_packages():
        jobs = pipeline.get_load_package_info(load_id).jobs
        if any(jobs.get(state) for state in ("started_jobs", "completed_jobs", "failed_jobs")):
            logger.warning(
                "the previous run was interrupted while loading package %s; it is dropped and this "
                "run starts from what the destination committed", load_id,
            )
            pipeline.drop()
            return
    if pipeline.list_extracted_load_packages():
        logger.info("normalizing the package an interrupted run left behind")
        pipeline.normalize()
    if pipeline.list_normalized_load_packages():
        logger.info("loading the package an interrupted run left behind")
        pipeline.load()


def cursor_positions(pipeline: dlt.Pipeline, shop_id: int) -> Dict[str, Optional[str]]:
    """{resource: the shop's `updated_at` cursor} as this pipeline's state holds it."""
    resources = pipeline.state.get("sources", {}).get("autosync", {}).get("resources", {})  # type: ignore[attr-defined]
    positions: Dict[str, Optional[str]] = {}
    for name, resource_state in resources.items():
        cursor = (resource_state.get("shops") or {}).get(str(shop_id)) or {}
        positions[name] = cursor.get("updated_at")
    return positions


def start_date_warning(pipeline: dlt.Pipeline, start_date: str, shop_id: int) -> Optional[str]:
    """A message when `start_date` is earlier than cursors this run will continue from."""
    try:
        start = parse_ts(start_date if len(start_date) > 10 else start_date + "T00:00:00Z")
    except ValueError:
        return None  # the source reports a bad date with its own message
    ahead = sorted(cursor for cursor in cursor_positions(pipeline, shop_id).values() if cursor and parse_ts(cursor) > start)
    if not ahead:
        return None
    return (f"--start-date {start_date} is ignored for shop {shop_id}: its cursors already continue from "
            f"{ahead[0]}. To reload from {start_date}, run with --full-refresh (drops and reloads the selected "
            f"tables), or read just that period with --window --start-date {start_date} --end-date <end>.")


def _reconcile(pipeline: dlt.Pipeline, job: SyncJob, shop_id: int) -> Optional[Dict[str, Any]]:
    """The delete reconciliation of this shop when forced or due; its summary, or None when skipped.
    It rewinds this pipeline's cursors: the home the next sync of the shop reads, in any door."""
    every_hours = dlt.config.get("autosync.reconcile_deletes_every_hours", float)
    every_hours = DEFAULT_RECONCILE_EVERY_HOURS if every_hours is None else every_hours
    scheduled = sorted(name for name, shops in scheduled_reconciliation(pipeline).items() if shop_id in shops)
    forced = job.reconcile_deletes or reconciliation_due(pipeline, every_hours)
    if not forced and not scheduled:
        return None
    given = {k: v for k, v in source_arguments(job, [shop_id]).items()
             if k in ("base_url", "api_key", "resources", "shops", "client_id", "client_secret", "environment", "page_size")}
    if not forced:  # only what the last run's listings asked for (the paging's residual case)
        given["resources"] = scheduled
    logger.info("reconciling deletes of shop %s (listing every id at the source)", shop_id)
    try:
        report = reconcile_deletes(pipeline, **given).as_dict()
        clear_scheduled_reconciliation(pipeline, given.get("resources") or RESOURCE_NAMES)
        return report
    except BaseException as failure:
        known = as_sync_failed(failure)
        raise SyncFailed(f"the delete reconciliation failed (the load itself is committed): {known.message}",
                         known.exit_code, known.category) from None


def _merge_reconciliation(total: Optional[Dict[str, Any]], one: Dict[str, Any]) -> Dict[str, Any]:
    if total is None:
        return one
    merged = dict(total)
    merged["requests"] = total["requests"] + one["requests"]
    for key in ("marked_deleted", "restored", "not_yet_loaded", "stale", "cursors_rewound", "listed"):
        counts = dict(total.get(key, {}))
        for name, n in one.get(key, {}).items():
            counts[name] = counts.get(name, 0) + n
        merged[key] = counts
    return merged


def _row_counts(traces: Sequence[Any]) -> Dict[str, int]:
    rows: Dict[str, int] = {}
    for trace in traces:
        if trace is not None and trace.last_normalize_info is not None:
            for table, n in trace.last_normalize_info.row_counts.items():
                if not table.startswith("_dlt"):
                    rows[table] = rows.get(table, 0) + n
    return rows



def _run_dbt(target: Target, summary: SyncSummary) -> Dict[str, Any]:
    try:
        from pipelines.dbt_runner import DbtRunError, run_dbt  # lazy: dbt is heavy and optional per run
    except ImportError as missing:
        raise SyncFailed(f"dbt could not start ({missing}); the load itself is committed. Skip dbt (--no-dbt) "
                         "or install it.", EXIT_DBT_FAILED, "dbt", summary) from None
    logger.info("running dbt build")
    # dbt vars from the configuration ([autosync.dbt_vars] in config.toml, or AUTOSYNC__DBT_VARS as
    # JSON): e.g. shop_timezones overrides, as_of_date, or enforce_contracts false for a warehouse
    # that cannot create a contracted table (the local BigQuery emulator)
    dbt_vars = dlt.config.get("autosync.dbt_vars", dict) or {}
    try:
        result = run_dbt(marts_pipeline(target), extra_args=["--vars", json.dumps(dict(dbt_vars))] if dbt_vars else None)
    except Exception as failure:
        # a failed build names its failing nodes on the lines after the first: keep them
        reason = str(failure) if isinstance(failure, DbtRunError) else short_reason(failure)
        summary.dbt = {"success": False, "error": reason}
        raise SyncFailed(f"dbt failed (the load itself is committed): {reason}",
                         EXIT_DBT_FAILED, "dbt", summary) from None
    outcome = {"success": bool(getattr(result, "success", False)), "summary": str(getattr(result, "summary", "") or "")}
    if not outcome["success"]:
        summary.dbt = outcome
        raise SyncFailed(f"dbt build failed: {outcome['summary']} (the load itself is committed)",
                         EXIT_DBT_FAILED, "dbt", summary)
    return outcome


def marts_pipeline(target: Target) -> dlt.Pipeline:
    """A pipeline object of the target that only names the warehouse (dbt, readers): it never runs."""
    return target.pipeline("autosync_marts")


def build_marts(target: Target = Target(), **run_dbt_kwargs: Any) -> Any:
    """`dbt build` once over the target's dataset (every shop); raises DbtRunError naming the failures."""
    from pipelines.dbt_runner import run_dbt

    return run_dbt(marts_pipeline(target), **run_dbt_kwargs)

"""`run_sync`: one job, shop by shop: the shops listed once (or read one by one when the job
names them), up to `max_workers` shops at once, each in its own state home, all on one rate
budget per credential; recovery of an interrupted package, the start-date check, the load
(retried on a lost DDL race), the schema-change report, the scheduled delete reconciliation, the
sync log, dbt. One estimate and one progress for the whole run.

DuckDB has one writer: shops extract and normalize at once, their loads (and everything else
that writes the file) take turns. Postgres and BigQuery load at once, each shop through its own
staging dataset (target.shop_staging_layout).

What stops a run is decided in one place (`_stops_the_run`): credentials, scopes, configuration,
the destination, an interrupt; and one place skips a failing shop (`skip_failing_shops`)."""
from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, TypeVar

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.common.configuration.inject import with_config
from dlt.pipeline.helpers import retry_schema_update
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from autosync_source import Checkpoint, RequestStats, autosync_source, parse_date, run_in_checkpoints
from autosync_source.connection import ApiSettings, api_settings, connect, get_shops, list_shops, selected_endpoints
from autosync_source.cursors import ShopCursor, cursor_in_source_state, cursor_positions
from autosync_source.deletes import (
    clear_scheduled_reconciliation,
    reconcile_deletes,
    reconciliation_due,
    schedule_reconciliation,
    scheduled_reconciliation,
)
from autosync_source.estimate import FirstPages, sample_first_pages
from autosync_source.paging import parse_ts
from autosync_source.progress import MODES as PROGRESS_MODES
from autosync_source.progress import Progress
from autosync_source.schema_changes import columns_snapshot, schema_changes
from autosync_source.schema_changes import describe as describe_schema_change
from autosync_source.settings import DEFAULT_LAG_SECONDS, DEFAULT_START_DATE, PAGE_SIZE, RESOURCE_NAMES
from autosync_source.sync import SyncWindow
from pipelines.engine import sync_log
from pipelines.engine.errors import EXIT_DBT_FAILED, SyncFailed, as_sync_failed, raise_if_interrupted, short_reason
from pipelines.engine.job import SyncJob
from pipelines.engine.shop_processes import ShopProcesses
from pipelines.engine.summary import SyncSummary, add_request_counts
from pipelines.engine.target import Target, api_label, one_duckdb_connection, shop_staging_layout, state_home

logger = logging.getLogger("autosync.engine")

DEFAULT_RECONCILE_EVERY_HOURS = 24.0
DEFAULT_MAX_WORKERS = 4
SCHEMA_RACE_ATTEMPTS = 5
# What would fail every shop: going on with the others would only repeat it.
RUN_WIDE_CATEGORIES = ("configuration", "destination", "interrupted")
# Options of the engine, not of the source (a job may give them in source_options or config).
ENGINE_OPTIONS = ("shops", "skip_failing_shops", "processes")
API_SETTINGS = ("api_key", "client_id", "client_secret", "base_url", "environment", "retry_attempts",
                "retry_max_wait", "request_timeout", "max_workers")
# After an interrupt, how long the shops in flight get to drop what they read (a reader waiting
# for the rate budget may not notice sooner); then the run reports the interrupt anyway.
STOP_GRACE_SECONDS = 20.0

T = TypeVar("T")

_WRITER_LOCKS: Dict[str, threading.Lock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def writer_turn(target: Target) -> Any:
    """A context in which this process may write the target: a lock per DuckDB file (one writer
    at a time), nothing for Postgres and BigQuery (they take concurrent loads)."""
    if target.destination != "duckdb":
        return contextlib.nullcontext()
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(str(target.duckdb_path), threading.Lock())


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
    run: Optional[_Run] = None
    try:
        run = _Run(job, target, label, summary)
        rows = run.find_shops()
        summary.shops = [int(row["id"]) for row in rows]
        if not run.options["shops"]:
            run.report_shops_not_visible(summary.shops)
        logger.info("syncing %d shop(s) into %s, %d at a time", len(rows), target.describe(), run.workers(len(rows)))
        run.estimate(rows)
    except BaseException as failure:
        error = as_sync_failed(failure, summary=summary)
        if run is not None and run.options["shops"] and error.category != "interrupted":
            # the shops the job named failed before they started (bad key, shop not visible): logged
            summary.status = "failed"
            run.log_shops(run.options["shops"], "failed", error.message)
        raise error from None
    assert run is not None
    run.sync_shops(rows)
    summary.sync_seconds = round(time.monotonic() - started, 2)
    if job.run_dbt:
        dbt_started = time.monotonic()
        try:
            summary.dbt = _run_dbt(target, summary, job.dbt_vars, job.full_refresh)
        finally:
            summary.dbt_seconds = round(time.monotonic() - dbt_started, 2)
    summary.duration_seconds = round(time.monotonic() - started, 2)
    return summary


class _Run:
    """One run of a job: its shops, its rate budget and progress, and its failures."""

    def __init__(self, job: SyncJob, target: Target, label: str, summary: SyncSummary) -> None:
        self.job, self.target, self.label, self.summary = job, target, label, summary
        self.options = _engine_options(job)
        self.cancel = threading.Event()
        self.lock = threading.Lock()  # the summary is filled by every shop's thread
        self.stats: List[RequestStats] = []  # every request of the run: the listing's, each shop's
        self.progress = Progress(mode=self.options["progress"], interval=self.options["progress_interval_seconds"])
        self.progress.read_ahead = FirstPages()
        self.failed: List[Any] = []
        self._client: Any = None
        self.workers_pool: Optional[ShopProcesses] = None  # the `processes` option's worker processes

    def new_stats(self) -> RequestStats:
        stats = RequestStats()
        with self.lock:
            self.stats.append(stats)
        return stats

    def add_requests(self, stats: RequestStats) -> None:
        with self.lock:
            self.summary.requests = add_request_counts(self.summary.requests, stats.as_dict())

    def requests_sent(self) -> int:
        in_workers = self.workers_pool.requests_in_flight() if self.workers_pool is not None else 0
        return sum(s.requests for s in self.stats) + in_workers

    def stop(self) -> None:
        """Stop every shop in flight: their readers stop, here and in worker processes."""
        self.cancel.set()
        if self.workers_pool is not None:
            self.workers_pool.stop()

    def workers(self, shops: int) -> int:
        return max(1, min(int(self.options["max_workers"]), shops))

    # -- shops ------------------------------------------------------------------------------
    def find_shops(self) -> List[Dict[str, Any]]:
        """The rows of the job's shops: the listing read once, or GET /shops/{id} per shop named."""
        stats = self.listing = self.new_stats()  # the listing's requests, and the estimate's read-ahead
        settings = _settings(self.job)
        self._client = connect(settings, selected_endpoints(self.job.resources), stats)
        self.progress.attach(self.requests_sent, self._client.session.budget.limit)
        chosen = self.options["shops"]
        try:
            return get_shops(self._client, stats, chosen) if chosen else list_shops(self._client, stats)
        except BaseException:
            self.add_requests(stats)
            raise

    def report_shops_not_visible(self, visible: List[int]) -> None:
        """A shop the warehouse holds that the key no longer sees (a run over every visible shop):
        said (a warning, the summary, a `not_visible` row in the sync log) and left as it is. Its
        rows are not marked deleted: access lost is not data deleted. (A shop a job names and the
        key cannot see fails the run: get_shops.)"""
        try:
            lost = sorted(_shops_held(self.target) - set(visible))
        except Exception as failure:  # the sync itself says what is wrong with the warehouse
            logger.debug("shops held not read: %s", short_reason(failure))
            return
        if not lost:
            return
        warning = (f"shop(s) {lost} are in the warehouse but these credentials no longer see them: their rows are "
                   "kept as they are (not marked deleted) and they are not synced; grant the key access again, or "
                   "remove their rows if the shops are gone for good")
        logger.warning(warning)
        self.summary.warnings.append(warning)
        self.summary.shops_not_visible = lost
        self.log_shops(lost, "not_visible", warning)

    def log_shops(self, shop_ids: List[int], status: str, message: str) -> None:
        """Rows in the sync log for shops this run did not sync (`status`, `message` as the error)."""
        now = datetime.now(timezone.utc)
        for shop_id in shop_ids:
            try:
                pipeline = self.target.pipeline(state_home(self.label, shop_id, self.job.window), shop_staging_layout(shop_id))
                with writer_turn(self.target):
                    sync_log.record(pipeline, sync_log.rows_for_shop(
                        pipeline, self.summary, shop_id, self.job.resources, now, status, {}, {}, error=message))
            except Exception as failure:  # the log never fails a sync
                logger.warning("could not log shop %s (%s): %s", shop_id, status, short_reason(failure))

    def estimate(self, rows: List[Dict[str, Any]]) -> None:
        """The run's first line: every shop's requests and the time at this key's budget, from
        page 1 of the first listings (their readers start from those pages: no extra request)."""
        if self.progress.quiet or not rows:
            self.progress.run_shops(len(rows))
            return
        self.progress.run_shops(len(rows))
        endpoints = selected_endpoints(self.job.resources)
        ids = [int(row["id"]) for row in rows]
        lists = {endpoint.name: ids for endpoint in endpoints if endpoint.shop_scoped}
        states: Dict[int, Any] = {}

        def cursor_of(resource: str, shop_id: int) -> ShopCursor:
            if self.job.window or self.job.full_refresh:
                return ShopCursor()  # the run starts from empty cursors
            if shop_id not in states:  # the local state only: a shop whose state is in the warehouse
                # alone starts elsewhere and re-reads its page 1 (one request)
                try:
                    states[shop_id] = self.target.pipeline(state_home(self.label, shop_id)).state.get("sources") or {}
                except Exception:
                    states[shop_id] = {}
            source_state = (states[shop_id].get("autosync") or {}) if states[shop_id] else {}
            return cursor_in_source_state(source_state, resource, shop_id)

        if not self.job.window and not self.job.full_refresh and self._first_sync_into_target(ids, endpoints, cursor_of):
            self.progress.first_sync_into = self.target.describe()
        try:
            sample_first_pages(self._client, endpoints, lists, cursor_of, _window(self.job), self.progress,
                               self.progress.read_ahead, int(self.options["max_workers"]))
        except Exception as failure:  # the estimate informs; the shops' own requests say what is wrong
            logger.debug("no estimate: %s", short_reason(failure))

    def _first_sync_into_target(self, ids: List[int], endpoints: List[Any], cursor_of: Callable[[str, int], ShopCursor]) -> bool:
        """No cursor of this API in the target: here (the local state) nor in the warehouse (dlt's
        state table, which a fresh worker restores from). Switching to a new destination or dataset
        then reads the whole history, and the run says so instead of doing it silently."""
        if any(cursor_of(endpoint.name, shop_id).updated_at is not None for shop_id in ids for endpoint in endpoints):
            return False
        try:
            with marts_pipeline(self.target).sql_client() as client:
                table = client.make_qualified_table_name("_dlt_pipeline_state")
                found = client.execute_sql(f"SELECT count(*) FROM {table} WHERE pipeline_name LIKE %s",
                                           f"autosync_{self.label}_shop_%")
            return not found or not found[0][0]
        except DatabaseUndefinedRelation:  # no dataset or no state table yet: nothing was ever loaded here
            return True
        except Exception as failure:  # unreachable: the shops' own loads will say so; claim nothing
            logger.debug("could not tell whether the target holds cursors: %s", short_reason(failure))
            return False

    def sync_shops(self, rows: List[Dict[str, Any]]) -> None:
        workers = self.workers(len(rows))
        processes = min(int(self.options["processes"]), len(rows))
        try:
            if processes:
                self.workers_pool = ShopProcesses(processes, self.progress)
            with one_duckdb_connection(self.target):
                self._sync_shops(rows, max(workers, processes))
        finally:
            if self.workers_pool is not None:
                self.workers_pool.close()
            self.add_requests(self.listing)
        if self.failed:
            shop_id, first = self.failed[0]
            self.summary.status = "failed"
            raise SyncFailed(f"{len(self.failed)} of {len(rows)} shops failed (the others are loaded), e.g. shop "
                             f"{shop_id}: {first.message}", first.exit_code, first.category, self.summary)

    def _sync_shops(self, rows: List[Dict[str, Any]], workers: int) -> None:
        if workers == 1:
            for row in rows:
                self._one(row)
        else:
            self._concurrently(rows, workers)

    def _one(self, row: Dict[str, Any]) -> None:
        shop_id = int(row["id"])
        try:
            _sync_one_shop(self, row)
        except SyncFailed as failure:
            self._failed(shop_id, failure)
        finally:
            self.progress.shop_finished()

    def _failed(self, shop_id: int, failure: SyncFailed) -> None:
        """The one place a shop's failure is judged: it stops the run (raised), or, with
        skip_failing_shops, is reported at the end while the other shops go on (its cursors, not
        moved, make the next run read it again)."""
        if _stops_the_run(failure, self.options["skip_failing_shops"]):
            raise failure
        logger.error("shop %s failed, the other shops go on (it is read again next run): %s", shop_id, failure.message)
        with self.lock:
            self.failed.append((shop_id, failure))

    def _concurrently(self, rows: List[Dict[str, Any]], workers: int) -> None:
        """Up to `workers` shops at once, in daemon threads: an interrupt reaches the main thread
        (here), which stops the others (`cancel`: their readers stop, their packages are dropped)."""
        pending: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        for row in rows:
            pending.put(row)
        outcomes: "queue.Queue[tuple]" = queue.Queue()

        def work() -> None:
            while not self.cancel.is_set():
                try:
                    row = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    _sync_one_shop(self, row)
                    outcomes.put((int(row["id"]), None))
                except BaseException as failure:  # noqa: B036 - handed to the main thread
                    outcomes.put((int(row["id"]), as_sync_failed(failure, summary=self.summary)))

        threads = [threading.Thread(target=work, name=f"autosync-shop-{n}", daemon=True) for n in range(workers)]
        for thread in threads:
            thread.start()
        done = 0
        try:
            while done < len(rows):
                try:
                    shop_id, failure = outcomes.get(timeout=0.2)
                except queue.Empty:
                    if not any(thread.is_alive() for thread in threads) and outcomes.empty():
                        break
                    continue
                done += 1
                self.progress.shop_finished()
                if failure is not None:
                    self._failed(shop_id, failure)
        except BaseException as stop:  # a shop's failure that stops the run, or an interrupt here
            self.stop()
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            if isinstance(stop, SyncFailed):
                raise
            raise as_sync_failed(stop, summary=self.summary) from None


def _shops_held(target: Target) -> set:
    """The shop ids of the warehouse's raw `shops` table (empty when it holds none yet)."""
    from pathlib import Path

    if target.destination == "duckdb" and not Path(str(target.duckdb_path)).exists():
        return set()
    try:
        with marts_pipeline(target).sql_client() as sql:
            rows = sql.execute_sql(f"SELECT DISTINCT id FROM {sql.make_qualified_table_name('shops')}") or []
    except Exception as failure:  # no table yet, or unreachable: the sync itself will say so
        logger.debug("no shops held in the warehouse: %s", short_reason(failure))
        return set()
    return {int(row[0]) for row in rows}


def _stops_the_run(failure: SyncFailed, skip_failing_shops: bool) -> bool:
    return not skip_failing_shops or failure.category in RUN_WIDE_CATEGORIES


def _sync_one_shop(run: _Run, row: Dict[str, Any]) -> None:
    job, target, summary = run.job, run.target, run.summary
    shop_id = int(row["id"])
    name = state_home(run.label, shop_id, job.window)
    stats = run.new_stats()
    pipeline: Optional[dlt.Pipeline] = None
    started_at = datetime.now(timezone.utc)
    rows: Dict[str, int] = {}
    turn = writer_turn(target)
    try:
        if run.cancel.is_set():
            raise KeyboardInterrupt  # the run stopped before this shop started
        progress = job.progress if run.workers(len(summary.shops)) == 1 else None  # dlt's collector: one pipeline at a time
        pipeline = target.pipeline(name, shop_staging_layout(shop_id), progress)
        with run.lock:
            summary.pipelines.append(name)
        if job.window:
            # Throwaway cursors: wipe the local working dir, neither restore this name's state
            # from the warehouse nor store it there (it would never be read back).
            pipeline.drop()
            pipeline.config.restore_from_destination = False
        finish_interrupted_run(pipeline, turn)
        if not job.window and not job.full_refresh:
            with turn:  # it connects to the warehouse: on DuckDB one connection of the file at a time
                pipeline.sync_destination()  # the cursors this run will use, restored if needed (reads only)
        if not job.window and not job.full_refresh and job.start_date:
            warning = start_date_warning(pipeline, job.start_date, shop_id)
            if warning:
                logger.warning(warning)
                with run.lock:
                    summary.warnings.append(warning)
        schema_before = columns_snapshot(pipeline)
        refresh = "drop_resources" if job.full_refresh else None
        logger.info("syncing shop %s into %s (pipeline %s)", shop_id, target.describe(), name)
        active = pipeline
        # A shop whose first pages the estimate read ahead reads here (the pages are this process's)
        in_worker = run.workers_pool is not None and not run.progress.read_ahead.holds(shop_id)

        def run_checkpoint(checkpoint: Checkpoint) -> Any:
            # One committed load per checkpoint (autosync_source/checkpoints.py): a long sync is
            # cut every `checkpoint_minutes`, so a kill loses at most one.
            nonlocal refresh, active, pipeline
            raise_if_interrupted()
            began = time.monotonic()
            if in_worker:
                assert run.workers_pool is not None
                outcome = run.workers_pool.extract({
                    "target": target, "pipeline": name, "staging_layout": shop_staging_layout(shop_id), "shop": row,
                    "arguments": source_arguments(job), "refresh": refresh, "quiet": run.progress.quiet,
                    "window": bool(job.window)})
                stats.absorb(outcome["stats"])
                checkpoint.absorb(outcome["checkpoint"])
                if run.cancel.is_set():
                    raise KeyboardInterrupt  # stopped while the worker read: its package is dropped
                if outcome["failure"] is not None:
                    raise SyncFailed(*outcome["failure"])
                # the worker wrote the shop's state and package: this process reads them from there
                active = pipeline = target.pipeline(name, shop_staging_layout(shop_id))
                if job.window:
                    pipeline.config.restore_from_destination = False
                counts = outcome["rows"]
                extracted = time.monotonic()
            else:
                source = autosync_source(**source_arguments(job), shop=row, request_stats=stats, checkpoint=checkpoint,
                                         progress_reporter=run.progress, cancel=run.cancel)
                active.extract(source, refresh=refresh)
                extracted = time.monotonic()
                counts = active.normalize().row_counts
            for table, n in counts.items():
                if not table.startswith("_dlt"):
                    rows[table] = rows.get(table, 0) + n
            normalized = time.monotonic()
            if run.cancel.is_set():
                raise KeyboardInterrupt  # stopped while this shop read: its package is dropped
            with turn:
                turn_at = time.monotonic()
                load_info = run_with_schema_retry(active.load)
            logger.debug("shop %s: extract %.2fs, normalize %.2fs, waited %.2fs to load, load %.2fs", shop_id,
                         extracted - began, normalized - extracted, turn_at - normalized, time.monotonic() - turn_at)
            raise_if_interrupted()  # one that arrived while DuckDB ran is not lost
            load_info.raise_on_failed_jobs()
            with run.lock:
                summary.load_ids.extend(getattr(load_info, "loads_ids", []) or [])
            refresh = None  # only the first checkpoint drops what --full-refresh drops
            return load_info

        run_in_checkpoints(run_checkpoint)
        with run.lock:
            for table, count in rows.items():
                summary.rows[table] = summary.rows.get(table, 0) + count
        changes = schema_changes(schema_before, pipeline)
        for change in changes:
            logger.warning("schema change: %s", describe_schema_change(change))
        residual = sorted(name for name, shops in stats.as_dict()["paging_residual"].items() if shop_id in shops)
        notes = {name: _residual_note(shop_id, name, job.window) for name in residual}
        if not job.window:
            with turn:
                reconciliation = _reconcile(pipeline, job, shop_id)
            # After this run's own reconciliation: the next run checks what this one's listings
            # may have hidden (the paging's residual case). Window runs keep no state to do it in.
            schedule_reconciliation(pipeline, {name: [shop_id] for name in residual})
        else:
            reconciliation = None
        with run.lock:
            summary.schema_changes += changes
            summary.warnings += [notes[name] for name in residual]
            if reconciliation is not None:
                summary.reconciliation = _merge_reconciliation(summary.reconciliation, reconciliation)
    except BaseException as failure:
        error = as_sync_failed(failure, pipeline, summary)
        run.add_requests(stats)
        with run.lock:
            summary.status = "failed"
        if pipeline is not None and error.category != "interrupted":
            with turn:
                sync_log.record(pipeline, sync_log.rows_for_shop(
                    pipeline, summary, shop_id, job.resources, started_at, "failed", rows,
                    stats.as_dict(), error=error.message))
        raise error from None
    run.add_requests(stats)
    with turn:
        sync_log.record(pipeline, sync_log.rows_for_shop(
            pipeline, summary, shop_id, job.resources, started_at, "ok", rows, stats.as_dict(), notes=notes))



def _residual_note(shop_id: int, resource: str, window: bool) -> str:
    """The paging's residual case (autosync_source/paging.py), in the summary and the sync log."""
    then = ("this window run cannot schedule it: run --reconcile-deletes" if window
            else "its delete reconciliation runs on the next run and rewinds the cursor before anything missed")
    return (f"{resource} of shop {shop_id}: more rows in one second than a page holds were read by page numbers; "
            f"a delete or update during that listing may have hidden a row ({then})")


def _engine_options(job: SyncJob) -> Dict[str, Any]:
    """The engine's options: the job's, else [sources.autosync] (env or toml), else defaults."""
    def option(name: str, kind: type, default: Any) -> Any:
        if name in job.source_options and job.source_options[name] is not None:
            return job.source_options[name]
        value = dlt.config.get(f"sources.autosync.{name}", kind)
        return default if value is None else value

    shops = job.shops if job.shops else option("shops", list, None)
    progress = option("progress", str, "log")
    if progress not in PROGRESS_MODES:
        raise SyncFailed(f"progress must be one of {', '.join(PROGRESS_MODES)}, not '{progress}'.", category="configuration")
    try:
        return {
            "shops": [int(shop) for shop in shops] if shops else None,
            "skip_failing_shops": bool(option("skip_failing_shops", bool, False)),
            "max_workers": max(1, int(option("max_workers", int, DEFAULT_MAX_WORKERS))),
            "processes": max(0, int(option("processes", int, 0))),
            "progress": progress,
            "progress_interval_seconds": float(option("progress_interval_seconds", float, 15.0)),
        }
    except (TypeError, ValueError) as bad:
        raise SyncFailed(f"a sync option is not valid: {bad}", category="configuration") from None


def _settings(job: SyncJob) -> ApiSettings:
    given = {name: value for name, value in source_arguments(job).items() if name in API_SETTINGS}
    return api_settings(**given)


def _window(job: SyncJob) -> Any:
    options = source_arguments(job)
    start = options.get("start_date") or dlt.config.get("sources.autosync.start_date", str) or DEFAULT_START_DATE
    end = options.get("end_date") or dlt.config.get("sources.autosync.end_date", str)
    lag = options.get("lag_seconds") or dlt.config.get("sources.autosync.lag_seconds", int)
    page_size = options.get("page_size") or dlt.config.get("sources.autosync.page_size", int)
    # the shops' readers go on from these first pages: the same page size as their own requests
    return SyncWindow(parse_date("start_date", start), parse_date("end_date", end) if end else None,
                      DEFAULT_LAG_SECONDS if lag is None else int(lag), PAGE_SIZE if page_size is None else int(page_size))


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
    """Every shop the credentials can see (a Dagster sensor, an Airflow DAG list their shops)."""
    stats = request_stats if request_stats is not None else RequestStats()
    settings = ApiSettings(api_key, client_id, client_secret, base_url, environment, int(retry_attempts),
                           float(retry_max_wait), float(request_timeout))
    client = connect(settings, selected_endpoints(["shops"]), stats)
    return [int(row["id"]) for row in list_shops(client, stats)]


def source_arguments(job: SyncJob) -> Dict[str, Any]:
    """Only what the job sets (the engine's own options aside): the rest comes from dlt config
    and secrets, as the source reads it."""
    given: Dict[str, Any] = {k: v for k, v in job.source_options.items() if k not in ENGINE_OPTIONS}
    for name in ("base_url", "api_key", "start_date", "end_date"):
        if getattr(job, name):
            given[name] = getattr(job, name)
    if job.resources:
        given["resources"] = list(job.resources)
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


def finish_interrupted_run(pipeline: dlt.Pipeline, turn: Any = None) -> None:
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
    `turn`: held while loading (the engine's writer_turn: DuckDB has one writer).
    """
    turn = turn if turn is not None else contextlib.nullcontext()
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
        with turn:
            pipeline.load()


def start_date_warning(pipeline: dlt.Pipeline, start_date: str, shop_id: int) -> Optional[str]:
    """A message when `start_date` is earlier than cursors this run will continue from."""
    try:
        start = parse_ts(start_date if len(start_date) > 10 else start_date + "T00:00:00Z")
    except ValueError:
        return None  # the source reports a bad date with its own message
    ahead = sorted(cursor for cursor in cursor_positions(pipeline.state, shop_id).values() if cursor and parse_ts(cursor) > start)
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
    given = {k: v for k, v in source_arguments(job).items() if k in API_SETTINGS or k in ("resources", "page_size")}
    given["shops"] = [shop_id]
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


def _run_dbt(target: Target, summary: SyncSummary, job_vars: Optional[Dict[str, Any]] = None,
             full_refresh: bool = False) -> Dict[str, Any]:
    try:
        from pipelines.dbt_runner import DbtRunError, run_dbt  # lazy: dbt is heavy and optional per run
    except ImportError as missing:
        raise SyncFailed(f"dbt could not start ({missing}); the load itself is committed. Skip dbt (--no-dbt) "
                         "or install it.", EXIT_DBT_FAILED, "dbt", summary) from None
    logger.info("running dbt build")
    # dbt vars from the configuration ([autosync.dbt_vars] in config.toml, or AUTOSYNC__DBT_VARS as
    # JSON): e.g. shop_timezones overrides, as_of_date, or enforce_contracts false for a warehouse
    # that cannot create a contracted table (the local BigQuery emulator); the job's own vars win
    # (the demo ages its receivables on its world's today)
    dbt_vars = {**(dlt.config.get("autosync.dbt_vars", dict) or {}), **(job_vars or {})}
    try:
        # A sync with --full-refresh dropped and reloaded raw tables: rows gone from them leave no
        # trace an incremental mart could read, so the marts are rebuilt whole too.
        extra = (["--vars", json.dumps(dict(dbt_vars))] if dbt_vars else []) + (["--full-refresh"] if full_refresh else [])
        result = run_dbt(marts_pipeline(target), extra_args=extra or None)
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

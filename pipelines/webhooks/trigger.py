"""The one place that runs a sync for what deliveries touched.

Everything else in the receiver only calls `sync_touched`, which hands the job to the sync engine
(`pipelines.engine.run_sync`, the same code path as the CLI, Dagster and Airflow).
"""
from __future__ import annotations

import logging
import multiprocessing
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from pipelines.webhooks.batcher import OnEvents

if TYPE_CHECKING:
    from pipelines.engine import Target

logger = logging.getLogger("pipelines.webhooks")


@dataclass(frozen=True)
class SyncOptions:
    """How the triggered sync runs.

    `target`: the warehouse this receiver stores events in (the sync lands there too); unset
    fields come from the same configuration as every other door's (`[autosync]`, AUTOSYNC__...).
    `base_url`: the API, when not the one the key's environment implies. dbt is off by default:
    a dbt build per webhook batch is heavy, and the marts refresh on the scheduled run.
    `in_child_process`: run the sync in a child process, so the memory a sync needs (dlt's
    normalizer, pyarrow, the load) is never held by the process that listens to the internet,
    and a sync that crashes cannot take the receiver down. Not for DuckDB: its file takes one
    writing process at a time, and the receiver writes deliveries into it during the sync.
    """

    target: Optional["Target"] = None
    base_url: Optional[str] = None
    run_dbt: bool = False
    in_child_process: bool = False


def _run_sync(resources: list[str], shops: list[int], options: SyncOptions) -> None:
    """The sync itself, through the sync engine; raises `pipelines.engine.SyncFailed` if it failed."""
    # lazy: the connector is heavy and optional for receiving
    from pipelines.engine import SyncJob, Target, run_sync

    summary = run_sync(SyncJob(target=options.target or Target(), door="webhook", resources=resources, shops=shops,
                               run_dbt=options.run_dbt, base_url=options.base_url))
    if summary is None:  # a stand-in engine (tests) returns nothing to report
        return
    rows = ", ".join(f"{table} {count}" for table, count in sorted(summary.rows.items())) or "nothing changed"
    logger.info("webhooks: the triggered sync of %s for shops %s loaded %d rows (%s) with %d requests in %.1f s",
                resources, shops, sum(summary.rows.values()), rows, summary.requests.get("requests", 0),
                summary.duration_seconds)


def _child_main(resources: list[str], shops: list[int], options: SyncOptions) -> None:
    from pipelines.engine import SyncFailed

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # a spawned child
    try:
        _run_sync(resources, shops, options)
    except SyncFailed as failure:
        print(f"error: webhook-triggered sync: {failure.message}", file=sys.stderr)
        sys.exit(failure.exit_code)


def sync_touched(resources: Iterable[str], shops: Iterable[int], options: SyncOptions) -> None:
    """Run the incremental sync of `resources` for `shops`; raise `SyncFailed` if it failed."""
    resources, shops = sorted(resources), sorted(shops)
    if not options.in_child_process:
        _run_sync(resources, shops, options)
        return
    # spawn, not fork: the receiver has threads (writer, batcher) and an event loop
    child = multiprocessing.get_context("spawn").Process(
        target=_child_main, args=(resources, shops, options), name="autosync-webhook-sync")
    child.start()
    child.join()
    if child.exitcode != 0:
        from pipelines.engine import SyncFailed

        raise SyncFailed(f"the sync of {resources} for shops {shops} failed in its child process "
                         f"(exit {child.exitcode}; its error is in the log above)", exit_code=child.exitcode or 1)


def connector_sync_trigger(target: Optional["Target"] = None, base_url: Optional[str] = None,
                           run_dbt: bool = False, in_child_process: bool = False) -> OnEvents:
    """An `on_events` for the app: `sync_touched` with these options."""
    options = SyncOptions(target, base_url, run_dbt, in_child_process)

    def run_incremental_sync(resources: set[str], shop_ids: set[int]) -> None:
        sync_touched(resources, shop_ids, options)

    return run_incremental_sync

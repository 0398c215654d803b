"""The one place that runs a sync for what deliveries touched.

Everything else in the receiver only calls `sync_touched`; to run the sync another way (a
library call instead of the CLI's `main`), change `_run_sync` and nothing else.
"""
from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pipelines.webhooks.batcher import OnEvents


@dataclass(frozen=True)
class SyncOptions:
    """How the triggered sync runs.

    `destination_args` are `pipelines.run` flags that pick the destination (the same warehouse
    this receiver stores events in) and anything else the sync needs (e.g. `--base-url`). dbt is
    off by default: a dbt build per webhook batch is heavy, and the marts refresh on the scheduled
    run.
    `in_child_process`: run the sync in a child process, so the memory a sync needs (dlt's
    normalizer, pyarrow, the load) is never held by the process that listens to the internet,
    and a sync that crashes cannot take the receiver down. Not for DuckDB: its file takes one
    writing process at a time, and the receiver writes deliveries into it during the sync.
    """

    destination_args: Sequence[str] = field(default_factory=tuple)
    run_dbt: bool = False
    in_child_process: bool = False


def _argv(resources: list[str], shops: list[int], options: SyncOptions) -> list[str]:
    argv = [
        "--resources", ",".join(resources),
        "--shops", ",".join(str(shop_id) for shop_id in shops),
        *options.destination_args,
    ]
    if not options.run_dbt:
        argv.append("--no-dbt")
    return argv


def _run_sync(argv: list[str]) -> int:
    """The sync itself; its exit code (0 = every touched table synced)."""
    from pipelines import run  # lazy: the connector is heavy and optional for receiving

    return run.main(argv)


def _child_main(argv: list[str]) -> None:
    sys.exit(_run_sync(argv))


def sync_touched(resources: Iterable[str], shops: Iterable[int], options: SyncOptions) -> None:
    """Run the connector's incremental sync of `resources` for `shops`; raise if it failed."""
    resources, shops = sorted(resources), sorted(shops)
    argv = _argv(resources, shops, options)
    if not options.in_child_process:
        exit_code = _run_sync(argv)
    else:
        # spawn, not fork: the receiver has threads (writer, batcher) and an event loop
        child = multiprocessing.get_context("spawn").Process(
            target=_child_main, args=(argv,), name="autosync-webhook-sync")
        child.start()
        child.join()
        exit_code = child.exitcode
    if exit_code != 0:
        raise RuntimeError(f"pipelines.run exited with {exit_code} for {resources}")


def connector_sync_trigger(destination_args: Sequence[str] = (), run_dbt: bool = False,
                           in_child_process: bool = False) -> OnEvents:
    """An `on_events` for the app: `sync_touched` with these options."""
    options = SyncOptions(tuple(destination_args), run_dbt, in_child_process)

    def run_incremental_sync(resources: set[str], shop_ids: set[int]) -> None:
        sync_touched(resources, shop_ids, options)

    return run_incremental_sync

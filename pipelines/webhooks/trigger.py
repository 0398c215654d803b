"""The one place that runs a sync for what deliveries touched.

Everything else in the receiver only calls `sync_touched`; to run the sync another way (a
library call instead of the CLI's `main`), change this function's body and nothing else.
"""
from __future__ import annotations

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
    """

    destination_args: Sequence[str] = field(default_factory=tuple)
    run_dbt: bool = False


def sync_touched(resources: Iterable[str], shops: Iterable[int], options: SyncOptions) -> None:
    """Run the connector's incremental sync of `resources` for `shops`; raise if it failed."""
    from pipelines import run  # lazy: the connector is heavy and optional for receiving

    resources, shops = sorted(resources), sorted(shops)
    argv = [
        "--resources", ",".join(resources),
        "--shops", ",".join(str(shop_id) for shop_id in shops),
        *options.destination_args,
    ]
    if not options.run_dbt:
        argv.append("--no-dbt")
    exit_code = run.main(argv)
    if exit_code != 0:
        raise RuntimeError(f"pipelines.run exited with {exit_code} for {resources}")


def connector_sync_trigger(destination_args: Sequence[str] = (), run_dbt: bool = False) -> OnEvents:
    """An `on_events` for the app: `sync_touched` with these options."""
    options = SyncOptions(tuple(destination_args), run_dbt)

    def run_incremental_sync(resources: set[str], shop_ids: set[int]) -> None:
        sync_touched(resources, shop_ids, options)

    return run_incremental_sync

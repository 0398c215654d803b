"""Dagster definitions: the raw tables as dlt assets partitioned by shop, the dbt marts downstream.

    pip install -e ".[dagster]"
    dagster definitions validate -f pipelines/dagster_defs.py
    dagster dev -f pipelines/dagster_defs.py

Configuration is the CLI's (pipelines/run.py): `.dlt/config.toml`, `.dlt/secrets.toml` and the
environment (SOURCES__AUTOSYNC__API_KEY, DESTINATION__POSTGRES__CREDENTIALS, ...); the
`warehouse` resource only overrides where the CLI's flags would (destination, dataset, DuckDB
file, pipelines dir). Each shop partition is one call of the sync engine (`pipelines.engine.
run_sync`, through `orchestration.sync_shop`): the shop's own pipeline (the one the CLI uses for
that shop, so a partition continues from a CLI run's cursors and the other way round), its own
staging dataset (on Postgres and BigQuery), recovery of a package a killed worker left, the scheduled delete reconciliation
and a row per table in the sync log. Dagster's workers can sync different shops into one
Postgres or BigQuery dataset at the same time (several at once through the run queue, sharing the
key's rate budget: docs/orchestration.md); one shop can be backfilled or re-synced alone by
materializing its partition.

Partitions: the shops listed in config (`[sources.autosync] shops = [1, 2]` or
SOURCES__AUTOSYNC__SHOPS="[1, 2]") as static partitions; without that list, dynamic partitions
that the `autosync_shop_discovery` sensor keeps in step with `GET /shops`.
Schedules: `autosync_shops_daily` (02:00 UTC, one run per shop) and `autosync_marts_daily`
(05:00 UTC, dbt build over every shop).
"""

from pathlib import Path
from typing import Iterator, List, Optional

import dagster as dg

from autosync_source import RESOURCE_NAMES
from pipelines.engine import SyncFailed
from pipelines.orchestration import Warehouse, build_marts, configured_shop_ids, list_shop_ids, sync_shop

RAW_KEY_PREFIX = "autosync_raw"
MARTS_KEY_PREFIX = "autosync"
SHOP_PARTITIONS_NAME = "autosync_shops"
MARTS_DIR = Path(__file__).resolve().parents[1] / "dbt_project" / "models" / "marts"


class AutosyncWarehouse(dg.ConfigurableResource):
    """Where the shops are loaded; unset fields fall back to the CLI's defaults (dlt config)."""

    destination: Optional[str] = None
    dataset: Optional[str] = None
    duckdb_path: Optional[str] = None
    pipelines_dir: Optional[str] = None

    def as_warehouse(self) -> Warehouse:
        return Warehouse(self.destination, self.dataset, self.duckdb_path, self.pipelines_dir)


def shop_partitions() -> dg.PartitionsDefinition:
    configured = configured_shop_ids()
    if configured:
        return dg.StaticPartitionsDefinition([str(shop) for shop in configured])
    return dg.DynamicPartitionsDefinition(name=SHOP_PARTITIONS_NAME)


SHOP_PARTITIONS = shop_partitions()
RAW_SPECS = [
    # autosync_raw/<table>, with no upstream "source" assets: the API is not something Dagster
    # materializes. One asset per resource (its child tables load with it).
    dg.AssetSpec(dg.AssetKey([RAW_KEY_PREFIX, name]), group_name="autosync_raw", kinds={"dlt"},
                 description=f"AutoSync `{name}` (and its child tables), merged on id")
    for name in RESOURCE_NAMES
]


@dg.multi_asset(
    specs=RAW_SPECS,
    name="autosync_raw",
    partitions_def=SHOP_PARTITIONS,
    can_subset=True,
    # one run per shop: each partition is its own dlt pipeline, they cannot share a run
    backfill_policy=dg.BackfillPolicy.multi_run(1),
)
def autosync_raw_assets(context: dg.AssetExecutionContext, warehouse: AutosyncWarehouse) -> Iterator[dg.MaterializeResult]:
    shop_id = int(context.partition_key)
    resources = [key.path[-1] for key in context.selected_asset_keys]
    try:
        summary = sync_shop(shop_id, warehouse.as_warehouse(), resources=resources, door="dagster")
    except SyncFailed as failure:  # one line in Dagster's UI, not a traceback through dlt
        raise dg.Failure(description=failure.message, metadata={"category": failure.category}) from None
    for key in context.selected_asset_keys:
        name = key.path[-1]
        rows = sum(n for table, n in summary["rows"].items() if table == name or table.startswith(name + "__"))
        yield dg.MaterializeResult(asset_key=key, metadata={
            "rows_loaded": rows, "pipeline": summary["pipeline"], "run_id": summary["run_id"],
            "requests": sum(summary["requests_by_resource"].get(name, {}).values()),
        })


def mart_names() -> List[str]:
    return sorted(path.stem for path in MARTS_DIR.glob("*.sql"))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(dg.AssetKey([MARTS_KEY_PREFIX, name]), deps=list(autosync_raw_assets.keys),
                     group_name="autosync_marts", kinds={"dbt"})
        for name in mart_names()
    ],
    name="autosync_marts",
)
def autosync_marts(context: dg.AssetExecutionContext, warehouse: AutosyncWarehouse) -> Iterator[dg.MaterializeResult]:
    # One `dbt build` over the shared dataset (every shop), through the runner the CLI uses;
    # it raises DbtRunError naming the failing nodes, which fails this step.
    result = build_marts(warehouse.as_warehouse())
    context.log.info(result.summary)
    for spec in context.assets_def.specs:
        yield dg.MaterializeResult(asset_key=spec.key, metadata={"dbt": result.summary})


# Shops synced at once: one run per shop partition, started by Dagster's run queue (dagster.yaml:
# `run_queue: tag_concurrency_limits: [{key: autosync/sync, value: shop, limit: 4}]`, or
# max_concurrent_runs). Runs on one API key share its rate budget wherever they run: each paces
# itself from the API's X-RateLimit-Remaining/Reset (autosync_source/ratelimit.py). Why the run queue
# rather than shops as steps of one run: docs/orchestration.md.
SHOP_RUN_TAGS = {"autosync/sync": "shop"}

autosync_shops_job = dg.define_asset_job(
    "autosync_shops_job", selection=dg.AssetSelection.assets(autosync_raw_assets), partitions_def=SHOP_PARTITIONS,
    tags=SHOP_RUN_TAGS,
)
autosync_marts_job = dg.define_asset_job("autosync_marts_job", selection=dg.AssetSelection.assets(autosync_marts))


@dg.schedule(cron_schedule="0 2 * * *", job=autosync_shops_job, execution_timezone="UTC")
def autosync_shops_daily(context: dg.ScheduleEvaluationContext) -> List[dg.RunRequest]:
    keys = SHOP_PARTITIONS.get_partition_keys(dynamic_partitions_store=context.instance)
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [dg.RunRequest(run_key=f"{day}-shop-{key}", partition_key=key, tags=SHOP_RUN_TAGS) for key in keys]


autosync_marts_daily = dg.ScheduleDefinition(
    name="autosync_marts_daily", cron_schedule="0 5 * * *", job=autosync_marts_job, execution_timezone="UTC",
)


@dg.sensor(minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.STOPPED)
def autosync_shop_discovery(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Adds a partition for every shop `GET /shops` lists that Dagster does not know yet."""
    known = set(context.instance.get_dynamic_partitions(SHOP_PARTITIONS_NAME))
    new = [str(shop) for shop in list_shop_ids() if str(shop) not in known]
    requests = [SHOP_PARTITIONS.build_add_request(new)] if new else []
    return dg.SensorResult(dynamic_partitions_requests=requests)


defs = dg.Definitions(
    assets=[autosync_raw_assets, autosync_marts],
    jobs=[autosync_shops_job, autosync_marts_job],
    schedules=[autosync_shops_daily, autosync_marts_daily],
    sensors=[autosync_shop_discovery] if isinstance(SHOP_PARTITIONS, dg.DynamicPartitionsDefinition) else [],
    resources={"warehouse": AutosyncWarehouse()},
    # A run is one shop (or the marts): one step, run in the run's own process; the default
    # multiprocess executor would start a second interpreter per shop for nothing.
    executor=dg.in_process_executor,
)

"""Dagster definitions: the raw tables as dlt assets partitioned by shop, the dbt marts downstream.

    pip install -e ".[dagster]"
    dagster definitions validate -f pipelines/dagster_defs.py
    dagster dev -f pipelines/dagster_defs.py

Configuration is the CLI's (pipelines/run.py): `.dlt/config.toml`, `.dlt/secrets.toml` and the
environment (SOURCES__AUTOSYNC__API_KEY, DESTINATION__POSTGRES__CREDENTIALS, ...); the
`warehouse` resource only overrides where the CLI's flags would (destination, dataset, DuckDB
file, pipelines dir). Each shop partition runs `pipelines.orchestration`'s per-shop pipeline
(own dlt state, own staging dataset), so Dagster's workers can sync different shops into one
Postgres or BigQuery dataset at the same time; one shop can be backfilled or re-synced alone by
materializing its partition.

Partitions: the shops listed in config (`[sources.autosync] shops = [1, 2]` or
SOURCES__AUTOSYNC__SHOPS="[1, 2]") as static partitions; without that list, dynamic partitions
that the `autosync_shop_discovery` sensor keeps in step with `GET /shops`.
Schedules: `autosync_shops_daily` (02:00 UTC, one run per shop) and `autosync_marts_daily`
(05:00 UTC, dbt build over every shop).
"""

from pathlib import Path
from typing import Any, Iterator, List, Optional

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from pipelines.orchestration import (
    Warehouse,
    build_marts,
    configured_shop_ids,
    list_shop_ids,
    make_pipeline,
    make_source,
    run_with_schema_retry,
)

RAW_KEY_PREFIX = "autosync_raw"
MARTS_KEY_PREFIX = "autosync"
SHOP_PARTITIONS_NAME = "autosync_shops"
MARTS_DIR = Path(__file__).resolve().parents[1] / "dbt_project" / "models" / "marts"

# Only shapes the asset definitions (one asset per resource); never used for a request. A real
# key is not needed, and not wanted at import: definitions must load where no secret is set.
# Explicit base_url so no configured environment can contradict the placeholder key's prefix.
_DEFINITION_KEY = "sk_sandbox_asset_definitions_only"
_DEFINITION_URL = "http://asset-definitions.invalid/v1"


class AutosyncWarehouse(dg.ConfigurableResource):
    """Where the shops are loaded; unset fields fall back to the CLI's defaults (dlt config)."""

    destination: Optional[str] = None
    dataset: Optional[str] = None
    duckdb_path: Optional[str] = None
    pipelines_dir: Optional[str] = None

    def as_warehouse(self) -> Warehouse:
        return Warehouse(self.destination, self.dataset, self.duckdb_path, self.pipelines_dir)


class AutosyncTranslator(DagsterDltTranslator):
    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        # autosync_raw/<table>, with no upstream "source" assets: the API is not something
        # Dagster materializes.
        return super().get_asset_spec(data).replace_attributes(
            key=dg.AssetKey([RAW_KEY_PREFIX, data.resource.name]), deps=[], group_name="autosync_raw",
        )


def shop_partitions() -> dg.PartitionsDefinition:
    configured = configured_shop_ids()
    if configured:
        return dg.StaticPartitionsDefinition([str(shop) for shop in configured])
    return dg.DynamicPartitionsDefinition(name=SHOP_PARTITIONS_NAME)


SHOP_PARTITIONS = shop_partitions()
_TRANSLATOR = AutosyncTranslator()


@dlt_assets(
    dlt_source=make_source(api_key=_DEFINITION_KEY, base_url=_DEFINITION_URL),
    dlt_pipeline=make_pipeline(pipeline_name="autosync_dagster_definitions"),
    name="autosync_raw",
    dagster_dlt_translator=_TRANSLATOR,
    partitions_def=SHOP_PARTITIONS,
    # one run per shop: each partition is its own dlt pipeline, they cannot share a run
    backfill_policy=dg.BackfillPolicy.multi_run(1),
)
def autosync_raw_assets(context: dg.AssetExecutionContext, dagster_dlt: DagsterDltResource,
                        warehouse: AutosyncWarehouse) -> Iterator[Any]:
    shop_id = int(context.partition_key)
    pipeline = make_pipeline(warehouse.as_warehouse(), shop_id)

    def run_shop() -> List[Any]:
        # dagster-dlt drops the pipeline's local files before running (the state comes back from
        # the warehouse), so a retry after a lost DDL race extracts this shop again: cursors
        # did not move, nothing is lost or doubled (tables merge on id).
        return list(dagster_dlt.run(context=context, dlt_source=make_source(shop_id), dlt_pipeline=pipeline,
                            dagster_dlt_translator=_TRANSLATOR))

    yield from run_with_schema_retry(run_shop)


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


autosync_shops_job = dg.define_asset_job(
    "autosync_shops_job", selection=dg.AssetSelection.assets(autosync_raw_assets), partitions_def=SHOP_PARTITIONS,
)
autosync_marts_job = dg.define_asset_job("autosync_marts_job", selection=dg.AssetSelection.assets(autosync_marts))


@dg.schedule(cron_schedule="0 2 * * *", job=autosync_shops_job, execution_timezone="UTC")
def autosync_shops_daily(context: dg.ScheduleEvaluationContext) -> List[dg.RunRequest]:
    keys = SHOP_PARTITIONS.get_partition_keys(dynamic_partitions_store=context.instance)
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [dg.RunRequest(run_key=f"{day}-shop-{key}", partition_key=key) for key in keys]


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
    resources={"dagster_dlt": DagsterDltResource(), "warehouse": AutosyncWarehouse()},
)

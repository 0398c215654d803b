"""Run one sync through one door, in its own process, as that door's host would (tests kill it).

    python tests/door_process.py <door> <config json>

doors: cli (pipelines/run.py main), dagster (a shop partition materialization per shop),
airflow (the `sync_shop` task's function per shop), webhook (the receiver's sync trigger).
config: base_url, duckdb_path, pipelines_dir, shops, and extra CLI flags for the cli door.
The API key comes from SOURCES__AUTOSYNC__API_KEY, as a deployment passes it.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autosync_source import RESOURCE_NAMES as RESOURCES  # noqa: E402


def main(door: str, config: dict) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    from pipelines.engine import Target, raise_on_interrupts

    raise_on_interrupts()
    target = Target("duckdb", "autosync_raw", config["duckdb_path"], config["pipelines_dir"])
    shops = [int(shop) for shop in config["shops"]]
    if door == "cli":
        from pipelines.run import main as cli

        return cli(["--base-url", config["base_url"], "--no-dbt", "--duckdb-path", config["duckdb_path"],
                    "--pipelines-dir", config["pipelines_dir"], "--shops", ",".join(map(str, shops)),
                    *config.get("flags", [])])
    if door == "dagster":
        import dagster as dg

        from pipelines import dagster_defs

        instance = dg.DagsterInstance.ephemeral()
        if isinstance(dagster_defs.SHOP_PARTITIONS, dg.DynamicPartitionsDefinition):
            instance.add_dynamic_partitions(dagster_defs.SHOP_PARTITIONS_NAME, [str(shop) for shop in shops])
        warehouse = dagster_defs.AutosyncWarehouse(destination="duckdb", duckdb_path=config["duckdb_path"],
                                                   dataset="autosync_raw", pipelines_dir=config["pipelines_dir"])
        for shop in shops:
            result = dg.materialize([dagster_defs.autosync_raw_assets], partition_key=str(shop),
                                    resources={"warehouse": warehouse}, instance=instance, raise_on_error=False)
            if not result.success:
                return 1
        return 0
    if door == "airflow":
        from pipelines.orchestration import sync_shop_for_interval

        for shop in shops:  # what the mapped task does for each shop of a scheduled run
            sync_shop_for_interval(shop, None, None, False, target)
        return 0
    if door == "webhook":
        from pipelines.webhooks import connector_sync_trigger

        connector_sync_trigger(target, base_url=config["base_url"])(set(RESOURCES), set(shops))
        return 0
    raise SystemExit(f"unknown door {door}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], json.loads(sys.argv[2])))

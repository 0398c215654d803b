"""The demo's own warehouse: a DuckDB file and dataset of its own, and a refusal to write into
a file that holds anything but the demo's data."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.engine.errors import SyncFailed, short_reason
from pipelines.engine.target import Target

DEMO_DUCKDB_PATH = "autosync_demo.duckdb"
DEMO_DATASET = "autosync_demo_raw"
DEMO_API_LABEL = "demo"  # the demo's cursors: autosync_demo_shop_<id>, never a real account's


def demo_target(target: Target) -> Target:
    """The demo's own DuckDB file and dataset, whatever the config says about the real warehouse."""
    if target.destination not in (None, "duckdb"):
        raise SyncFailed("--demo writes its own DuckDB file only; drop --destination.", category="configuration")
    return replace(target, destination="duckdb", duckdb_path=target.duckdb_path or DEMO_DUCKDB_PATH,
                   dataset=target.dataset or DEMO_DATASET)


def world_today(emulator: Any) -> dt.date:
    """The emulated world's today: the date its clock shows in its shops' own zones (the earliest,
    should they differ: no shop is aged on a day that has not begun for it). The demo passes it
    to dbt as `as_of_date`, so its receivables age on the world's clock, not the machine's (a
    world that ends in 2025 read on a machine in 2026 had every invoice 90+ days old)."""
    truth = emulator.truth()
    clock = dt.datetime.fromisoformat(truth["clock"].replace("Z", "+00:00"))
    zones = {shop["timezone"] for shop in truth["objects"]["shops"] if shop.get("timezone")}
    return min((clock.astimezone(ZoneInfo(zone)).date() for zone in zones), default=clock.date())


def refuse_non_demo_warehouse(target: Target) -> None:
    """The demo may write only into a file that is new, empty, or holds the demo's own data.

    Opened read-only, so a refused file is left byte for byte as it was."""
    path = Path(str(target.duckdb_path))
    if not path.exists():
        return
    import duckdb

    try:
        with duckdb.connect(str(path), read_only=True) as connection:
            tables = connection.execute(
                "select table_schema, table_name from information_schema.tables").fetchall()
            states = [schema for schema, table in tables if table == "_dlt_pipeline_state"]
            names = set()
            for schema in states:
                names |= {row[0] for row in connection.execute(
                    f'select distinct pipeline_name from "{schema}"."_dlt_pipeline_state"').fetchall()}
    except Exception as failure:
        raise SyncFailed(f"--demo will not write into {path}: it cannot be read as a DuckDB file "
                         f"({short_reason(failure)}). Point --duckdb-path at a new file.", category="configuration") from None
    if not tables:
        return
    if names and all(name.startswith(f"autosync_{DEMO_API_LABEL}_") for name in names):
        return
    raise SyncFailed(f"--demo will not write into {path}: it holds data that is not the demo's. "
                     f"Run the demo with --duckdb-path pointing at a new file (default {DEMO_DUCKDB_PATH}).",
                     category="configuration")

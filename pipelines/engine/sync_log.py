"""The sync log: a row per run, shop and resource in `<raw dataset>._autosync_runs`, from every door.

dbt reads it: source freshness is the last successful sync of a table (not its newest changed
row, which on a quiet shop can be days old while the pipeline is healthy), and the `sync_health`
model shows when each shop and table was last synced and whether the last attempt failed.

Written through the pipeline's own SQL client after the load (a plain INSERT, not a dlt load:
a failed run must be logged too, and a dlt load is what just failed). The table is created on
first use with types every supported destination reads; writing it never fails a sync: a
destination that cannot be reached gets a warning in the process log instead.
Nothing secret goes in: errors are the engine's one-line messages, which never carry keys.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence

from autosync_source.cursors import cursor_positions
from autosync_source.settings import ENDPOINTS_BY_NAME, RESOURCE_NAMES

logger = logging.getLogger("autosync.sync_log")

TABLE = "_autosync_runs"
COLUMNS = (  # name, kind: the DDL type follows the destination (see _ddl)
    ("run_id", "text"), ("door", "text"), ("destination", "text"), ("dataset", "text"),
    ("pipeline_name", "text"), ("shop_id", "int"), ("resource", "text"),
    ("started_at", "timestamp"), ("finished_at", "timestamp"), ("status", "text"),
    ("rows_loaded", "int"), ("requests", "int"), ("rate_limited_429", "int"), ("retries", "int"),
    ("cursor_updated_at", "text"), ("error", "text"),
)
_TYPES = {
    "bigquery": {"text": "STRING", "int": "INT64", "timestamp": "TIMESTAMP"},
    "default": {"text": "TEXT", "int": "BIGINT", "timestamp": "TIMESTAMP WITH TIME ZONE"},
}


def rows_for_shop(pipeline: Any, summary: Any, shop_id: int, resources: Optional[Sequence[str]],
                  started_at: datetime, status: str, rows: Dict[str, int], requests: Dict[str, Any],
                  error: Optional[str] = None, notes: Optional[Dict[str, str]] = None) -> List[Dict[str, Any]]:
    """One row per resource the run synced for the shop. Run-wide counts (429s, retries) go on
    the shop's first row only, so a sum over rows is the run's total. `notes` ({resource: text})
    go in the `error` column of an ok row: what the run could not promise (the paging's residual
    case), without a column older logs lack."""
    finished_at = datetime.now(timezone.utc)
    try:
        cursors = cursor_positions(pipeline.state, shop_id)
    except Exception:  # a dropped pipeline has no state: no cursor to report
        cursors = {}
    names = [name for name in RESOURCE_NAMES if not resources or name in resources]
    by_resource = requests.get("by_resource", {})
    out: List[Dict[str, Any]] = []
    for index, name in enumerate(names):
        out.append({
            "run_id": summary.run_id, "door": summary.door, "destination": summary.destination,
            "dataset": summary.dataset, "pipeline_name": pipeline.pipeline_name, "shop_id": int(shop_id),
            "resource": name, "started_at": started_at, "finished_at": finished_at, "status": status,
            "rows_loaded": sum(n for table, n in rows.items() if table == name or table.startswith(name + "__")),
            "requests": sum(by_resource.get(name, {}).values()),
            "rate_limited_429": requests.get("rate_limited", 0) if index == 0 else 0,
            "retries": requests.get("retries", 0) if index == 0 else 0,
            "cursor_updated_at": cursors.get(name) if name in ENDPOINTS_BY_NAME else None,
            "error": error if error is not None else (notes or {}).get(name),
        })
    return out


def record(pipeline: Any, rows: List[Dict[str, Any]]) -> bool:
    """Append `rows` to the log in the pipeline's dataset; False (and a warning) if it could not."""
    if not rows:
        return True
    try:
        with pipeline.sql_client() as sql:
            if not sql.has_dataset():
                sql.create_dataset()
            qualified = sql.make_qualified_table_name(TABLE)
            sql.execute_sql(_ddl(qualified, pipeline.destination.destination_name))
            types = _TYPES.get(pipeline.destination.destination_name, _TYPES["default"])
            tuples, values = [], []
            for row in rows:
                # A None parameter has no type BigQuery's client can infer ("unexpected type"):
                # a NULL of the column's type goes in the statement instead.
                tuples.append("(" + ", ".join("%s" if row[name] is not None else f"CAST(NULL AS {types[kind]})"
                                              for name, kind in COLUMNS) + ")")
                values += [row[name] for name, _ in COLUMNS if row[name] is not None]
            # one statement for the shop's rows (on BigQuery each statement is a job)
            names = ", ".join(name for name, _ in COLUMNS)
            sql.execute_sql(f"INSERT INTO {qualified} ({names}) VALUES {', '.join(tuples)}", *values)
        return True
    except Exception as failure:
        reason = str(failure).splitlines()[0][:200] if str(failure) else type(failure).__name__
        logger.warning("could not write the sync log (%s): %s", TABLE, reason)
        return False


def _ddl(qualified: str, destination: str) -> str:
    types = _TYPES.get(destination, _TYPES["default"])
    columns = ", ".join(f"{name} {types[kind]}" for name, kind in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {qualified} ({columns})"


def read(pipeline: Any) -> List[Dict[str, Any]]:
    """Every row of the log (tests, tools); [] when no run was logged yet."""
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    names = [name for name, _ in COLUMNS]
    with pipeline.sql_client() as sql:
        try:
            rows = sql.execute_sql(f"SELECT {', '.join(names)} FROM {sql.make_qualified_table_name(TABLE)}") or []
        except DatabaseUndefinedRelation:
            return []
    return [dict(zip(names, row)) for row in rows]

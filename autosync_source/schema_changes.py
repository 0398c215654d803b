"""What a run changed in the raw tables' schema, for the run summary.

dlt evolves the schema by itself and that is what we want: a new field in the API becomes a
new column, a field whose values change type does not stop the load but goes into a variant
column (`mileage__v_text` next to `mileage`). Both are easy to miss in a scheduled job, so the
run compares the tables' columns before and after the load and lists every difference.

Before the first run "before" is what the connector declares (settings.py), so fields the
API sends beyond the declared ones are reported too.
"""
from __future__ import annotations

from typing import Any, Dict, List, Set

import dlt

from autosync_source.settings import raw_tables

VARIANT_MARK = "__v_"


def declared_columns() -> Dict[str, Set[str]]:
    """The columns settings.py declares for every raw table, children included."""
    return {table: set(columns) for table, columns in raw_tables().items()}


def columns_snapshot(pipeline: dlt.Pipeline) -> Dict[str, Dict[str, Any]]:
    """{table: {column: data_type}} of the pipeline's schema as it is now ({} before any run)."""
    if not pipeline.default_schema_name:
        return {}
    schema = pipeline.default_schema
    return {
        table: {name: column.get("data_type") for name, column in schema.get_table_columns(table).items()}
        for table in schema.data_table_names()
    }


def schema_changes(before: Dict[str, Dict[str, Any]], pipeline: dlt.Pipeline) -> List[Dict[str, Any]]:
    """New tables, new columns and type changes (variant columns) since `before`."""
    declared = declared_columns()
    changes: List[Dict[str, Any]] = []
    for table, columns in sorted(columns_snapshot(pipeline).items()):
        if table in before:
            known: Set[str] = set(before[table])
        elif table in declared:
            known = declared[table]
        else:
            changes.append({"table": table, "change": "new_table"})
            continue
        for name in sorted(set(columns) - known):
            if name.startswith("_dlt"):
                continue
            if VARIANT_MARK in name:
                column, new_type = name.rsplit(VARIANT_MARK, 1)
                changes.append({
                    "table": table, "column": column, "change": "type_changed",
                    "new_type": new_type, "variant_column": name,
                })
            else:
                changes.append({"table": table, "column": name, "change": "new_column", "data_type": columns[name]})
    return changes


def describe(change: Dict[str, Any]) -> str:
    if change["change"] == "new_table":
        return f"new table {change['table']}"
    if change["change"] == "type_changed":
        return (
            f"{change['table']}.{change['column']} changed type: values that are not the declared "
            f"type now load into {change['variant_column']} ({change['new_type']})"
        )
    return f"new column {change['table']}.{change['column']} ({change['data_type']})"

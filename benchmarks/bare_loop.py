"""The fixed reference for the connector's cost per row: a bare loop with no dlt.

    python benchmarks/bare_loop.py BASE_URL API_KEY DUCKDB_PATH   # prints one JSON line

One thread, `requests` + stdlib `json`, records flattened by hand (nested objects become
`parent__child` columns, embedded lists child tables with their parents' ids), every row
written once as newline-delimited JSON per table, then one DuckDB `read_json` per table. It
sends the requests a full sync must send (the shops listing, every list page of 100, one
detail call per work order and inspection, whose list rows are summaries) and keeps nothing
else: no cursors, no state, no declared types (DuckDB infers them; money lands as DOUBLE), no
merge, no retries. It is what "parsing the rows and putting them in a table" costs on this
machine, the floor the connector's CPU per row is compared with (benchmarks/cost_per_row.py).

Kept deliberately simple and unchanged: a faster reference would move the goalpost.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import duckdb
import requests

DATASET = "autosync_raw"
SHOP_RESOURCES = ("employees", "customers", "vehicles", "work_orders", "payments", "inspections",
                  "appointments", "inventory")
PATHS = {"work_orders": "workorders"}  # resource name -> path segment where they differ
DETAIL_CHILD = {"work_orders": "jobs", "inspections": "items"}  # list rows lack these: fetch the detail
ROOT_KEYS = {"work_orders": "work_order_id", "payments": "payment_id", "inspections": "inspection_id"}
NOT_LOADED = {"work_orders": ("payments",)}  # loaded from the payments endpoint


def flatten(record: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}__"))
        elif not isinstance(value, list):
            flat[prefix + key] = value
    return flat


def table_rows(resource: str, record: Dict[str, Any], shop_id: int) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """(table, flat row) for the record and every row of its embedded lists, at any depth."""
    for name in NOT_LOADED.get(resource, ()):
        record.pop(name, None)
    row = flatten(record)
    row["shop_id"] = shop_id
    yield resource, row
    yield from _children(resource, resource, record, shop_id, record["id"])


def _children(resource: str, table: str, parent: Dict[str, Any], shop_id: int, root_id: Any) -> Iterator[Tuple[str, Dict[str, Any]]]:
    for name, value in parent.items():
        if not isinstance(value, list):
            continue
        child_table = f"{table}__{name}"
        for child in value:
            row = flatten(child)
            row["shop_id"] = shop_id
            row[ROOT_KEYS.get(resource, "root_id")] = root_id
            row["parent_id"] = parent["id"]
            yield child_table, row
            yield from _children(resource, child_table, child, shop_id, root_id)


def run(base_url: str, api_key: str, duckdb_path: str) -> Dict[str, Any]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    requests_sent = 0

    def get(path: str, params: Any = None) -> Any:
        nonlocal requests_sent
        response = session.get(f"{base_url}/{path}", params=params, timeout=60)
        response.raise_for_status()
        requests_sent += 1
        return json.loads(response.content)

    def pages(path: str) -> Iterator[List[Dict[str, Any]]]:
        page = 1
        while True:
            body = get(path, {"page": page, "per_page": 100})
            yield body["data"]
            if not body["pagination"].get("has_more"):
                return
            page += 1

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bare_loop_") as scratch:
        files: Dict[str, Any] = {}
        rows_by_table: Dict[str, int] = {}

        def write(table: str, row: Dict[str, Any]) -> None:
            if table not in files:
                files[table] = open(Path(scratch) / f"{table}.jsonl", "w")
            files[table].write(json.dumps(row) + "\n")
            rows_by_table[table] = rows_by_table.get(table, 0) + 1

        shops = [shop for page in pages("shops") for shop in page]
        for shop in shops:
            for table, row in table_rows("shops", shop, shop["id"]):
                write(table, row)
        for resource in SHOP_RESOURCES:
            for shop in shops:
                path = f"shops/{shop['id']}/{PATHS.get(resource, resource)}"
                for page in pages(path):
                    for record in page:
                        if resource in DETAIL_CHILD and DETAIL_CHILD[resource] not in record:
                            record = get(f"{path}/{record['id']}")["data"]
                        for table, row in table_rows(resource, record, shop["id"]):
                            write(table, row)
        for handle in files.values():
            handle.close()
        con = duckdb.connect(duckdb_path)
        con.execute(f"create schema if not exists {DATASET}")
        for table in files:
            source = str(Path(scratch) / f"{table}.jsonl")
            con.execute(f"create or replace table {DATASET}.\"{table}\" as "
                        f"select * from read_json(?, format = 'newline_delimited')", [source])
        con.close()
    return {"rows": sum(rows_by_table.values()), "rows_by_table": dict(sorted(rows_by_table.items())),
            "seconds": time.perf_counter() - began, "requests": requests_sent}


if __name__ == "__main__":
    print(json.dumps(run(*sys.argv[1:4])))

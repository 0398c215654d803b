"""One measured run in a process of its own: `python benchmarks/worker.py '<json task>'`.

Prints one JSON line: rows loaded, seconds, peak memory (this process and any it started,
e.g. dlt's normalize pool) and what the kind of run reports on top. A process per run keeps
peak RSS honest (nothing left over from the previous run) and lets the parent set dlt knobs
through environment variables, the way a user would.

Kinds:
  connector  the project's dlt source (autosync_source) into DuckDB, as pipelines/run.py builds it
  rest_api   dlt's generic rest_api source, configured the way a user would in ten minutes
  floor      no dlt: requests, JSON parsing and DuckDB inserts of the same rows
  dbt        `dbt build` (pipelines.dbt_runner.run_dbt) on a DuckDB file a connector run loaded
"""
from __future__ import annotations

import json
import os
import queue
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

DATASET = "autosync_raw"
SHOP_RESOURCES = ("employees", "customers", "vehicles", "work_orders", "payments", "inspections",
                  "appointments", "inventory")
PATHS = {"work_orders": "workorders"}  # resource name -> path segment where they differ
# List rows of these are summaries: their children come only with `GET {id}`.
DETAIL_CHILDREN = {"work_orders": ("jobs", "line_items"), "inspections": ("items", "photos")}


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)  # KiB on Linux


def cpu_seconds() -> float:
    """User + system CPU of this process and the processes it waited for (dlt's pools)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 3)


def _duckdb_pipeline(task: Dict[str, Any], name: str, shipped: bool = False):
    """The connector gets the destination pipelines/run.py builds; rest_api a plain dlt DuckDB."""
    import dlt

    from pipelines.run import duckdb_destination

    destination = duckdb_destination(task["duckdb_path"]) if shipped else dlt.destinations.duckdb(task["duckdb_path"])
    return dlt.pipeline(pipeline_name=name, destination=destination, dataset_name=DATASET,
                        pipelines_dir=task["pipelines_dir"])


def _user_rows(row_counts: Dict[str, int]) -> Dict[str, int]:
    return {table: n for table, n in sorted(row_counts.items()) if not table.startswith("_dlt")}


def _phases(pipeline: Any) -> Dict[str, float]:
    trace = pipeline.last_trace
    out: Dict[str, float] = {}
    for step in trace.steps if trace else []:
        if step.step in ("extract", "normalize", "load") and step.finished_at and step.started_at:
            out[step.step] = round((step.finished_at - step.started_at).total_seconds(), 3)
    return out


def run_connector(task: Dict[str, Any]) -> Dict[str, Any]:
    """The connector over every shop of the world, into one pipeline: the source reads one shop,
    so the shops are listed once and read one after another (the engine would run several at
    once; this measures the connector itself)."""
    from autosync_source import RequestStats, autosync_source
    from autosync_source.connection import ApiSettings, connect, list_shops, selected_endpoints

    pipeline = _duckdb_pipeline(task, task.get("pipeline_name", "autosync"), shipped=True)
    stats = RequestStats()
    profiler = _start_profiler(task)
    began, began_epoch = time.perf_counter(), time.time()
    client = connect(ApiSettings(api_key=task["api_key"], base_url=task["base_url"]),
                     selected_endpoints(task.get("source_args", {}).get("resources")), stats)
    rows: Dict[str, int] = {}
    phases: Dict[str, float] = {}
    extract_finished = began_epoch
    for shop in list_shops(client, stats):
        source = autosync_source(api_key=task["api_key"], base_url=task["base_url"], request_stats=stats, shop=shop,
                                 **task.get("source_args", {}))
        pipeline.run(source, loader_file_format=task.get("loader_file_format"))
        normalize_info = pipeline.last_trace.last_normalize_info
        for table, n in (_user_rows(normalize_info.row_counts) if normalize_info else {}).items():
            rows[table] = rows.get(table, 0) + n
        for step, seconds_of_step in _phases(pipeline).items():
            phases[step] = round(phases.get(step, 0.0) + seconds_of_step, 3)
        extract = next(step for step in pipeline.last_trace.steps if step.step == "extract")
        extract_finished = extract.finished_at.timestamp()
    seconds = time.perf_counter() - began
    _stop_profiler(profiler, task)
    counts = stats.as_dict()
    return {"rows": sum(rows.values()), "rows_by_table": rows, "seconds": seconds, "phases": phases,
            "run_started_epoch": began_epoch, "extract_finished_epoch": extract_finished,
            "requests": counts["requests"], "rate_limited": counts["rate_limited"], "retries": counts["retries"],
            "requests_by_resource": counts["by_resource"]}


def rest_api_config(base_url: str, api_key: str) -> Dict[str, Any]:
    """What a user writes from dlt's rest_api docs: page numbers, 100 a page, a detail call per
    work order and inspection (their lists are summaries), merge on id. No incremental cursor."""
    shop_scoped = []
    for name in SHOP_RESOURCES:
        path = f"shops/{{resources.shops.id}}/{PATHS.get(name, name)}"
        if name in DETAIL_CHILDREN:
            shop_scoped.append({"name": f"{name}_list", "endpoint": {"path": path}, "selected": False})
            list_of = f"{name}_list"
            shop_scoped.append({
                "name": name,
                "endpoint": {
                    "path": f"shops/{{resources.{list_of}.shop_id}}/{PATHS.get(name, name)}/{{resources.{list_of}.id}}",
                    "paginator": "single_page",
                    "params": {},
                },
            })
        else:
            shop_scoped.append({"name": name, "endpoint": {"path": path}})
    return {
        "client": {
            "base_url": base_url,
            "auth": {"type": "bearer", "token": api_key},
            "paginator": {"type": "page_number", "base_page": 1, "page_param": "page",
                          "total_path": "pagination.pages"},
        },
        "resource_defaults": {
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {"params": {"per_page": 100}, "data_selector": "data"},
        },
        "resources": [{"name": "shops", "endpoint": {"path": "shops"}}] + shop_scoped,
    }


def run_rest_api(task: Dict[str, Any]) -> Dict[str, Any]:
    from dlt.sources.rest_api import rest_api_source

    pipeline = _duckdb_pipeline(task, "rest_api_alternative")
    source = rest_api_source(rest_api_config(task["base_url"], task["api_key"]), name="autosync_rest_api")
    began = time.perf_counter()
    pipeline.run(source)
    seconds = time.perf_counter() - began
    rows = _user_rows(pipeline.last_trace.last_normalize_info.row_counts)
    return {"rows": sum(rows.values()), "rows_by_table": rows, "seconds": seconds, "phases": _phases(pipeline)}


# ---------------------------------------------------------------------------------- the floor
def _flatten(record: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}__"))
        elif not isinstance(value, list):
            flat[prefix + key] = value
    return flat


def _table_rows(resource_name: str, record: Dict[str, Any], shop_id: int) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """The record and its nested lists as (table, flat row), parents' ids added to children."""
    if resource_name == "work_orders":
        record.pop("payments", None)  # loaded from the payments endpoint, like the connector
    row = _flatten(record)
    row["shop_id"] = shop_id
    yield resource_name, row
    for child_name, value in record.items():
        if isinstance(value, list):
            for child in value:
                if not isinstance(child, dict):
                    continue
                child_row = _flatten(child)
                child_row["shop_id"] = shop_id
                child_row["parent_id"] = record["id"]
                yield f"{resource_name}__{child_name}", child_row
                for grand_name, grand_value in child.items():
                    if isinstance(grand_value, list):
                        for grand in grand_value:
                            grand_row = _flatten(grand)
                            grand_row.update(shop_id=shop_id, parent_id=child["id"], root_id=record["id"])
                            yield f"{resource_name}__{child_name}__{grand_name}", grand_row


def run_floor(task: Dict[str, Any]) -> Dict[str, Any]:
    """The fastest simple code for the same rows: per (shop, resource) a thread pages the list
    (100 a page) and fetches the details, the main thread inserts Arrow batches into DuckDB."""
    import duckdb
    import orjson
    import pyarrow as pa
    import requests

    base, headers = task["base_url"], {"Authorization": f"Bearer {task['api_key']}"}
    workers = int(task.get("workers", 4))
    flush_rows = int(task.get("flush_rows", 20000))
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update(headers)
        return local.session

    def get(path: str, params: Optional[dict] = None) -> Any:
        response = session().get(f"{base}/{path}", params=params, timeout=60)
        response.raise_for_status()
        return orjson.loads(response.content)

    began = time.perf_counter()
    requests_made = [0]
    handoff: "queue.Queue" = queue.Queue(maxsize=32)
    lock = threading.Lock()

    def count() -> None:
        with lock:
            requests_made[0] += 1

    def read(resource_name: str, shop_id: int) -> None:
        path = f"shops/{shop_id}/{PATHS.get(resource_name, resource_name)}"
        page = 1
        while True:
            body = get(path, {"page": page, "per_page": 100})
            count()
            batch = []
            for record in body["data"]:
                if resource_name in DETAIL_CHILDREN and DETAIL_CHILDREN[resource_name][0] not in record:
                    record = get(f"{path}/{record['id']}")["data"]
                    count()
                batch.extend(_table_rows(resource_name, record, shop_id))
            handoff.put(batch)
            if not body["pagination"].get("has_more"):
                break
            page += 1

    shops = get("shops", {"per_page": 100})["data"]
    requests_made[0] += 1
    con = duckdb.connect(task["duckdb_path"])
    con.execute(f"create schema if not exists {DATASET}")
    created: set = set()
    pending: Dict[str, List[Dict[str, Any]]] = {}
    rows_by_table: Dict[str, int] = {}

    def flush(table: str) -> None:
        batch = pending.pop(table, [])
        if not batch:
            return
        arrow = pa.Table.from_pylist(batch)  # noqa: F841 (read by DuckDB by name)
        if table not in created:
            con.execute(f'create table {DATASET}."{table}" as select * from arrow')
            created.add(table)
        else:
            con.execute(f'insert into {DATASET}."{table}" by name select * from arrow')
        rows_by_table[table] = rows_by_table.get(table, 0) + len(batch)

    for shop in shops:
        pending.setdefault("shops", []).extend(row for _, row in _table_rows("shops", shop, shop["id"]))
    flush("shops")
    jobs = [(name, shop["id"]) for name in SHOP_RESOURCES for shop in shops]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(read, name, shop_id) for name, shop_id in jobs]
        done_marker = object()
        threading.Thread(target=lambda: ([f.result() for f in futures], handoff.put(done_marker)), daemon=True).start()
        while True:
            batch = handoff.get()
            if batch is done_marker:
                break
            for table, row in batch:
                rows = pending.setdefault(table, [])
                rows.append(row)
                if len(rows) >= flush_rows:
                    flush(table)
        for future in futures:
            future.result()  # raise a failed read here
    for table in list(pending):
        flush(table)
    con.close()
    seconds = time.perf_counter() - began
    return {"rows": sum(rows_by_table.values()), "rows_by_table": dict(sorted(rows_by_table.items())),
            "seconds": seconds, "requests": requests_made[0]}


def run_dbt_build(task: Dict[str, Any]) -> Dict[str, Any]:
    from pipelines.dbt_runner import run_dbt

    pipeline = _duckdb_pipeline(task, task.get("pipeline_name", "autosync"), shipped=True)
    began = time.perf_counter()
    result = run_dbt(pipeline, command="build", extra_args=task.get("dbt_args"))
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "success": bool(result.success), "summary": str(result)}


# ---------------------------------------------------------------------------------- profiling
def _start_profiler(task: Dict[str, Any]) -> Any:
    if not task.get("profile_text"):
        return None
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.005, async_mode="disabled")
    profiler.start()
    return profiler


def _stop_profiler(profiler: Any, task: Dict[str, Any]) -> None:
    """Write the call tree with dlt's frames shown, cut to frames of at least 1% of the run."""
    if profiler is None:
        return
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=True)
    total = profiler.last_session.duration
    kept = []
    for line in text.splitlines():
        numbers = [word for word in line.split() if word.replace(".", "", 1).isdigit() and "." in word]
        if not numbers or float(numbers[0]) >= 0.01 * total:
            kept.append(line)
    Path(task["profile_text"]).parent.mkdir(parents=True, exist_ok=True)
    Path(task["profile_text"]).write_text("\n".join(kept) + "\n")


KINDS = {"connector": run_connector, "rest_api": run_rest_api, "floor": run_floor, "dbt": run_dbt_build}


def main(argv: List[str]) -> int:
    task = json.loads(argv[1])
    cpu_before = cpu_seconds()  # imports are not the run's
    result = KINDS[task["kind"]](task)
    result["peak_rss_mb"] = peak_rss_mb()
    result["cpu_seconds"] = round(cpu_seconds() - cpu_before, 3)
    print("RESULT " + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

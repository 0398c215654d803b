"""How long `dbt build` takes on the large world, and how it grows with the world (prints figures).

    python benchmarks/dbt_bench.py                       # 200,000 work orders: 10 shops x 20,000
    python benchmarks/dbt_bench.py --scaling             # also 1/4 and 1/2 of it: seconds per 1,000 work orders
    python benchmarks/dbt_bench.py --shops 3 --work-orders 2000
    python benchmarks/dbt_bench.py --compare-with 4ac392b   # side by side: that commit's dbt project, then this one

--compare-with REF builds the dbt project as it was at git commit REF and the current one on the same
raw tables, alternately (REF, current, REF, current with --rounds 2), each `dbt build` in a process of
its own, and prints the CPU seconds of each (resource.getrusage of the children: user + system, all
of dbt's and DuckDB's threads) and the ratio current / REF.

The raw tables are written straight from the emulator's truth dump (the connector's raw layout,
as tests/dbt_helpers.py defines it), so the figure is dbt alone, not the sync. The full
`dbt build` is timed: models, the ~200 data tests and the unit tests, through
pipelines.dbt_runner (in-process dbtRunner, as pipelines/run.py runs it). Marts aggregate
children before joining, so time should grow linearly with the work orders: the scaling run
prints seconds per 1,000 work orders at each size, which should stay flat.

    python benchmarks/dbt_bench.py --day-of-change       # a full build, one emulated day, then
                                                          # an incremental build against a full one

`--day-of-change` measures the incremental models (dbt_project/macros/incremental.sql): after the
first build, the emulator's clock moves one day (its activity: new and progressed work orders,
payments, refunds, bulk edits, hard deletes) and the raw tables change as a sync and the delete
reconciliation change them (each changed record and its children replaced under a newer
_dlt_load_id; deleted ones marked, with a row in _autosync_delete_marks). Then `dbt build` runs
incrementally and `dbt build --full-refresh` runs on the same raw data into another schema; every
table of the two is compared value for value. CPU is process CPU (resource.getrusage: dbt runs
in-process and DuckDB's threads are in the same process), one dbt thread so that the CPU spent
inside each SQL statement can be told apart: "SQL" is the CPU inside the adapter's queries, per
node; "dbt fixed" is the rest (compiling, the ~320 nodes' bookkeeping, the metadata queries'
Python side). Each schema keeps its dbt work dir across its builds, so the measured builds reuse
dbt's parse as every scheduled run after the first does; the parse from scratch is measured apart.
"Engine" is DuckDB's execution alone, inside the cursor's execute.

    python benchmarks/dbt_bench.py --day-of-change --dir /tmp/day     # keeps the world and its day
    python benchmarks/dbt_bench.py --day-of-change --dir /tmp/day --reuse   # a minute: same world, same day
    DBT_BENCH_STATEMENTS=/tmp/statements python benchmarks/dbt_bench.py --day-of-change --dir /tmp/day --reuse

The last prints every statement of the six incremental models with its CPU, and writes each to
that folder (to EXPLAIN ANALYZE it on the kept DuckDB file); the writing adds to the adapter-call
figures of that run, not to DuckDB's.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # dbt_helpers: the raw-table layout shared with the dbt tests

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

import dbt_helpers  # noqa: E402 - after the path above

MAIN_MARTS = ("fct_revenue_daily", "fct_technician_throughput_weekly", "fct_inspection_approval_monthly")


def measure_dbt_build(duckdb_path: str, dataset: str = "autosync_raw", model_schema: str = "autosync",
                      extra_args: Optional[list] = None) -> Dict[str, Any]:
    """Time one `dbt build` on a DuckDB file whose raw tables are in `dataset`."""
    from pipelines.dbt_runner import DbtTarget, invoke_dbt

    with tempfile.TemporaryDirectory(prefix="dbt-bench-") as work_dir:
        cpu, began = time.process_time(), time.perf_counter()
        result = invoke_dbt(DbtTarget.duckdb(duckdb_path, dataset, model_schema, work_dir=work_dir), "build",
                            extra_args, raise_on_failure=False)
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    import duckdb
    with contextlib.closing(duckdb.connect(str(duckdb_path), read_only=True)) as con:
        rows = {mart: con.execute(f"select count(*) from {model_schema}.{mart}").fetchone()[0]
                for mart in MAIN_MARTS + ("fct_work_orders", "fct_line_items")} if result.success else {}
    return {"seconds": round(seconds, 2), "cpu_seconds_in_process": round(cpu_seconds, 2),
            "success": result.success, "summary": result.summary, "counts": result.counts,
            "failures": result.failures[:5], "mart_rows": rows}


def load_world(duckdb_path: str, shops: int, work_orders_per_shop: int, seed: int = 42,
               dataset: str = "autosync_raw", keep_core: bool = False) -> Dict[str, Any]:
    """Generate the emulator's world (no HTTP) and write its raw tables with Arrow (row-by-row
    inserts of a million rows would take longer than the build being measured)."""
    import duckdb
    import orjson

    import dbt_helpers as h
    from autosync_emulator import EmulatorCore

    began = time.perf_counter()
    core = EmulatorCore(seed=seed, shops=shops, work_orders=work_orders_per_shop)
    truth = orjson.loads(core.truth_bytes())
    generated = time.perf_counter() - began
    rows = h.flatten_truth(truth)

    total = 0
    with contextlib.closing(duckdb.connect(str(duckdb_path))) as con:
        con.execute(f"create schema if not exists {dataset}")
        for table, columns in h.RAW_TABLES.items():
            ddl = ", ".join(f'"{c}" {k}' for c, k in columns.items())
            con.execute(f'drop table if exists {dataset}."{table}"')
            con.execute(f'create table {dataset}."{table}" ({ddl})')
            _insert_rows(con, dataset, table, rows[table])
            total += len(rows[table])
    world = {"work_orders": len(truth["objects"]["work_orders"]), "raw_rows": total,
             "generate_seconds": round(generated, 1), "load_seconds": round(time.perf_counter() - began - generated, 1)}
    if keep_core:
        world.update(core=core)
    return world


def _insert_rows(con: Any, dataset: str, table: str, rows: list) -> None:
    import pyarrow as pa

    import dbt_helpers as h
    arrow_types = {h.ID: pa.int64(), h.TXT: pa.string(), h.BOOL: pa.bool_(), h.TS: pa.timestamp("us", tz="UTC")}

    def arrow_type(kind: str) -> Any:
        decimal = h.decimal_of(kind)
        return pa.decimal128(*decimal) if decimal else arrow_types[kind]

    def convert(value: Any, kind: str) -> Any:
        if value is None:
            return None
        decimal = h.decimal_of(kind)
        if decimal:
            return Decimal(str(value)).quantize(Decimal(1).scaleb(-decimal[1]))
        if kind == h.TS and isinstance(value, str):
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if kind == h.TXT:
            return str(value)
        if kind == h.ID:
            return int(value)
        return value

    columns = h.RAW_TABLES[table]
    arrays = {c: pa.array([convert(r.get(c), kind) for r in rows], type=arrow_type(kind)) for c, kind in columns.items()}
    arrow_table = pa.table(arrays)  # noqa: F841 - read by name in the SQL below
    con.execute(f'insert into {dataset}."{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
                f'select * from arrow_table')


# -- one emulated day of change ------------------------------------------------------------
def apply_a_day_of_change(core: Any, duckdb_path: str, dataset: str = "autosync_raw",
                          seconds: int = 86400) -> Dict[str, Any]:
    """Move the emulator one day and change the raw tables as the connector's sync and the delete
    reconciliation would: every record updated in that day (a change always moves updated_at) is
    replaced, children included, under a newer load id; records deleted at the source are marked
    and traced in _autosync_delete_marks (a record created and deleted within the day was never
    loaded: its mark changes nothing)."""
    import duckdb
    import orjson

    import dbt_helpers as h
    import source_helpers
    from dlt.common.storages.load_package import create_load_id

    day_began = dt.datetime.fromtimestamp(core.store.clock, tz=dt.timezone.utc)
    events = core.advance(seconds)["events"]
    after = orjson.loads(core.truth_bytes())
    load_id = create_load_id()
    changed = {resource: [o for o in after["objects"].get(resource, [])
                          if dt.datetime.fromisoformat(o["updated_at"].replace("Z", "+00:00")) > day_began]
               for resource in source_helpers.RESOURCES}
    deleted = {resource: sorted(ids) for resource, ids in after.get("deleted", {}).items()}
    del after
    rows = h.flatten_truth({"objects": changed}, load_id=load_id)
    marked_at = dt.datetime.now(dt.timezone.utc)
    with contextlib.closing(duckdb.connect(str(duckdb_path))) as con:
        for resource, objects in changed.items():
            if not objects:
                continue
            ids = ", ".join(str(int(o["id"])) for o in objects)
            con.execute(f'delete from {dataset}."{resource}" where id in ({ids})')
            for child in source_helpers.CHILD_TABLES.get(resource, ()):
                con.execute(f'delete from {dataset}."{child.table}" '
                            f'where "{source_helpers.ROOT_KEYS[resource]}" in ({ids})')
            for table in (resource, *(child.table for child in source_helpers.CHILD_TABLES.get(resource, ()))):
                _insert_rows(con, dataset, table, rows[table])
        con.execute(f"create table if not exists {dataset}._autosync_delete_marks (table_name varchar, id bigint, "
                    f"is_deleted boolean, marked_at timestamp with time zone, mark_id varchar)")
        mark_id = create_load_id()
        for resource, ids in deleted.items():
            if not ids:
                continue
            listed = ", ".join(str(int(i)) for i in ids)
            con.execute(f'update {dataset}."{resource}" set _autosync_deleted_at = ? where id in ({listed})', [marked_at])
            con.executemany(f"insert into {dataset}._autosync_delete_marks values (?, ?, true, ?, ?)",
                            [[resource, int(i), marked_at, mark_id] for i in ids])
    return {"events": events, "changed_records": {r: len(o) for r, o in changed.items() if o},
            "deleted_records": {r: len(i) for r, i in deleted.items() if i}}


class SqlCpu:
    """CPU seconds spent inside the adapter's SQL statements, per dbt node (one dbt thread: the
    process CPU consumed while a statement runs is that statement's, DuckDB's threads included).

    Two figures: `by_node` is the whole adapter call (dbt's add_query: its logging and events, the
    cursor, DuckDB's execution); `engine_by_node` is DuckDB's execution alone (the cursor's execute),
    so a statement's cost to the database is told apart from dbt's cost per statement."""

    def __init__(self) -> None:
        self.by_node: Dict[str, float] = {}
        self.engine_by_node: Dict[str, float] = {}
        self.statements_by_node: Dict[str, int] = {}
        self.statements = 0

    @staticmethod
    def _node() -> str:
        from dbt_common.events.contextvars import get_node_info

        return (get_node_info() or {}).get("unique_id") or "(no node)"

    @contextlib.contextmanager
    def installed(self):
        from dbt.adapters.duckdb.environments.local import DuckDBCursorWrapper
        from dbt.adapters.sql.connections import SQLConnectionManager

        original, original_execute = SQLConnectionManager.add_query, DuckDBCursorWrapper.execute
        meter = self

        def add_query(manager, sql, *args, **kwargs):
            began = _cpu()
            try:
                return original(manager, sql, *args, **kwargs)
            finally:
                node = meter._node()
                meter.by_node[node] = meter.by_node.get(node, 0.0) + _cpu() - began
                meter.statements_by_node[node] = meter.statements_by_node.get(node, 0) + 1
                meter.statements += 1

        def execute(cursor, sql, bindings=None):
            began = _cpu()
            try:
                return original_execute(cursor, sql, bindings)
            finally:
                node = meter._node()
                meter.engine_by_node[node] = meter.engine_by_node.get(node, 0.0) + _cpu() - began
                if os.environ.get("DBT_BENCH_STATEMENTS") and node.split(".")[-1] in INCREMENTAL_MODELS:
                    print(f"    {_cpu() - began:7.3f} {node.split('.')[-1]}: {' '.join(sql.split())[:400]}", flush=True)
                    Path(os.environ["DBT_BENCH_STATEMENTS"], f"{meter.statements}_{node.split('.')[-1]}.sql").write_text(sql)

        SQLConnectionManager.add_query, DuckDBCursorWrapper.execute = add_query, execute
        try:
            yield self
        finally:
            SQLConnectionManager.add_query, DuckDBCursorWrapper.execute = original, original_execute

    def total(self, prefix: str = "", engine: bool = False) -> float:
        return sum(v for k, v in (self.engine_by_node if engine else self.by_node).items() if k.startswith(prefix))

    def of_models(self, names: tuple, engine: bool = False) -> float:
        return sum(v for k, v in (self.engine_by_node if engine else self.by_node).items()
                   if k.split(".")[-1] in names and k.startswith("model."))


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


INCREMENTAL_MODELS = dbt_helpers.INCREMENTAL_MODELS


def cold_parse(duckdb_path: str, model_schema: str, work_dir: str) -> float:
    """`dbt parse` in an empty work dir: CPU seconds of a parse from scratch. It leaves dbt's
    partial-parse state in `work_dir`, as the first build of a pipeline leaves it in the pipeline's
    dbt work dir (pipelines/dbt_runner.py), which every later run of that pipeline reuses."""
    from pipelines.dbt_runner import DbtTarget, invoke_dbt

    cpu = _cpu()
    invoke_dbt(DbtTarget.duckdb(duckdb_path, "autosync_raw", model_schema, work_dir=work_dir), "parse")
    return round(_cpu() - cpu, 2)


def measured_build(duckdb_path: str, model_schema: str, work_dir: str, extra_args: Optional[list] = None) -> Dict[str, Any]:
    """`dbt build` in-process with one thread; CPU of the whole build and of each node's SQL. dbt
    reuses the parse an earlier command left in `work_dir`, as a scheduled run does (the pipeline
    keeps its dbt work dir)."""
    from pipelines.dbt_runner import DbtTarget, invoke_dbt

    meter = SqlCpu()
    with meter.installed():
        cpu, began = _cpu(), time.perf_counter()
        result = invoke_dbt(DbtTarget.duckdb(duckdb_path, "autosync_raw", model_schema, work_dir=work_dir), "build",
                            ["--threads", "1", *(extra_args or [])], raise_on_failure=False)
        cpu, seconds = _cpu() - cpu, time.perf_counter() - began
    nodes = sum(result.counts.values())
    sql = meter.total()
    return {"success": result.success, "summary": result.summary, "failures": result.failures[:5],
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "sql_cpu_seconds": round(sql, 2),
            "incremental_models_sql_cpu_seconds": round(meter.of_models(INCREMENTAL_MODELS), 3),
            "models_sql_cpu_seconds": round(meter.total("model."), 2),
            "tests_sql_cpu_seconds": round(meter.total("test.") + meter.total("unit_test."), 2),
            "dbt_fixed_cpu_seconds": round(cpu - sql, 2), "nodes": nodes,
            "dbt_fixed_cpu_ms_per_node": round(1000 * (cpu - sql) / max(nodes, 1), 1),
            "per_model_sql_cpu": {m: round(meter.by_node.get(f"model.autosync.{m}", 0.0), 3) for m in INCREMENTAL_MODELS},
            "incremental_models_engine_cpu_seconds": round(meter.of_models(INCREMENTAL_MODELS, engine=True), 3),
            "per_model_engine_cpu": {m: round(meter.engine_by_node.get(f"model.autosync.{m}", 0.0), 3)
                                     for m in INCREMENTAL_MODELS},
            "statements_per_model": {m: meter.statements_by_node.get(f"model.autosync.{m}", 0) for m in INCREMENTAL_MODELS},
            "costliest_nodes_sql_cpu": dict(sorted(((k, round(v, 3)) for k, v in meter.by_node.items()),
                                                   key=lambda kv: -kv[1])[:40])}


def compare_schemas(duckdb_path: str, left: str, right: str) -> Dict[str, Any]:
    """Every table of `right` against the same table of `left`, row for row (EXCEPT ALL both ways).
    Floating-point columns (rates, averages) are compared to 9 decimals: DuckDB's parallel sums
    may add in another order."""
    import duckdb

    differences: Dict[str, int] = {}
    with contextlib.closing(duckdb.connect(str(duckdb_path), read_only=True)) as con:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE' "
            "and table_name <> 'autosync_incremental_state' order by 1", [right]).fetchall()]
        for table in tables:
            columns = con.execute("select column_name, data_type from information_schema.columns "
                                  "where table_schema = ? and table_name = ? order by ordinal_position",
                                  [right, table]).fetchall()
            select = ", ".join(f'round("{c}", 9)' if t in ("DOUBLE", "FLOAT") else f'"{c}"' for c, t in columns)
            differing = 0
            for a, b in ((left, right), (right, left)):
                differing += con.execute(f'select count(*) from (select {select} from {a}."{table}" '
                                         f'except all select {select} from {b}."{table}")').fetchone()[0]
            differences[table] = differing
    return {"tables_compared": len(differences), "rows_differing": {t: n for t, n in differences.items() if n}}


def bench_day_of_change(shops: int, work_orders_per_shop: int, directory: Path, reuse: bool = False) -> Dict[str, Any]:
    """With reuse, the world and its day come from an earlier run in `directory` (the raw tables before
    and after the day are kept there), so a change to the dbt project is measured in minutes, not ten."""
    import shutil

    path = directory / f"dbt_bench_day_{shops}x{work_orders_per_shop}.duckdb"
    before, after = path.with_suffix(".before.duckdb"), path.with_suffix(".after.duckdb")
    facts = path.with_suffix(".json")
    if path.exists():
        path.unlink()
    # One dbt work dir per schema, kept across that schema's builds, as a pipeline keeps its own: the
    # builds measured below reuse dbt's parse (partial parsing), as every scheduled run after the
    # first does. The parse from scratch is measured apart (`cold_parse_cpu_seconds`).
    work_dirs = {schema: tempfile.mkdtemp(prefix=f"dbt-bench-{schema}-") for schema in ("autosync", "autosync_full")}
    try:
        if reuse and before.exists() and after.exists() and facts.exists():
            shutil.copyfile(before, path)
            world, day = json.loads(facts.read_text())
            first = measured_build(str(path), "autosync", work_dirs["autosync"])
            _copy_raw_tables(after, path)
        else:
            world = load_world(str(path), shops, work_orders_per_shop, keep_core=True)
            core = world.pop("core")
            shutil.copyfile(path, before)
            first = measured_build(str(path), "autosync", work_dirs["autosync"])
            day = apply_a_day_of_change(core, str(path))
            after.unlink(missing_ok=True)
            _copy_raw_tables(path, after)
            facts.write_text(json.dumps([world, day], default=str))
        incremental = measured_build(str(path), "autosync", work_dirs["autosync"])
        cold = cold_parse(str(path), "autosync_full", work_dirs["autosync_full"])
        full = measured_build(str(path), "autosync_full", work_dirs["autosync_full"], ["--full-refresh"])
    finally:
        for work_dir in work_dirs.values():
            shutil.rmtree(work_dir, ignore_errors=True)
    return {**world, "day": day, "first_build": first, "incremental": incremental, "full": full,
            "cold_parse_cpu_seconds": cold, "comparison": compare_schemas(str(path), "autosync", "autosync_full")}


def _copy_raw_tables(source: Path, target: Path, dataset: str = "autosync_raw") -> None:
    """Replace target's raw tables with source's (every table of the dataset, the delete marks included)."""
    import duckdb

    with contextlib.closing(duckdb.connect(str(target))) as con:
        con.execute(f"attach '{source}' as source_db (read_only)")
        tables = [r[0] for r in con.execute("select table_name from duckdb_tables() where database_name = 'source_db' "
                                            "and schema_name = ?", [dataset]).fetchall()]
        con.execute(f"create schema if not exists {dataset}")
        for table in tables:
            con.execute(f'create or replace table {dataset}."{table}" as select * from source_db.{dataset}."{table}"')
        con.execute("detach source_db")


def _print_day_of_change(r: Dict[str, Any]) -> None:
    inc, full = r["incremental"], r["full"]
    print(f"{r['work_orders']:,} work orders, {r['raw_rows']:,} raw rows; one day: {r['day']['events']:,} events, "
          f"changed {r['day']['changed_records']}, deleted {r['day']['deleted_records']}")
    for name, b in (("full build", full), ("incremental", inc)):
        print(f"  {name:<12} {b['cpu_seconds']:7.2f} CPU s (wall {b['seconds']:.1f} s): SQL {b['sql_cpu_seconds']:.2f} "
              f"(models {b['models_sql_cpu_seconds']:.2f}, tests {b['tests_sql_cpu_seconds']:.2f}), "
              f"dbt fixed {b['dbt_fixed_cpu_seconds']:.2f} = {b['dbt_fixed_cpu_ms_per_node']:.1f} ms x {b['nodes']} nodes; "
              f"{b['summary']}")
    print(f"  both builds reuse dbt's parse, as a scheduled run does (the pipeline keeps its dbt work dir); "
          f"a parse from scratch costs {r['cold_parse_cpu_seconds']:.2f} CPU s more (first run, or a changed project)")
    print("  the six incremental models' SQL CPU: "
          + ", ".join(f"{m} {inc['per_model_sql_cpu'][m]:.3f}/{full['per_model_sql_cpu'][m]:.3f}" for m in INCREMENTAL_MODELS))
    print("  their DuckDB execution alone (engine CPU), incremental/full: "
          + ", ".join(f"{m} {inc['per_model_engine_cpu'][m]:.3f}/{full['per_model_engine_cpu'][m]:.3f}"
                      for m in INCREMENTAL_MODELS)
          + f"; statements per model (incremental): {inc['statements_per_model']}")
    for name, b in (("full build", full), ("incremental", inc)):
        print(f"  costliest nodes' SQL CPU, {name}: "
              + ", ".join(f"{k.split('.', 2)[-1][:60]} {v:.2f}" for k, v in list(b["costliest_nodes_sql_cpu"].items())[:12]))
    ratio_engine = inc["incremental_models_engine_cpu_seconds"] / max(full["incremental_models_engine_cpu_seconds"], 1e-9)
    print(f"  the six models' DuckDB execution: x{ratio_engine:.3f} of the full build's")
    ratio_sql = inc["incremental_models_sql_cpu_seconds"] / max(full["incremental_models_sql_cpu_seconds"], 1e-9)
    ratio_all = inc["cpu_seconds"] / max(full["cpu_seconds"], 1e-9)
    print(f"  incremental / full: the six models' SQL x{ratio_sql:.3f} (goal <= 0.1), whole build x{ratio_all:.2f} "
          f"(goal <= 0.6); tables compared {r['comparison']['tables_compared']}, rows differing "
          f"{r['comparison']['rows_differing'] or 'none'}", flush=True)


def bench(shops: int, work_orders_per_shop: int, directory: Path, reuse: bool = False) -> Dict[str, Any]:
    path = directory / f"dbt_bench_{shops}x{work_orders_per_shop}.duckdb"
    if reuse and path.exists():
        world = _describe(path)
    else:
        if path.exists():
            path.unlink()
        world = load_world(str(path), shops, work_orders_per_shop)
    build = measure_dbt_build(str(path))
    per_1000 = 1000 / world["work_orders"]
    return {**world, **build, "seconds_per_1000_work_orders": round(build["seconds"] * per_1000, 3),
            "cpu_seconds_per_1000_work_orders": round(build["cpu_seconds_in_process"] * per_1000, 3)}


def _describe(path: Path, dataset: str = "autosync_raw") -> Dict[str, Any]:
    import duckdb

    import dbt_helpers as h
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        work_orders = con.execute(f"select count(*) from {dataset}.work_orders").fetchone()[0]
        rows = sum(con.execute(f'select count(*) from {dataset}."{t}"').fetchone()[0] for t in h.RAW_TABLES)
    return {"work_orders": work_orders, "raw_rows": rows, "reused": True}


def build_cpu_seconds(project_dir: Path, duckdb_path: str, model_schema: str, work_dir: Path,
                      dataset: str = "autosync_raw") -> Dict[str, Any]:
    """One `dbt build` of `project_dir` in a child process: its CPU seconds (getrusage of the children,
    user + system) and wall seconds. Builds into model_schema so two projects share the raw tables."""
    import resource
    import subprocess

    from pipelines.dbt_runner import DbtTarget, dbt_command

    target = DbtTarget.duckdb(duckdb_path, dataset, model_schema, work_dir=str(work_dir))
    args, env = dbt_command(target, "build")
    args = [str(project_dir) if a == str(ROOT / "dbt_project") else a for a in args]  # --project/--profiles-dir
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from dbt.cli.main import cli; cli()", *args],
                          env={**os.environ, **env}, capture_output=True, text=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_seconds": round(cpu, 2), "seconds": round(wall, 2), "returncode": done.returncode,
            "tail": done.stdout[-1500:] + done.stderr[-1500:]}


def compare(ref: str, shops: int, work_orders_per_shop: int, directory: Path, rounds: int, reuse: bool) -> int:
    """The dbt project at git commit `ref` against the current one, on the same raw tables."""
    import subprocess
    import tarfile

    path = directory / f"dbt_bench_{shops}x{work_orders_per_shop}.duckdb"
    world = _describe(path) if reuse and path.exists() else load_world(str(path), shops, work_orders_per_shop)
    before_dir = directory / f"dbt_project_{ref}"
    if not before_dir.exists():
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "dbt_project"], capture_output=True, check=True)
        with tarfile.open(fileobj=__import__("io").BytesIO(archive.stdout)) as tar:
            tar.extractall(before_dir, filter="data")
    projects = {ref: before_dir / "dbt_project", "current": ROOT / "dbt_project"}
    print(f"{world['work_orders']:,} work orders, {world['raw_rows']:,} raw rows; dbt build (models, data and unit tests), "
          f"each in its own process, CPU = user + system of the child", flush=True)
    cpu: Dict[str, list] = {name: [] for name in projects}
    for round_ in range(rounds):
        for name, project in projects.items():
            schema = "bench_before" if name == ref else "bench_after"
            r = build_cpu_seconds(project, str(path), schema, directory / f"work_{name}_{round_}")
            if r["returncode"] != 0:
                print(f"{name}: dbt build failed\n{r['tail']}")
                return 1
            cpu[name].append(r["cpu_seconds"])
            print(f"  round {round_ + 1} {name:>10}: {r['cpu_seconds']:7.1f} s CPU, {r['seconds']:7.1f} s wall", flush=True)
    best = {name: min(values) for name, values in cpu.items()}
    print(f"current / {ref}: x{best['current'] / best[ref]:.2f} CPU (best of {rounds} each: "
          f"{best['current']:.1f} s vs {best[ref]:.1f} s)")
    return 0


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", type=int, default=10)
    parser.add_argument("--work-orders", type=int, default=20000, help="per shop")
    parser.add_argument("--scaling", action="store_true", help="also 1/4 and 1/2 of the world")
    parser.add_argument("--dir", default=None, help="where the DuckDB files go (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="keep the raw tables of an earlier run in --dir")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--compare-with", metavar="GIT_REF", help="time that commit's dbt project beside this one")
    parser.add_argument("--rounds", type=int, default=1, help="with --compare-with: builds of each project")
    parser.add_argument("--day-of-change", action="store_true",
                        help="full build, one emulated day of change, incremental build against a full one")
    args = parser.parse_args(argv)
    if args.compare_with:
        with tempfile.TemporaryDirectory(prefix="dbt-bench-") as tmp:
            directory = Path(args.dir) if args.dir else Path(tmp)
            directory.mkdir(parents=True, exist_ok=True)
            return compare(args.compare_with, args.shops, args.work_orders, directory, args.rounds, args.reuse)

    if args.day_of_change:
        with tempfile.TemporaryDirectory(prefix="dbt-bench-") as tmp:
            directory = Path(args.dir) if args.dir else Path(tmp)
            directory.mkdir(parents=True, exist_ok=True)
            result = bench_day_of_change(args.shops, args.work_orders, directory, args.reuse)
        print(json.dumps(result, indent=2, default=str)) if args.json else _print_day_of_change(result)
        ok = result["incremental"]["success"] and result["full"]["success"] and not result["comparison"]["rows_differing"]
        return 0 if ok else 1

    sizes = [args.work_orders // 4, args.work_orders // 2, args.work_orders] if args.scaling else [args.work_orders]
    results = []
    with tempfile.TemporaryDirectory(prefix="dbt-bench-") as tmp:
        directory = Path(args.dir) if args.dir else Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            r = bench(args.shops, size, directory, args.reuse)
            results.append(r)
            if not args.json:
                print(f"{r['work_orders']:>8,} work orders, {r['raw_rows']:>9,} raw rows: dbt build {r['seconds']:6.1f} s, "
                      f"{r['cpu_seconds_in_process']:6.1f} s CPU ({r['cpu_seconds_per_1000_work_orders']:.3f} CPU s "
                      f"per 1,000 work orders; {r['summary']})", flush=True)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    elif len(results) > 1:
        first, last = results[0], results[-1]
        # CPU time, not wall time: on a shared machine the wall clock measures the neighbours.
        print(f"x{last['work_orders'] / first['work_orders']:.0f} work orders -> "
              f"x{last['cpu_seconds_in_process'] / first['cpu_seconds_in_process']:.2f} CPU time of dbt build "
              f"(linear: x{last['work_orders'] / first['work_orders']:.0f} at most; dbt's fixed cost of parsing and "
              f"~240 nodes makes it less)")
    return 0 if all(r["success"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

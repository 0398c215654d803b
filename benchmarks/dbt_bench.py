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
               dataset: str = "autosync_raw") -> Dict[str, Any]:
    """Generate the emulator's world (no HTTP) and write its raw tables with Arrow (row-by-row
    inserts of a million rows would take longer than the build being measured)."""
    import duckdb
    import orjson
    import pyarrow as pa

    import dbt_helpers as h
    from autosync_emulator import EmulatorCore

    began = time.perf_counter()
    truth = orjson.loads(EmulatorCore(seed=seed, shops=shops, work_orders=work_orders_per_shop).truth_bytes())
    generated = time.perf_counter() - began
    rows = h.flatten_truth(truth)
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

    total = 0
    with contextlib.closing(duckdb.connect(str(duckdb_path))) as con:
        con.execute(f"create schema if not exists {dataset}")
        for table, columns in h.RAW_TABLES.items():
            arrays = {c: pa.array([convert(r.get(c), kind) for r in rows[table]], type=arrow_type(kind))
                      for c, kind in columns.items()}
            arrow_table = pa.table(arrays)  # noqa: F841 - read by name in the SQL below
            ddl = ", ".join(f'"{c}" {k}' for c, k in columns.items())
            con.execute(f'drop table if exists {dataset}."{table}"')
            con.execute(f'create table {dataset}."{table}" ({ddl})')
            con.execute(f'insert into {dataset}."{table}" select * from arrow_table')
            total += len(rows[table])
    return {"work_orders": len(truth["objects"]["work_orders"]), "raw_rows": total,
            "generate_seconds": round(generated, 1), "load_seconds": round(time.perf_counter() - began - generated, 1)}


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
    args = parser.parse_args(argv)
    if args.compare_with:
        with tempfile.TemporaryDirectory(prefix="dbt-bench-") as tmp:
            directory = Path(args.dir) if args.dir else Path(tmp)
            directory.mkdir(parents=True, exist_ok=True)
            return compare(args.compare_with, args.shops, args.work_orders, directory, args.rounds, args.reuse)

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

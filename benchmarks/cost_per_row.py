"""Client CPU per row: the connector against the bare loop (bare_loop.py), side by side in one run.

    python benchmarks/cost_per_row.py                      # the named world: seed 41, 2 shops x 2,500 work orders
    python benchmarks/cost_per_row.py --work-orders 100 --repeat 1   # small, to check it runs
    python benchmarks/cost_per_row.py --profile DIR        # also a cProfile of one connector sync per stage

The emulator runs in its own process with no rate limit; every sync runs in a fresh process
of its own (this file with --worker), alternating connector and bare loop, each into a new
DuckDB file. CPU is the sync process's user + system time from `resource.getrusage` (all its
threads; imports, the modules dlt imports lazily during a sync included, are done before the
clock starts and reported apart), not wall time: on a shared machine load moves wall time far
more than CPU time. The connector runs as pipelines/run.py builds it (DuckDB loading
parquet, the dlt knobs of .dlt/config.toml, read from the repository root) and reports its CPU
per dlt stage (extract, normalize, load run one after another). Peak memory is the sync
process's maximum resident set. Prints medians of --repeat runs and the ratio
connector rows per CPU-second / bare loop rows per CPU-second. Nothing here fails on a figure.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from emulator_process import EmulatorProcess  # noqa: E402

KINDS = ("connector", "bare_loop")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


# ------------------------------------------------------------------------- one measured sync
def run_connector(task: Dict[str, Any]) -> Dict[str, Any]:
    import dlt

    from autosync_source import RequestStats, autosync_source
    from pipelines.run import duckdb_destination

    pipeline = dlt.pipeline(pipeline_name="autosync", destination=duckdb_destination(task["duckdb_path"]),
                            dataset_name="autosync_raw", pipelines_dir=task["pipelines_dir"])
    from autosync_source.connection import ApiSettings, connect, list_shops, selected_endpoints

    stats = RequestStats()
    # the source reads one shop: the shops listed once (as the engine does), one source per shop,
    # all extracted into one package before one normalize and one load
    client = connect(ApiSettings(api_key=task["api_key"], base_url=task["base_url"]), selected_endpoints(None), stats)
    sources = [autosync_source(api_key=task["api_key"], base_url=task["base_url"], request_stats=stats,
                               progress="quiet", shop=row) for row in list_shops(client, stats)]
    profiler = None
    if task.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
    stages: Dict[str, float] = {}
    began, cpu_began = time.perf_counter(), cpu_seconds()
    for stage, step in (("extract", lambda: [pipeline.extract(source) for source in sources]), ("normalize", pipeline.normalize),
                        ("load", pipeline.load)):
        before = cpu_seconds()
        if profiler is not None:
            profiler.enable()
        step()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(Path(task["profile"]) / f"connector_{stage}.prof"))
            profiler = __import__("cProfile").Profile()
        stages[stage] = round(cpu_seconds() - before, 3)
    cpu = cpu_seconds() - cpu_began
    rows = {table: n for table, n in pipeline.last_trace.last_normalize_info.row_counts.items()
            if not table.startswith("_dlt")}
    return {"rows": sum(rows.values()), "rows_by_table": dict(sorted(rows.items())), "cpu_seconds": round(cpu, 3),
            "cpu_by_stage": stages, "seconds": round(time.perf_counter() - began, 3), "requests": stats.requests}


def run_bare_loop(task: Dict[str, Any]) -> Dict[str, Any]:
    import bare_loop

    cpu_began = cpu_seconds()
    result = bare_loop.run(task["base_url"], task["api_key"], task["duckdb_path"])
    result["cpu_seconds"] = round(cpu_seconds() - cpu_began, 3)
    return result


# What a connector sync imports on its way (dlt loads these lazily): imported before its clock
# starts, like everything else it imports, so that the figure is the cost of the rows, not of
# starting a Python process. Their CPU is reported apart (import_cpu_seconds).
CONNECTOR_LAZY_IMPORTS = (
    "numpy", "pandas", "sqlalchemy", "pendulum", "dlt.common.libs.pyarrow", "dlt.common.configuration.plugins",
    "dlt.destinations.impl.duckdb.duck", "dlt.destinations.impl.duckdb.sql_client",
    "dlt.destinations.insert_job_client", "dlt.sources.helpers.requests",
)


def worker(task: Dict[str, Any]) -> None:
    import importlib

    started = cpu_seconds()
    import duckdb  # noqa: F401
    import requests  # noqa: F401

    if task["kind"] == "connector":
        import dlt  # noqa: F401
        import pyarrow  # noqa: F401

        import autosync_source  # noqa: F401
        import pipelines.run  # noqa: F401

        for module in CONNECTOR_LAZY_IMPORTS:
            importlib.import_module(module)
    imports = cpu_seconds() - started
    result = (run_connector if task["kind"] == "connector" else run_bare_loop)(task)
    result["import_cpu_seconds"] = round(imports, 3)
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------- the side-by-side run
def measure(kind: str, emu: EmulatorProcess, workdir: Path, profile: str = "") -> Dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    task = {"kind": kind, "base_url": emu.base_url, "api_key": emu.api_key,
            "duckdb_path": str(workdir / "raw.duckdb"), "pipelines_dir": str(workdir / "pipelines"),
            "profile": profile}
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(task)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"{kind} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def summarize(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    cpu = statistics.median(run["cpu_seconds"] for run in runs)
    rows = runs[0]["rows"]
    summary = {"rows": rows, "cpu_seconds": round(cpu, 2), "rows_per_cpu_second": round(rows / cpu),
               "import_cpu_seconds": round(statistics.median(run["import_cpu_seconds"] for run in runs), 2),
               "peak_rss_mb": statistics.median(run["peak_rss_mb"] for run in runs),
               "wall_seconds": round(statistics.median(run["seconds"] for run in runs), 1),
               "requests": runs[0]["requests"], "runs": runs}
    if "cpu_by_stage" in runs[0]:
        summary["cpu_by_stage"] = {stage: round(statistics.median(run["cpu_by_stage"][stage] for run in runs), 2)
                                   for stage in runs[0]["cpu_by_stage"]}
    return summary


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=41)
    parser.add_argument("--shops", type=int, default=2)
    parser.add_argument("--work-orders", type=int, default=2500, help="per shop")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="", help="a directory: write cProfile stats of one more connector sync per stage")
    parser.add_argument("--out", default="", help="write the figures as JSON here")
    parser.add_argument("--kinds", default=",".join(KINDS), help="which syncs to run (default: both; the ratio needs both)")
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    kinds = [kind for kind in KINDS if kind in args.kinds.split(",")]
    results: Dict[str, List[Dict[str, Any]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="cost_per_row_") as scratch, \
            EmulatorProcess(seed=args.seed, shops=args.shops, work_orders=args.work_orders, rate_limit=0) as emu:
        for repetition in range(args.repeat):
            for kind in kinds:
                result = measure(kind, emu, Path(scratch) / f"{kind}{repetition}")
                print(f"  {kind:<10} run {repetition + 1}: {result['rows']:,} rows, {result['cpu_seconds']:.2f} CPU-s, "
                      f"{result['peak_rss_mb']:.0f} MB peak, {result['seconds']:.1f} s wall", flush=True)
                results[kind].append(result)
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            measure("connector", emu, Path(scratch) / "profile", profile=str(Path(args.profile).resolve()))
            print(f"  cProfile stats per stage written to {args.profile}/connector_<stage>.prof")
    summary = {kind: summarize(runs) for kind, runs in results.items()}
    ratio = None
    if len(summary) == len(KINDS):
        ratio = round(summary["connector"]["rows_per_cpu_second"] / summary["bare_loop"]["rows_per_cpu_second"], 2)
    load = os.getloadavg()
    print(f"\nworld: seed {args.seed}, {args.shops} shops x {args.work_orders:,} work orders, no rate limit; "
          f"median of {args.repeat}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'':<11}{'rows':>9}{'CPU-s':>8}{'rows/CPU-s':>12}{'peak MB':>9}{'wall s':>8}{'requests':>10}"
          f"{'imports CPU-s':>15}")
    for kind, s in summary.items():
        print(f"{kind:<11}{s['rows']:>9,}{s['cpu_seconds']:>8.2f}{s['rows_per_cpu_second']:>12,}"
              f"{s['peak_rss_mb']:>9.0f}{s['wall_seconds']:>8.1f}{s['requests']:>10,}{s['import_cpu_seconds']:>15.2f}")
    if "connector" in summary:
        stages = summary["connector"]["cpu_by_stage"]
        print("connector CPU by stage: " + ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in stages.items()))
    if ratio is not None:
        print(f"connector / bare loop, rows per CPU-second: {ratio}")
    if args.out:
        Path(args.out).write_text(json.dumps({"world": {"seed": args.seed, "shops": args.shops,
                                                        "work_orders": args.work_orders},
                                              "load_average": load, "ratio": ratio, **summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

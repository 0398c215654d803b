"""Benchmarks of issue 6: rate-budget use, request cost, throughput, scaling and dbt, in one go.

    python benchmarks/run.py --dbt-large   # the full run (about 15-18 minutes on 2 cores)
    python benchmarks/run.py               # the same without dbt on the 200k world (about 12 minutes)
    python benchmarks/run.py --smoke       # tiny worlds, one repetition: a check that it still runs
    python benchmarks/run.py --only throughput,scaling --repeat 1

Every sync runs in a process of its own against the emulator in another process (so peak
memory is the sync's alone); every figure is the median of --repeat runs. Prints a table and
writes benchmarks/results/latest.json and latest.md (--out elsewhere). These are measurements,
not tests: nothing here fails because a figure is slow.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import measurements as m  # noqa: E402
from report import render_markdown  # noqa: E402

MEASUREMENTS = ("rate_budget", "request_cost", "throughput", "scaling", "dbt")


def plan_for(args: argparse.Namespace) -> m.Plan:
    if args.smoke:
        plan = m.Plan(repeat=1, rate_shops=2, rate_work_orders=4, rate_limit=10, rate_window_seconds=1.0,
                      cost_shops=2, cost_work_orders=10, throughput_shops=2, throughput_work_orders=40,
                      memory_work_orders={"connector": [10]}, scaling_shops=[1, 2], scaling_work_orders=5, dbt_repeat=1,
                      approaches=["connector", "connector_dlt_defaults", "rest_api", "floor"],
                      dbt_args=["--select", "stg_autosync__shops", "--indirect-selection", "cautious"])
    else:
        # Real sandbox pace (300 a minute = 25 per 5 s) on 5 s windows, so a run spans many windows
        # in under a minute; four shops share the key.
        # Peak memory: the connector on dlt defaults at a third of the main world, as shipped also at
        # twice it (a world well past dlt's buffers, where memory should have stopped growing).
        plan = m.Plan(repeat=3, rate_shops=4, rate_work_orders=20, rate_limit=25, rate_window_seconds=5.0,
                      cost_shops=4, cost_work_orders=500, throughput_shops=4, throughput_work_orders=1500,
                      memory_work_orders={"connector_dlt_defaults": [500], "connector": [500, 3000]},
                      scaling_shops=[1, 2, 4, 8], scaling_work_orders=300,
                      dbt_repeat=3, approaches=["connector", "connector_dlt_defaults", "rest_api", "floor"])
    if args.repeat:
        plan.repeat = args.repeat
    if args.work_orders:
        plan.throughput_work_orders = args.work_orders
    plan.keep_dirs = args.keep
    plan.profile = args.profile
    return plan


def machine() -> Dict[str, Any]:
    memory_gb = None
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
            memory_gb = round(kib / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        pass
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    import dlt
    import duckdb

    return {"arch": platform.machine(), "cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb,
            "python": platform.python_version(), "dlt": dlt.__version__, "duckdb": duckdb.__version__,
            "load_average_at_start": [round(x, 2) for x in load] if load else None}


def _git_commit() -> Optional[str]:
    import subprocess

    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "autosync_source", "autosync_emulator",
                                "pipelines", "dbt_project", "benchmarks"], cwd=HERE.parent, capture_output=True, text=True)
    except OSError:
        return None
    commit = done.stdout.strip() or None
    return f"{commit} (with uncommitted changes)" if commit and dirty.stdout.strip() else commit


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny worlds, one repetition (CI)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(MEASUREMENTS)}")
    parser.add_argument("--repeat", type=int, help="runs per figure (median); default 3, smoke 1")
    parser.add_argument("--work-orders", type=int, help="work orders per shop of the throughput world (4 shops; default 1500)")
    parser.add_argument("--dbt-large", action="store_true",
                        help="also time dbt build on the 200k-work-order world (benchmarks/dbt_bench.py; a few minutes)")
    parser.add_argument("--profile", action="store_true", help="also profile one connector run with pyinstrument")
    parser.add_argument("--out", help="directory for latest.json and latest.md (default benchmarks/results)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary pipelines and DuckDB files")
    args = parser.parse_args(argv)

    only = [name.strip() for name in args.only.split(",")] if args.only else list(MEASUREMENTS)
    unknown = sorted(set(only) - set(MEASUREMENTS))
    if unknown:
        parser.error(f"unknown measurement(s) {unknown}; choose among {', '.join(MEASUREMENTS)}")
    plan = plan_for(args)
    out_dir = Path(args.out) if args.out else HERE / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    plan.results_dir = out_dir

    started = time.monotonic()
    results: Dict[str, Any] = {
        "mode": "smoke" if args.smoke else "full",
        "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "commit": _git_commit(),
        "emulator_dir": os.environ.get("AUTOSYNC_BENCH_EMULATOR_DIR") or "this checkout",
        "repeat": plan.repeat,
        "measurements": {},
    }
    work = m.Workdir(keep=plan.keep_dirs)
    try:
        _measure(results, plan, work, only, args)
    except RuntimeError as failed:  # a sync or the emulator failed: its stderr tail says why
        print(f"error: {failed}", file=sys.stderr)
        return 1
    finally:
        work.close()
        if plan.keep_dirs:
            print(f"kept the run directories under {work.root}", file=sys.stderr)
    results["duration_seconds"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    markdown = render_markdown(results)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out_dir / "latest.md").write_text(markdown)
    print(markdown)
    print(f"written: {out_dir / 'latest.json'}, {out_dir / 'latest.md'}", file=sys.stderr)
    return 0


def _measure(results: Dict[str, Any], plan: m.Plan, work: m.Workdir, only: List[str],
             args: argparse.Namespace) -> None:
    if "rate_budget" in only:
        results["measurements"]["rate_budget"] = m.measure_rate_budget(plan, work)
    if "request_cost" in only:
        results["measurements"]["request_cost"] = m.measure_request_cost(plan, work)
    if "throughput" in only or "dbt" in only:
        throughput, dbt = m.measure_throughput(plan, work, with_dbt="dbt" in only)
        if "throughput" in only:
            results["measurements"]["throughput"] = throughput
        if "dbt" in only:
            if args.dbt_large:
                dbt["large_world"] = m.measure_dbt_large(plan)
            results["measurements"]["dbt"] = dbt
    if "scaling" in only:
        results["measurements"]["scaling"] = m.measure_scaling(plan, work)


if __name__ == "__main__":
    sys.exit(main())

"""The five measurements of issue 6. Each returns a dict of figures (medians over `repeat` runs)
plus the raw runs, and says for every goal whether it is met.

One coherent thing, over 400 lines: the measurements share one plan, one worker runner, one way
to take medians and to state a goal.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from emulator_process import EmulatorProcess

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "worker.py"
PAGE_SIZE = 100
SHOP_RESOURCES = ("employees", "customers", "vehicles", "work_orders", "payments", "inspections",
                  "appointments", "inventory")
DETAIL_RESOURCES = ("work_orders", "inspections")  # list rows are summaries (docs/autosync-api.md)

# dlt's own defaults, against the knobs the project ships in .dlt/config.toml (workers run with
# the repository as their working directory, so dlt reads that file): what a user who writes the
# ten-minute version gets, and what the connector gets without its tuning.
DLT_DEFAULT_ENV = {
    "DATA_WRITER__BUFFER_MAX_ITEMS": "5000",
    "LOAD__WORKERS": "20",
}


@dataclass
class Plan:
    """World sizes and repetitions of one benchmark run (full or smoke)."""

    repeat: int
    rate_shops: int
    rate_work_orders: int
    rate_limit: int
    rate_window_seconds: float
    cost_shops: int
    cost_work_orders: int
    throughput_shops: int
    throughput_work_orders: int  # per shop: the main world
    memory_work_orders: Dict[str, List[int]]  # approach -> per-shop sizes besides the main world
    scaling_shops: List[int]
    scaling_work_orders: int  # per shop
    dbt_repeat: int
    approaches: Optional[List[str]] = None  # default: all of APPROACHES
    dbt_args: Optional[List[str]] = None  # e.g. a --select to keep the smoke run short
    changed_share: float = 0.01
    results_dir: Optional[Path] = None
    keep_dirs: bool = False
    profile: bool = False
    only: Optional[List[str]] = None
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True))


class Workdir:
    def __init__(self, keep: bool) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="autosync-bench-"))
        self.keep = keep
        self._n = 0

    def new(self, label: str) -> Path:
        self._n += 1
        path = self.root / f"{self._n:03d}-{label}"
        path.mkdir(parents=True)
        return path

    def close(self) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


def median(values: List[float]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def run_worker(kind: str, emu: EmulatorProcess, workdir: Path, env: Optional[Dict[str, str]] = None,
               **task: Any) -> Dict[str, Any]:
    """One measured run in a fresh process; the emulator's request log is read around it."""
    task = {"kind": kind, "base_url": emu.base_url, "api_key": emu.api_key,
            "duckdb_path": str(workdir / "warehouse.duckdb"), "pipelines_dir": str(workdir / "pipelines"), **task}
    child_env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                 **(env or {})}
    if kind != "dbt":
        emu.reset_request_log()
    began = time.perf_counter()
    done = subprocess.run([sys.executable, str(WORKER), json.dumps(task)], cwd=ROOT, env=child_env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - began
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} run failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["process_seconds"] = wall
    if kind != "dbt":
        log = emu.request_log()
        result["served_requests"] = log["total"]
        result["served_rate_limited"] = log["rate_limited"]
        if result.get("rows") and result.get("seconds"):
            result["rows_per_second"] = result["rows"] / result["seconds"]
    return result


def goal(met: Optional[bool], text: str, shortfall: str = "") -> Dict[str, Any]:
    return {"text": text, "met": met, "shortfall": shortfall}


# ---------------------------------------------------------------------------------- 1. rate budget
class WindowSampler:
    """Reads the emulator's request log at every rate-window boundary (windows are aligned to
    multiples of the window length in epoch seconds, as the emulator's limiter aligns them)."""

    def __init__(self, emu: EmulatorProcess, window: float) -> None:
        self.emu, self.window = emu, window
        self.samples: List[tuple] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            boundary = (math.floor(time.time() / self.window) + 1) * self.window
            if self._stop.wait(max(0.0, boundary - time.time())):
                return
            log = self.emu.request_log()
            self.samples.append((boundary, log["total"] - log["rate_limited"], log["rate_limited"]))

    def __enter__(self) -> "WindowSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def full_windows(self, start: float, end: float) -> List[Dict[str, Any]]:
        windows = []
        for (b0, served0, limited0), (b1, served1, limited1) in zip(self.samples, self.samples[1:]):
            if b0 >= start and b1 <= end:
                windows.append({"window_start": b0, "served": served1 - served0, "rate_limited": limited1 - limited0})
        return windows


def measure_rate_budget(plan: Plan, work: Workdir) -> Dict[str, Any]:
    runs = []
    with EmulatorProcess(shops=plan.rate_shops, work_orders=plan.rate_work_orders, rate_limit=plan.rate_limit,
                         rate_window_seconds=plan.rate_window_seconds) as emu:
        for i in range(plan.repeat):
            plan.log(f"[rate budget] run {i + 1}/{plan.repeat}: {plan.rate_shops} shops, one key, "
                     f"{plan.rate_limit} requests per {plan.rate_window_seconds:g} s")
            with WindowSampler(emu, plan.rate_window_seconds) as sampler:
                result = run_worker("connector", emu, work.new("rate"))
            windows = sampler.full_windows(result["run_started_epoch"], result["extract_finished_epoch"])
            uses = [w["served"] / plan.rate_limit for w in windows]
            runs.append({
                "full_windows": len(windows),
                "budget_use_per_window": [round(u, 4) for u in uses],
                "budget_use_mean": statistics.mean(uses) if uses else None,
                "budget_use_min": min(uses) if uses else None,
                "rate_limited_429": result["served_rate_limited"],
                "rate_limited_seen_by_connector": result["rate_limited"],
                "requests": result["served_requests"],
                "extract_seconds": result["extract_finished_epoch"] - result["run_started_epoch"],
            })
    use = median([r["budget_use_mean"] for r in runs])
    use_min = median([r["budget_use_min"] for r in runs])
    rate_limited = median([r["rate_limited_429"] for r in runs])
    return {
        "settings": {"shops": plan.rate_shops, "work_orders_per_shop": plan.rate_work_orders,
                     "rate_limit": plan.rate_limit, "rate_window_seconds": plan.rate_window_seconds},
        "budget_use": use,
        "budget_use_worst_window": use_min,
        "rate_limited_429": rate_limited,
        "full_windows": median([r["full_windows"] for r in runs]),
        "runs": runs,
        "goals": {
            "budget_use": goal(None if use is None else use >= 0.95, ">= 95% of the budget used",
                               "" if use is None or use >= 0.95 else f"{(0.95 - use) * 100:.1f} points short"),
            "no_429": goal(None if rate_limited is None else rate_limited == 0, "zero 429s",
                           "" if not rate_limited else f"{rate_limited:g} 429s met"),
        },
    }


# ---------------------------------------------------------------------------------- 2. request cost
def _records(truth: Dict[str, Any]) -> Dict[str, Dict[int, tuple]]:
    return {name: {row["id"]: (row.get("shop_id", row["id"]), row.get("updated_at")) for row in rows}
            for name, rows in truth["objects"].items()}


def request_floor(records: Dict[str, Dict[int, tuple]], only_ids: Optional[Dict[str, set]] = None) -> int:
    """Fewest requests that can read these records: the shop list, per shop and resource
    ceil(n/100) list pages (at least one: an empty list still has to be asked), and one detail
    call per work order and inspection (their list rows lack the children)."""
    shop_ids = sorted(records["shops"])
    floor = 1
    for name in SHOP_RESOURCES:
        per_shop: Dict[int, int] = {shop: 0 for shop in shop_ids}
        for record_id, (shop_id, _) in records[name].items():
            if only_ids is None or record_id in only_ids[name]:
                per_shop[shop_id] = per_shop.get(shop_id, 0) + 1
        floor += sum(max(1, math.ceil(n / PAGE_SIZE)) for n in per_shop.values())
        if name in DETAIL_RESOURCES:
            floor += sum(per_shop.values())
    return floor


def _changed(before: Dict[str, Dict[int, tuple]], after: Dict[str, Dict[int, tuple]]) -> Dict[str, set]:
    return {name: {i for i, value in rows.items() if before.get(name, {}).get(i) != value}
            for name, rows in after.items()}


def measure_request_cost(plan: Plan, work: Workdir) -> Dict[str, Any]:
    runs = []
    with EmulatorProcess(shops=plan.cost_shops, work_orders=plan.cost_work_orders) as emu:
        for i in range(plan.repeat):
            plan.log(f"[request cost] run {i + 1}/{plan.repeat}: full then incremental sync, "
                     f"{plan.cost_shops} shops x {plan.cost_work_orders} work orders")
            before = _records(emu.truth())
            floor = request_floor(before)
            workdir = work.new("cost")
            full = run_worker("connector", emu, workdir)
            total = sum(len(rows) for rows in before.values())
            changed: Dict[str, set] = {}
            advanced_minutes = 0
            while sum(len(ids) for ids in changed.values()) < plan.changed_share * total and advanced_minutes < 24 * 60:
                emu.advance(minutes=10)
                advanced_minutes += 10
                changed = _changed(before, _records(emu.truth()))
            after = _records(emu.truth())
            n_changed = sum(len(ids) for ids in changed.values())
            incremental = run_worker("connector", emu, workdir)  # same pipeline state and warehouse
            runs.append({
                "records": total, "floor": floor, "full_requests": full["served_requests"],
                "full_over_floor": full["served_requests"] / floor,
                "changed_records": n_changed, "changed_share": n_changed / total,
                "emulator_minutes_advanced": advanced_minutes,
                "incremental_requests": incremental["served_requests"],
                "incremental_floor": request_floor(after, changed),
                "incremental_over_full": incremental["served_requests"] / full["served_requests"],
                "rate_limited_429": full["served_rate_limited"] + incremental["served_rate_limited"],
                "full_rows": full["rows"], "incremental_rows": incremental["rows"],
            })
    over_floor = median([r["full_over_floor"] for r in runs])
    inc_share = median([r["incremental_over_full"] for r in runs])
    return {
        "settings": {"shops": plan.cost_shops, "work_orders_per_shop": plan.cost_work_orders,
                     "changed_share_target": plan.changed_share},
        "full_over_floor": over_floor,
        "full_requests": median([r["full_requests"] for r in runs]),
        "floor": median([r["floor"] for r in runs]),
        "incremental_over_full": inc_share,
        "incremental_requests": median([r["incremental_requests"] for r in runs]),
        "incremental_floor": median([r["incremental_floor"] for r in runs]),
        "changed_share": median([r["changed_share"] for r in runs]),
        "runs": runs,
        "goals": {
            "full_over_floor": goal(over_floor <= 1.05, "full sync <= 1.05 x the floor",
                                    "" if over_floor <= 1.05 else f"{over_floor:.3f} x the floor"),
            "incremental_over_full": goal(inc_share <= 0.03, "incremental after 1% changed <= 3% of a full sync",
                                          "" if inc_share <= 0.03 else f"{inc_share * 100:.2f}%"),
        },
    }


# ---------------------------------------------------------------------------------- 3. throughput
def _summarise(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {
        "rows": median([r["rows"] for r in runs]),
        "seconds": median([r["seconds"] for r in runs]),
        "rows_per_second": median([r.get("rows_per_second") for r in runs]),
        "peak_rss_mb": median([r["peak_rss_mb"] for r in runs]),
        "requests": median([r.get("served_requests") for r in runs]),
        "phases": {phase: median([r.get("phases", {}).get(phase) for r in runs])
                   for phase in ("extract", "normalize", "load")} if runs and "phases" in runs[0] else None,
        "runs": runs,
    }


# name -> (worker kind, environment, task extras); the connector as shipped comes first
APPROACHES: Dict[str, tuple] = {
    "connector": ("connector", {}, {}),
    "connector_dlt_defaults": ("connector", DLT_DEFAULT_ENV, {"loader_file_format": "insert_values"}),
    "rest_api": ("rest_api", DLT_DEFAULT_ENV, {}),
    "floor": ("floor", {}, {}),
}


def measure_throughput(plan: Plan, work: Workdir, with_dbt: bool = True) -> tuple:
    approaches = {name: APPROACHES[name] for name in (plan.approaches or APPROACHES)}
    by_approach: Dict[str, List[Dict[str, Any]]] = {name: [] for name in approaches}
    dbt_runs: List[Dict[str, Any]] = []
    memory: Dict[str, Any] = {}
    dbt_sizes: List[Dict[str, Any]] = []
    profile_path = None
    with EmulatorProcess(shops=plan.throughput_shops, work_orders=plan.throughput_work_orders) as emu:
        plan.log(f"[throughput] world of {plan.throughput_shops} shops x {plan.throughput_work_orders} "
                 f"work orders built in {emu.build_seconds:.1f} s")
        last_connector_dir = None
        for i in range(plan.repeat):
            # interleaved, so a burst of load from elsewhere hits every approach alike
            for name, (kind, env, extra) in approaches.items():
                plan.log(f"[throughput] run {i + 1}/{plan.repeat}: {name}")
                workdir = work.new(name)
                by_approach[name].append(run_worker(kind, emu, workdir, env=env, **extra))
                if name == "connector":
                    last_connector_dir = workdir
        if plan.profile:
            profile_path = str((plan.results_dir or HERE / "results") / "profile_connector")
            plan.log("[throughput] profiling one connector run (pyinstrument)")
            run_worker("connector", emu, work.new("profile"), profile_text=profile_path + ".txt")
        for i in range(plan.dbt_repeat if with_dbt else 0):
            plan.log(f"[dbt] build {i + 1}/{plan.dbt_repeat} on the throughput world")
            dbt_runs.append(run_worker("dbt", emu, last_connector_dir, dbt_args=plan.dbt_args))
    summaries = {name: _summarise(runs) for name, runs in by_approach.items()}

    for work_orders in sorted({size for sizes in plan.memory_work_orders.values() for size in sizes}):
        with EmulatorProcess(shops=plan.throughput_shops, work_orders=work_orders) as emu:
            for name in [n for n, sizes in plan.memory_work_orders.items() if work_orders in sizes and n in approaches]:
                kind, env, extra = APPROACHES[name]
                plan.log(f"[memory] {name} on {plan.throughput_shops} shops x {work_orders} work orders")
                workdir = work.new(f"memory-{name}")
                result = run_worker(kind, emu, workdir, env=env, **extra)
                memory.setdefault(name, []).append({"work_orders_per_shop": work_orders, "rows": result["rows"],
                                                    "peak_rss_mb": result["peak_rss_mb"]})
                if name == "connector" and with_dbt and not plan.dbt_args:  # a partial build says nothing about size
                    plan.log(f"[dbt] build on {plan.throughput_shops} shops x {work_orders} work orders")
                    small = run_worker("dbt", emu, workdir, dbt_args=plan.dbt_args)
                    dbt_sizes.append({"work_orders": plan.throughput_shops * work_orders, "rows": result["rows"],
                                      "seconds": small["seconds"]})
    main_rows = summaries["connector"]["rows"]
    for name in [n for n in plan.memory_work_orders if n in approaches]:
        memory.setdefault(name, []).append({"work_orders_per_shop": plan.throughput_work_orders, "rows": main_rows,
                                            "peak_rss_mb": summaries[name]["peak_rss_mb"]})
        memory[name].sort(key=lambda m: m["rows"])

    floor_rps = summaries["floor"]["rows_per_second"]
    rest_rps = summaries["rest_api"]["rows_per_second"]
    ratios = {name: s["rows_per_second"] / floor_rps for name, s in summaries.items()}
    goals = {}
    for name in [n for n in approaches if n.startswith("connector")]:
        ratio = ratios[name]
        goals[name] = {
            "half_of_floor": goal(ratio >= 0.5, ">= 50% of the floor's rows per second",
                                  "" if ratio >= 0.5 else f"{ratio * 100:.0f}% of the floor"),
            "faster_than_rest_api": goal(summaries[name]["rows_per_second"] > rest_rps, "faster than rest_api",
                                         "" if summaries[name]["rows_per_second"] > rest_rps else
                                         f"{summaries[name]['rows_per_second'] / rest_rps:.2f} x rest_api"),
        }
        if len(memory.get(name, [])) >= 2:
            growth = _memory_growth(memory[name])
            goals[name]["flat_memory"] = goal(growth["flat"], "peak memory does not grow with the world",
                                              "" if growth["flat"] else
                                              f"peak RSS x{growth['rss_growth']:.2f} for x{growth['rows_growth']:.1f} rows")
    if dbt_runs:
        dbt_sizes.append({"work_orders": plan.throughput_shops * plan.throughput_work_orders, "rows": main_rows,
                          "seconds": median([r["seconds"] for r in dbt_runs])})
    dbt_sizes.sort(key=lambda point: point["rows"])
    dbt = {
        "sizes": dbt_sizes,
        "seconds": median([r["seconds"] for r in dbt_runs]),
        "success": all(r["success"] for r in dbt_runs) if dbt_runs else None,
        "rows_loaded": main_rows,
        "dbt_args": plan.dbt_args,
        "runs": dbt_runs,
    }
    return {
        "settings": {"shops": plan.throughput_shops, "work_orders_per_shop": plan.throughput_work_orders,
                     "dlt_default_env": DLT_DEFAULT_ENV},
        "approaches": summaries,
        "ratio_to_floor": ratios,
        "memory": memory,
        "profile": profile_path,
        "goals": goals,
    }, dbt


def _memory_growth(points: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Growth between the two largest worlds: below dlt's buffer sizes memory grows with the data
    by design (the buffers fill), so "does not grow" is judged where they are full. Flat means at
    most 25% more peak RSS (noise, DuckDB's caches) for at least twice the rows."""
    small, large = points[-2], points[-1]
    rows_growth = large["rows"] / small["rows"] if small["rows"] else 1.0
    rss_growth = large["peak_rss_mb"] / small["peak_rss_mb"]
    return {"rows_growth": rows_growth, "rss_growth": rss_growth, "flat": rss_growth <= 1.25}


# ---------------------------------------------------------------------------------- 4. scaling
def measure_scaling(plan: Plan, work: Workdir) -> Dict[str, Any]:
    points = []
    for shops in plan.scaling_shops:
        with EmulatorProcess(shops=shops, work_orders=plan.scaling_work_orders) as emu:
            runs = []
            for i in range(plan.repeat):
                plan.log(f"[scaling] {shops} shop(s) x {plan.scaling_work_orders} work orders, run {i + 1}/{plan.repeat}")
                runs.append(run_worker("connector", emu, work.new(f"scale{shops}")))
            summary = _summarise(runs)
            points.append({"shops": shops, "rows": summary["rows"], "seconds": summary["seconds"],
                           "rows_per_second": summary["rows_per_second"], "requests": summary["requests"],
                           "requests_per_second": summary["requests"] / summary["phases"]["extract"]
                           if summary["phases"] and summary["phases"]["extract"] else None,
                           "peak_rss_mb": summary["peak_rss_mb"], "phases": summary["phases"]})
    base = points[0]["rows_per_second"]
    for point in points:
        point["speedup"] = point["rows_per_second"] / base if base else None
    return {"settings": {"work_orders_per_shop": plan.scaling_work_orders}, "points": points}


# ---------------------------------------------------------------------------------- 5. dbt, large world
def measure_dbt_large(plan: Plan, shops: int = 10, work_orders: int = 20_000) -> Dict[str, Any]:
    """`dbt build` on the issue's 200k-work-order world, through benchmarks/dbt_bench.py (owned by
    the dbt project): it writes the raw tables straight from the emulator's truth dump, because
    syncing that world through the API would take longer than the rest of this run together."""
    plan.log(f"[dbt] build on {shops} shops x {work_orders} work orders (benchmarks/dbt_bench.py)")
    with tempfile.TemporaryDirectory(prefix="autosync-bench-dbt-") as directory:
        done = subprocess.run([sys.executable, str(HERE / "dbt_bench.py"), "--shops", str(shops), "--work-orders",
                               str(work_orders), "--json", "--dir", directory], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"})
    if done.returncode != 0 and not done.stdout.strip().startswith("["):
        raise RuntimeError(f"dbt_bench.py failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout)[-1]
    return {"work_orders": result["work_orders"], "rows": result["raw_rows"], "seconds": result["seconds"],
            "cpu_seconds": result.get("cpu_seconds_in_process"), "success": result["success"],
            "summary": result.get("summary")}


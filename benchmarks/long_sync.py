"""Long-sync figures (issue #12): printed, not asserted.

    python benchmarks/long_sync.py                 # kill and lag, about 5 min on 2 busy cores
    python benchmarks/long_sync.py shops120:1200   # one mode: kill, lag, cli100, cli1000, shops120[:rate], engine1000[:workers]

- kill: a throttled sync through `pipelines/run.py`, cut into checkpoints of N requests, SIGKILLed
  when the emulator has served half of what an uninterrupted sync needs, then rerun to the end:
  requests repeated (both runs minus the uninterrupted sync) against one checkpoint's requests.
- lag: the default lag's cost per incremental run: the same incremental sync (a day of activity)
  at lag 0 and at the default lag, list pages and detail calls of each.
(The `thousand` mode, one source reading every shop into one pipeline, is gone with issue #20: the
source reads one shop and many shops are the engine's; its last figures stay in the results file.)
The emulator runs in its own process (benchmarks/emulator_process.py).
- cli100 / cli1000: the same account through `pipelines/run.py` (the engine: each shop in its own
  state home, as a Dagster partition or an Airflow task of that shop would have it): wall time and
  seconds per shop, requests against the floor, peak memory, each shop's state bytes (the cursors)
  and its working directory's bytes.
- shops120 (issue #20's bar): 120 shops x 3 work orders on one key, a full sync into DuckDB through
  `pipelines/run.py` at 300 and at 1,200 requests/min (`shops120:1200` for one rate), in one process
  and with `--processes 2` (SOURCES__AUTOSYNC__PROCESSES): requests
  against the floor (bar: 1.02x), wall time against floor / budget (bar: 1.2x + 30 s at 300/min,
  1.5x + 30 s at 1,200/min), tables equal to the truth.
- engine1000 (outside CI: about an hour): 1,000 shops unthrottled through `pipelines/run.py` at
  max_workers 1 and 4 (`engine1000:4` for one): requests against the floor, seconds per shop in the
  first and last quarter, peak memory.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from emulator_process import EmulatorProcess  # noqa: E402

ENV = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}


def _cli(emu: EmulatorProcess, workdir: Path, budget: int) -> List[str]:
    return [sys.executable, str(ROOT / "pipelines" / "run.py"), "--base-url", emu.base_url, "--api-key", emu.api_key,
            "--no-dbt", "--quiet", "--duckdb-path", str(workdir / "raw.duckdb"), "--pipelines-dir", str(workdir / "p"),
            "--checkpoint-minutes", "0", "--checkpoint-requests", str(budget)]


def kill_at_half(budget: int = 100) -> Dict[str, Any]:
    with EmulatorProcess(seed=12, shops=2, work_orders=150, rate_limit=300, rate_window_seconds=5) as emu, \
            tempfile.TemporaryDirectory() as tmp:
        whole = Path(tmp) / "whole"
        emu.reset_request_log()
        began = time.monotonic()
        done = subprocess.run(_cli(emu, whole, budget), cwd=str(ROOT), env=ENV, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        seconds = time.monotonic() - began
        uninterrupted = emu.request_log()["total"]
        per_checkpoint = [int(n) for n in re.findall(r"committed \((\d+) requests", done.stderr)]

        killed = Path(tmp) / "killed"
        emu.reset_request_log()
        proc = subprocess.Popen(_cli(emu, killed, budget), cwd=str(ROOT), env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and emu.request_log()["total"] < uninterrupted // 2:
            time.sleep(0.05)
        at_kill = emu.request_log()["total"]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        rerun = subprocess.run(_cli(emu, killed, budget), cwd=str(ROOT), env=ENV, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        total = emu.request_log()["total"]
        return {
            "uninterrupted_requests": uninterrupted, "uninterrupted_seconds": round(seconds, 1),
            "checkpoints": len(per_checkpoint) + 2, "one_checkpoint_requests": max(per_checkpoint or [0]),
            "killed_at_requests": at_kill, "requests_both_runs": total, "repeated": total - uninterrupted,
        }


def lag_cost() -> Dict[str, Any]:
    from autosync_source import DEFAULT_LAG_SECONDS, RequestStats, autosync_source
    import dlt

    out: Dict[str, Any] = {"default_lag_seconds": DEFAULT_LAG_SECONDS}
    with EmulatorProcess(seed=42, shops=3, work_orders=200) as emu, tempfile.TemporaryDirectory() as tmp:
        pipelines = {}
        for lag in (0, DEFAULT_LAG_SECONDS):
            pipeline = dlt.pipeline(f"lag_{lag}", destination=dlt.destinations.duckdb(str(Path(tmp) / f"lag_{lag}.duckdb")),
                                    dataset_name="autosync_raw", pipelines_dir=str(Path(tmp) / "p"))
            for shop in (1, 2, 3):  # the source reads one shop: each in turn, into one pipeline
                pipeline.run(autosync_source(base_url=emu.base_url, api_key=emu.api_key, shop=shop, lag_seconds=lag,
                                             progress="quiet"))
            pipelines[lag] = pipeline
        for _day in range(3):
            emu.advance(hours=24)
            for lag, pipeline in pipelines.items():
                stats = RequestStats()
                rows = 0
                for shop in (1, 2, 3):
                    pipeline.run(autosync_source(base_url=emu.base_url, api_key=emu.api_key, shop=shop, lag_seconds=lag,
                                                 request_stats=stats, progress="quiet"))
                    rows += sum(n for t, n in pipeline.last_trace.last_normalize_info.row_counts.items() if not t.startswith("_dlt"))
                kinds = stats.as_dict()["by_resource"]
                # the shops' own rows (GET /shops/{id}, the same at any lag) aside
                lists = sum(k.get("list", 0) for name, k in kinds.items() if name != "shops")
                details = sum(k.get("detail", 0) for name, k in kinds.items() if name != "shops")
                out.setdefault(f"lag_{lag}", []).append({"list_pages": lists, "details": details, "rows_loaded": rows})
    extra = [b["list_pages"] - a["list_pages"] for a, b in zip(out["lag_0"], out[f"lag_{DEFAULT_LAG_SECONDS}"])]
    out["extra_list_pages_per_run"] = extra
    return out


def many_shops_cli(shops: int) -> Dict[str, Any]:
    """`pipelines/run.py` over every shop of a `shops`-shop account, in a child measured by wait4."""
    from source_helpers import request_floor

    with EmulatorProcess(seed=7, shops=shops, work_orders=3, startup_timeout=900) as emu, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        floor = request_floor(None, emu.truth())
        command = [sys.executable, str(ROOT / "pipelines" / "run.py"), "--base-url", emu.base_url, "--api-key", emu.api_key,
                   "--no-dbt", "--quiet", "--json", "--duckdb-path", str(workdir / "raw.duckdb"),
                   "--pipelines-dir", str(workdir / "p")]
        began = time.monotonic()
        child = subprocess.Popen(command, cwd=str(ROOT), env={**ENV, "SOURCES__AUTOSYNC__SKIP_FAILING_SHOPS": "true"},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = child.communicate()
        seconds = time.monotonic() - began
        peak_kb = _child_peak_kb()
        assert child.returncode == 0, err[-3000:]
        summary = json.loads(out)
        homes = sorted((workdir / "p").glob("*/autosync_*_shop_*"))
        state_bytes = []
        for home in homes:
            state = json.loads((home / "state.json").read_text())
            resources = state.get("sources", {}).get("autosync", {}).get("resources", {})
            state_bytes.append(len(json.dumps(resources, separators=(",", ":"))))
        dir_bytes = [sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) for home in homes]
        import duckdb

        with duckdb.connect(str(workdir / "raw.duckdb"), read_only=True) as connection:
            # each shop's seconds, from the sync log: flat if no shop costs more than the ones before it
            per_shop = [row[0] for row in connection.execute(
                "select extract(epoch from max(finished_at) - min(started_at)) from autosync_raw._autosync_runs "
                "group by shop_id order by min(started_at)").fetchall()]
            tables = connection.execute("select count(*) from information_schema.tables").fetchone()[0]
        quarter = max(1, len(per_shop) // 4)
        requests = summary["requests"]  # the --json summary's total (by kind in requests_by_kind)
        floor_total = sum(sum(kinds.values()) for kinds in floor.values())
        return {
            "shops": shops, "state_homes": len(homes), "seconds": round(seconds, 1),
            "seconds_per_shop": round(seconds / shops, 2), "requests": requests, "floor": floor_total,
            "requests_over_floor": round(requests / floor_total, 4),
            "peak_rss_mb": round(peak_kb / 1024), "state_bytes_per_shop": round(sum(state_bytes) / max(1, len(homes))),
            "working_dir_bytes_per_shop": round(sum(dir_bytes) / max(1, len(homes))),
            "seconds_per_shop_first_quarter": round(sum(per_shop[:quarter]) / quarter, 2),
            "seconds_per_shop_last_quarter": round(sum(per_shop[-quarter:]) / quarter, 2),
            "warehouse_tables": tables, "warehouse_mb": round((workdir / "raw.duckdb").stat().st_size / 2**20),
        }


# issue #20's bars on wall time: (factor, seconds) over floor / budget, per requests/min
WALL_BARS = {300: (1.2, 30.0), 1200: (1.5, 30.0)}


def engine_sync(shops: int, rate_per_minute: int = 0, max_workers: int = 4, work_orders: int = 3,
                check_truth: bool = True, processes: int = 0) -> Dict[str, Any]:
    """A full sync of `shops` shops through `pipelines/run.py` (the engine), measured against the
    request floor and, when throttled, against the time the budget needs for the floor."""
    from source_helpers import request_floor

    with EmulatorProcess(seed=7, shops=shops, work_orders=work_orders, rate_limit=rate_per_minute,
                         rate_window_seconds=60, startup_timeout=900) as emu, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        truth = emu.truth()
        floor = request_floor(None, truth)
        floor_total = sum(sum(kinds.values()) for kinds in floor.values())
        emu.reset_request_log()
        command = [sys.executable, str(ROOT / "pipelines" / "run.py"), "--base-url", emu.base_url, "--api-key", emu.api_key,
                   "--no-dbt", "--json", "--duckdb-path", str(workdir / "raw.duckdb"), "--pipelines-dir", str(workdir / "p")]
        env = {**ENV, "SOURCES__AUTOSYNC__MAX_WORKERS": str(max_workers), "SOURCES__AUTOSYNC__PROGRESS_INTERVAL_SECONDS": "30",
               "SOURCES__AUTOSYNC__PROCESSES": str(processes)}
        began = time.monotonic()
        child = subprocess.Popen(command, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = child.communicate()
        seconds = time.monotonic() - began
        peak_kb = _child_peak_kb()
        assert child.returncode == 0, err[-3000:]
        summary = json.loads(out)
        served = emu.request_log()["total"]
        estimate = [event for event in (json.loads(line) for line in err.splitlines() if line.startswith("{"))
                    if event.get("event") == "estimate"]
        result: Dict[str, Any] = {
            "shops": shops, "work_orders_per_shop": work_orders, "max_workers": max_workers, "processes": processes,
            "rate_per_minute": rate_per_minute or None, "seconds": round(seconds, 1),
            "requests": summary["requests"], "requests_served": served, "floor": floor_total,
            "requests_over_floor": round(served / floor_total, 4), "rate_limited_429": summary["rate_limited_429"],
            "peak_rss_mb": round(peak_kb / 1024),
            "estimate": {k: estimate[0].get(k) for k in ("requests", "seconds", "shops")} if estimate else None,
        }
        if rate_per_minute:
            floor_seconds = floor_total / rate_per_minute * 60
            factor, extra = WALL_BARS.get(rate_per_minute, (1.5, 30.0))
            result.update(floor_seconds=round(floor_seconds, 1), wall_over_floor=round(seconds / floor_seconds, 2),
                          wall_bar_seconds=round(factor * floor_seconds + extra, 1),
                          wall_within_bar=seconds <= factor * floor_seconds + extra)
        result["requests_within_bar"] = served <= 1.02 * floor_total
        import duckdb

        with duckdb.connect(str(workdir / "raw.duckdb"), read_only=True) as connection:
            per_shop = [row[0] for row in connection.execute(
                "select extract(epoch from max(finished_at) - min(started_at)) from autosync_raw._autosync_runs "
                "group by shop_id order by min(started_at)").fetchall()]
        quarter = max(1, len(per_shop) // 4)
        result.update(seconds_per_shop_first_quarter=round(sum(per_shop[:quarter]) / quarter, 2),
                      seconds_per_shop_last_quarter=round(sum(per_shop[-quarter:]) / quarter, 2))
        if check_truth:
            import dlt
            from source_helpers import assert_raw_equals_truth

            probe = dlt.pipeline("probe", destination=dlt.destinations.duckdb(str(workdir / "raw.duckdb")),
                                 dataset_name="autosync_raw", pipelines_dir=str(workdir / "probe"))
            assert_raw_equals_truth(probe, truth)
            result["tables_equal_truth"] = True
        return result


def _child_peak_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child waited for so far


def main(argv: List[str]) -> int:
    chosen = argv or ["kill", "lag"]
    results: Dict[str, Any] = {"load_average": os.getloadavg()}
    if "kill" in chosen:
        results["kill_at_half"] = kill_at_half()
        print("kill at 50%:", json.dumps(results["kill_at_half"]), flush=True)
    if "lag" in chosen:
        results["lag"] = lag_cost()
        print("default lag:", json.dumps(results["lag"]), flush=True)
    for shops in (100, 1000):
        if f"cli{shops}" in chosen:
            results[f"cli_shops_{shops}"] = many_shops_cli(shops)
            print(f"{shops} shops through run.py:", json.dumps(results[f"cli_shops_{shops}"]), flush=True)
    for mode in chosen:
        name, _, arg = mode.partition(":")
        if name == "shops120":
            # in one process (the default) and with the shops read in two worker processes
            # (--processes 2: the second core, where per-shop work must overlap)
            for rate in ([int(arg)] if arg else [300, 1200]):
                for processes in (0, 2):
                    key = f"shops120_at_{rate}_per_min" + (f"_processes_{processes}" if processes else "")
                    results[key] = engine_sync(120, rate_per_minute=rate, processes=processes)
                    print(f"120 shops at {rate}/min, processes {processes}:", json.dumps(results[key]), flush=True)
        elif name == "engine1000":
            for workers in ([int(arg)] if arg else [1, 4]):
                key = f"engine_1000_shops_max_workers_{workers}"
                results[key] = engine_sync(1000, max_workers=workers, check_truth=False)
                print(f"1000 shops, max_workers {workers}:", json.dumps(results[key]), flush=True)
    results["load_average_after"] = os.getloadavg()
    out = ROOT / "benchmarks" / "results" / "long_sync.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, **results}, indent=2) + "\n")  # a subset run keeps the other figures
    print(f"written {out.relative_to(ROOT)}; load average before {results['load_average']}, after {results['load_average_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

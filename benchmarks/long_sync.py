"""Long-sync figures (issue #12): printed, not asserted.

    python benchmarks/long_sync.py                 # all three, about 10 min on 2 busy cores
    python benchmarks/long_sync.py kill lag        # a subset: kill, lag, thousand

- kill: a throttled sync through `pipelines/run.py`, cut into checkpoints of N requests, SIGKILLed
  when the emulator has served half of what an uninterrupted sync needs, then rerun to the end:
  requests repeated (both runs minus the uninterrupted sync) against one checkpoint's requests.
- lag: the default lag's cost per incremental run: the same incremental sync (a day of activity)
  at lag 0 and at the default lag, list pages and detail calls of each.
- thousand: 1,000 small shops on one key, one pipeline (the source reading every shop): wall time,
  requests against the floor, peak memory of the sync process (against 100 shops), cursor state
  bytes per shop. The emulator runs in its own process (benchmarks/emulator_process.py).
- cli100 / cli1000: the same account through `pipelines/run.py` (the engine: each shop in its own
  state home, as a Dagster partition or an Airflow task of that shop would have it): wall time and
  seconds per shop, requests against the floor, peak memory, each shop's state bytes (the cursors)
  and its working directory's bytes.
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
            pipeline.run(autosync_source(base_url=emu.base_url, api_key=emu.api_key, lag_seconds=lag, progress="quiet"))
            pipelines[lag] = pipeline
        for _day in range(3):
            emu.advance(hours=24)
            for lag, pipeline in pipelines.items():
                stats = RequestStats()
                pipeline.run(autosync_source(base_url=emu.base_url, api_key=emu.api_key, lag_seconds=lag,
                                             request_stats=stats, progress="quiet"))
                kinds = stats.as_dict()["by_resource"]
                lists = sum(k.get("list", 0) for k in kinds.values())
                details = sum(k.get("detail", 0) for k in kinds.values())
                rows = sum(n for t, n in pipeline.last_trace.last_normalize_info.row_counts.items() if not t.startswith("_dlt"))
                out.setdefault(f"lag_{lag}", []).append({"list_pages": lists, "details": details, "rows_loaded": rows})
    extra = [b["list_pages"] - a["list_pages"] for a, b in zip(out["lag_0"], out[f"lag_{DEFAULT_LAG_SECONDS}"])]
    out["extra_list_pages_per_run"] = extra
    return out


WORKER = r'''
import json, resource, sys, time
sys.path.insert(0, sys.argv[4])
import dlt
from autosync_source import Checkpoint, RequestStats, autosync_source
base_url, api_key, workdir = sys.argv[1:4]
pipeline = dlt.pipeline("thousand", destination=dlt.destinations.duckdb(workdir + "/raw.duckdb", preferred_loader_file_format="parquet"),
                        dataset_name="autosync_raw", pipelines_dir=workdir + "/p")
stats, checkpoint = RequestStats(), Checkpoint()
began = time.monotonic()
pipeline.run(autosync_source(base_url=base_url, api_key=api_key, request_stats=stats, checkpoint=checkpoint,
                             progress="log", skip_failing_shops=True, progress_interval_seconds=30))
seconds = time.monotonic() - began
resources = pipeline.state["sources"]["autosync"]["resources"]
state_bytes = len(json.dumps(resources, separators=(",", ":")))
print(json.dumps({"seconds": round(seconds, 1), "requests": stats.requests, "by_resource": stats.as_dict()["by_resource"],
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "state_bytes": state_bytes,
                  "complete": checkpoint.complete, "failed": len(checkpoint.failed)}))
'''


def many_shops(shops: int) -> Dict[str, Any]:
    from source_helpers import request_floor

    with EmulatorProcess(seed=7, shops=shops, work_orders=3, startup_timeout=900) as emu, tempfile.TemporaryDirectory() as tmp:
        truth = emu.truth()
        floor = request_floor(None, truth)
        done = subprocess.run([sys.executable, "-c", WORKER, emu.base_url, emu.api_key, tmp, str(ROOT)],
                              cwd=str(ROOT), env=ENV, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        estimate = [line for line in done.stderr.splitlines() if "estimate:" in line]
        result.update({
            "shops": shops, "floor": sum(sum(kinds.values()) for kinds in floor.values()),
            "estimate_line": estimate[0].split("estimate: ", 1)[1] if estimate else None,
            "state_bytes_per_shop": round(result["state_bytes"] / shops),
        })
        result["requests_over_floor"] = round(result["requests"] / result["floor"], 4)
        result.pop("by_resource")
        return result


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


def _child_peak_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child waited for so far


def main(argv: List[str]) -> int:
    chosen = argv or ["kill", "lag", "thousand"]
    results: Dict[str, Any] = {"load_average": os.getloadavg()}
    if "kill" in chosen:
        results["kill_at_half"] = kill_at_half()
        print("kill at 50%:", json.dumps(results["kill_at_half"]), flush=True)
    if "lag" in chosen:
        results["lag"] = lag_cost()
        print("default lag:", json.dumps(results["lag"]), flush=True)
    if "thousand" in chosen:
        results["shops_100"] = many_shops(100)
        print("100 shops:", json.dumps(results["shops_100"]), flush=True)
        results["shops_1000"] = many_shops(1000)
        print("1000 shops:", json.dumps(results["shops_1000"]), flush=True)
    for shops in (100, 1000):
        if f"cli{shops}" in chosen:
            results[f"cli_shops_{shops}"] = many_shops_cli(shops)
            print(f"{shops} shops through run.py:", json.dumps(results[f"cli_shops_{shops}"]), flush=True)
    results["load_average_after"] = os.getloadavg()
    out = ROOT / "benchmarks" / "results" / "long_sync.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, **results}, indent=2) + "\n")  # a subset run keeps the other figures
    print(f"written {out.relative_to(ROOT)}; load average before {results['load_average']}, after {results['load_average_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

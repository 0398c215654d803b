"""`python benchmarks/run.py --smoke` still runs and reports every measurement with real figures.

No timing thresholds here (figures on a shared CI machine say nothing); the benchmark's goals
are judged by the full run, whose table is in the README.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_benchmarks_smoke_reports_every_measurement(tmp_path):
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=580)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    assert (tmp_path / "latest.md").read_text().startswith("# AutoSync benchmarks (smoke run")
    ms = results["measurements"]
    assert set(ms) == {"rate_budget", "request_cost", "throughput", "scaling", "dbt"}

    rate = ms["rate_budget"]
    assert rate["full_windows"] >= 1
    assert 0 < rate["budget_use"] <= 1.0  # a window can never serve more than the limit
    assert rate["rate_limited_429"] >= 0

    cost = ms["request_cost"]
    assert cost["full_requests"] >= cost["floor"] > 0  # the floor is a lower bound by construction
    assert cost["changed_share"] >= 0.01  # the emulator really changed records before the increment
    assert 0 < cost["incremental_requests"] < cost["full_requests"]

    throughput = ms["throughput"]
    approaches = throughput["approaches"]
    assert {"connector", "rest_api", "floor"} <= set(approaches)
    for name, figures in approaches.items():
        assert _positive(figures["rows_per_second"]), name
        assert _positive(figures["peak_rss_mb"]), name
        assert _positive(throughput["ratio_to_floor"][name]), name
    # the same world: the connector and the floor load the same rows
    assert approaches["connector"]["rows"] == approaches["floor"]["rows"]
    assert len(throughput["memory"]["connector"]) == 2

    points = ms["scaling"]["points"]
    assert [p["shops"] for p in points] == sorted(p["shops"] for p in points)
    assert all(_positive(p["rows_per_second"]) and p["requests"] > 0 for p in points)
    assert points[-1]["rows"] > points[0]["rows"]  # more shops, more rows

    dbt = ms["dbt"]
    assert dbt["success"] is True and _positive(dbt["seconds"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cost_per_row_compares_the_connector_with_the_bare_loop_on_the_same_rows(tmp_path):
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    out = tmp_path / "cost.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cost_per_row.py"), "--work-orders", "8",
                           "--repeat", "1", "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=280)
    assert done.returncode == 0, done.stderr[-4000:]
    figures = json.loads(out.read_text())
    connector, bare = figures["connector"], figures["bare_loop"]
    # the same world read by both: the same rows, table by table, for the same requests
    assert connector["runs"][0]["rows_by_table"] == bare["runs"][0]["rows_by_table"]
    assert connector["requests"] == bare["requests"] > 0
    assert all(_positive(side[key]) for side in (connector, bare) for key in ("cpu_seconds", "peak_rss_mb"))
    assert set(connector["cpu_by_stage"]) == {"extract", "normalize", "load"}
    assert _positive(figures["ratio"])


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_dbt_day_of_change_benchmark_runs_and_its_builds_agree(tmp_path):
    # The benchmark behind the incremental figures in docs/performance.md, at a small size: a world,
    # one emulated day, an incremental build and a full one. It exits 1 when a table of the two differs.
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "dbt_bench.py"), "--day-of-change", "--shops", "2",
                           "--work-orders", "150", "--dir", str(tmp_path), "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=380)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    figures = json.loads(done.stdout)
    assert figures["comparison"]["tables_compared"] >= 20 and not figures["comparison"]["rows_differing"]
    assert figures["day"]["events"] > 0
    for build in ("incremental", "full"):
        assert figures[build]["success"] is True
        assert _positive(figures[build]["cpu_seconds"]) and _positive(figures[build]["incremental_models_sql_cpu_seconds"])
    assert _positive(figures["cold_parse_cpu_seconds"])

"""MetricFlow (the semantic layer's engine) against a built warehouse, and what its answers must be.

run_probe() runs tests/mf_probe.py in a subprocess (MetricFlow and dbt keep adapter state in
globals: a process of their own keeps it away from the dbt runs of the test process).
expected_answers() computes the same figures from the emulator-shaped truth with marts_reference,
as ratios of sums (never averages of ratios), so the semantic layer is checked against the same
independent computation as the marts.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import marts_reference as ref
from pipelines.dbt_runner import DBT_PROJECT_DIR

PROBE = Path(__file__).with_name("mf_probe.py")

# The questions asked on every warehouse: monthly KPIs per shop, a weekly ratio for one shop (the
# question the issue asks: "effective labor rate by week for shop 2"), and ratios of the monthly marts.
QUERIES = [
    {"metrics": ["car_count", "invoiced_revenue", "average_repair_order", "effective_labor_rate",
                 "hours_per_repair_order"], "group_by": ["metric_time__month", "shop"]},
    {"metrics": ["effective_labor_rate", "labor_hours_sold"], "group_by": ["metric_time__week", "shop"],
     "where": ["{{ Entity('shop') }} = 2"]},
    {"metrics": ["closing_ratio", "show_rate", "item_approval_rate"], "group_by": ["metric_time__month", "shop"]},
]


def run_probe(semantic_manifest: Path, env: dict[str, str], log_dir: Path, validate: bool = True) -> dict[str, Any]:
    request = {"project_dir": str(DBT_PROJECT_DIR), "profiles_dir": str(DBT_PROJECT_DIR),
               "semantic_manifest": str(semantic_manifest), "validate": validate, "queries": QUERIES}
    full_env = dict(os.environ, DBT_LOG_PATH=str(log_dir), DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1",
                    **env)
    done = subprocess.run([sys.executable, str(PROBE)], input=json.dumps(request), env=full_env,
                          capture_output=True, text=True, timeout=600, cwd=str(log_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _rows(result: dict) -> dict[tuple, dict]:
    out = {}
    for row in result["rows"]:
        record = dict(zip(result["columns"], row))
        time_column = next(c for c in result["columns"] if c.startswith("metric_time"))
        out[(int(record["shop"]), dt.datetime.fromisoformat(record[time_column]).date())] = record
    return out


def expected_answers(truth: dict[str, Any]) -> list[dict[tuple, dict]]:
    marts = ref.compute_marts(truth)
    kpis = {(r["shop_id"], r["month_start"]): r for r in marts["fct_shop_kpis_monthly"].to_dict("records")}
    first = {key: {"car_count": r["car_count"], "invoiced_revenue": r["invoiced_revenue"],
                   # MetricFlow divides the unrounded sums; the mart rounds the average to cents
                   "average_repair_order": float(r["invoiced_revenue"]) / r["car_count"],
                   "effective_labor_rate": r["effective_labor_rate"],
                   "hours_per_repair_order": r["hours_per_repair_order"]} for key, r in kpis.items()}

    clock = ref.Clock(truth)
    weekly: dict[tuple, list[Decimal]] = {}
    for w in ref.live_objects(truth)["work_orders"]:
        if w["shop_id"] != 2 or w.get("invoiced_at") is None:
            continue
        week = clock.monday(2, w["invoiced_at"])
        hours = ref.dsum(ref.dec(li.get("hours")) for j in w.get("jobs", []) if j.get("status") != "declined"
                         for li in j.get("line_items", []) if li.get("type") == "labor")
        sums = weekly.setdefault((2, week), [ref.ZERO, ref.ZERO])
        sums[0] += ref.dec(w["labor_total"])
        sums[1] += hours
    second = {key: {"effective_labor_rate": ref.rate(labor, hours), "labor_hours_sold": hours}
              for key, (labor, hours) in weekly.items()}

    third: dict[tuple, dict] = {}
    sums: dict[tuple, dict[str, Decimal]] = {}
    for r in marts["fct_service_advisor_monthly"].to_dict("records"):
        s = sums.setdefault((r["shop_id"], r["month_start"]), {})
        s["sold"] = s.get("sold", 0) + r["jobs_sold"]
        s["decided"] = s.get("decided", 0) + r["jobs_sold"] + r["jobs_declined"]
    for r in marts["fct_appointments_monthly"].to_dict("records"):
        s = sums.setdefault((r["shop_id"], r["month_start"]), {})
        s["shown"] = r["showed"]
        s["shown_or_missed"] = r["showed"] + r["no_shows"]
    for r in marts["fct_inspection_approval_monthly"].to_dict("records"):
        s = sums.setdefault((r["shop_id"], r["month_start"]), {})
        s["approved"] = s.get("approved", 0) + r["items_approved"]
        s["recommended"] = s.get("recommended", 0) + r["items_recommended"]
    for key, s in sums.items():
        third[key] = {"closing_ratio": ref.rate(s.get("sold", 0), s.get("decided", 0)),
                      "show_rate": ref.rate(s.get("shown", 0), s.get("shown_or_missed", 0)),
                      "item_approval_rate": ref.rate(s.get("approved", 0), s.get("recommended", 0))}
    return [first, second, third]


def compare_answers(answer: dict[str, Any], truth: dict[str, Any]) -> list[str]:
    """Every difference between MetricFlow's answers and the reference (empty = equal)."""
    problems = [f"semantic: {i}" for i in answer["semantic_issues"]] + [f"warehouse: {i}" for i in answer["warehouse_issues"]]
    for number, (result, expected) in enumerate(zip(answer["results"], expected_answers(truth)), start=1):
        actual = _rows(result)
        if set(actual) != set(expected):
            problems.append(f"query {number}: keys differ: only MetricFlow {sorted(set(actual) - set(expected))[:5]}, "
                            f"only reference {sorted(set(expected) - set(actual))[:5]}")
            continue
        for key, values in expected.items():
            for metric, want in values.items():
                got = actual[key][metric]
                want = None if isinstance(want, float) and math.isnan(want) else want
                if want is None or got is None:
                    same = want is None and got is None
                elif isinstance(want, Decimal):
                    same = Decimal(str(got)) == want
                elif isinstance(want, int) and not isinstance(want, bool):
                    same = int(got) == want
                else:
                    same = math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9)
                if not same:
                    problems.append(f"query {number} {key} {metric}: MetricFlow {got!r}, reference {want!r}")
    return problems

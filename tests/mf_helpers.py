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

# The questions asked on every warehouse: every metric of the semantic layer at month grain per shop,
# grouped by the months its rows have (invoice, creation, sending, start, payment or week months), and
# the weekly effective labor rate of one shop (the question the issue asks: "effective labor rate by
# week for shop 2"). Each answer is compared with the marts of the independent reference.
MONTH = ["metric_time__month", "shop"]
KPI_MONEY = ["invoiced_revenue", "labor_revenue", "parts_revenue", "labor_cost", "parts_cost", "gross_profit",
             "labor_gross_profit", "parts_gross_profit", "kpi_invoiced_revenue"]
KPI_RATES = ["average_repair_order", "effective_labor_rate", "hours_per_repair_order", "gross_margin",
             "parts_gross_margin", "gross_profit_per_labor_hour", "hours_sold_ratio", "comeback_rate", "inspection_rate"]
KPI_COUNTS = ["car_count", "kpi_car_count", "comeback_jobs", "jobs_sold_invoiced", "customers_served", "new_customers",
              "returning_customers", "reactivated_customers", "work_orders_inspected"]
KPI_HOURS = ["labor_hours_sold", "hours_presented"]
QUERIES = [
    {"metrics": KPI_COUNTS + KPI_MONEY + KPI_HOURS + KPI_RATES, "group_by": MONTH},
    {"metrics": ["effective_labor_rate", "labor_hours_sold"], "group_by": ["metric_time__week", "shop"],
     "where": ["{{ Entity('shop') }} = 2"]},
    {"metrics": ["work_orders_written", "jobs_sold", "jobs_decided", "closing_ratio", "sold_amount", "presented_amount",
                 "declined_amount", "decided_amount", "dollar_closing_ratio"], "group_by": MONTH},
    {"metrics": ["items_recommended", "items_approved", "item_approval_rate"], "group_by": MONTH},
    {"metrics": ["inspection_recommended_amount", "inspection_approved_amount", "dollar_approval_rate"],
     "group_by": MONTH},
    {"metrics": ["appointments", "appointments_showed", "appointments_scheduled", "appointments_converted",
                 "appointments_shown_or_missed", "show_rate"], "group_by": MONTH},
    {"metrics": ["payments_collected", "refunds", "net_collected"], "group_by": MONTH},
    {"metrics": ["billed_labor_hours", "work_orders_completed"], "group_by": MONTH},
]
# MetricFlow sums unrounded values; these are compared after rounding to cents as the marts round
MONEY_METRICS = set(KPI_MONEY) | {"sold_amount", "presented_amount", "declined_amount", "decided_amount",
                                  "inspection_recommended_amount", "inspection_approved_amount",
                                  "payments_collected", "refunds", "net_collected"}


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


def _month_sums(frame, month_of, columns) -> dict[tuple, dict[str, Any]]:
    """Sums of mart columns per (shop, month), the month taken from a row by month_of."""
    sums: dict[tuple, dict[str, Any]] = {}
    for r in frame.to_dict("records"):
        s = sums.setdefault((r["shop_id"], month_of(r)), {})
        for out, column in columns.items():
            value = column(r) if callable(column) else r[column]
            s[out] = s.get(out, 0) + value
    return sums


def expected_answers(truth: dict[str, Any]) -> list[dict[tuple, dict]]:
    marts = ref.compute_marts(truth)
    kpi_columns = KPI_COUNTS + KPI_MONEY + KPI_HOURS + KPI_RATES
    renamed = {"kpi_car_count": "car_count", "kpi_invoiced_revenue": "invoiced_revenue",
               "jobs_sold_invoiced": "jobs_sold"}
    first = {}
    for r in marts["fct_shop_kpis_monthly"].to_dict("records"):
        row = {m: r[renamed.get(m, m)] for m in kpi_columns}
        # MetricFlow divides the unrounded sums; the mart rounds the average to cents
        row["average_repair_order"] = float(r["invoiced_revenue"]) / r["car_count"]
        first[(r["shop_id"], r["month_start"])] = row

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

    month = lambda r: r["month_start"]  # noqa: E731
    advisors = _month_sums(marts["fct_service_advisor_monthly"], month, {
        "work_orders_written": "work_orders_written", "jobs_sold": "jobs_sold",
        "jobs_decided": lambda r: r["jobs_sold"] + r["jobs_declined"], "sold_amount": "sold_amount",
        "presented_amount": "presented_amount", "declined_amount": "declined_amount",
        "decided_amount": lambda r: r["sold_amount"] + r["declined_amount"]})
    for s in advisors.values():
        s["closing_ratio"] = ref.rate(s["jobs_sold"], s["jobs_decided"])
        s["dollar_closing_ratio"] = ref.rate(s["sold_amount"], s["decided_amount"])

    sent = marts["fct_inspections"][marts["fct_inspections"]["is_sent"]]
    items = _month_sums(sent, lambda r: r["sent_on"].replace(day=1), {
        "items_recommended": "items_recommended", "items_approved": "items_approved"})
    for s in items.values():
        s["item_approval_rate"] = ref.rate(s["items_approved"], s["items_recommended"])

    amounts = _month_sums(marts["fct_inspection_approval_monthly"], month, {
        "inspection_recommended_amount": "recommended_amount", "inspection_approved_amount": "approved_amount"})
    for s in amounts.values():
        s["dollar_approval_rate"] = ref.rate(s["inspection_approved_amount"], s["inspection_recommended_amount"])

    appointments = {(r["shop_id"], r["month_start"]): {
        "appointments": r["appointments"], "appointments_showed": r["showed"], "appointments_scheduled": r["scheduled"],
        "appointments_converted": r["converted"], "appointments_shown_or_missed": r["showed"] + r["no_shows"],
        "show_rate": r["show_rate"]} for r in marts["fct_appointments_monthly"].to_dict("records")}

    collected = _month_sums(marts["fct_revenue_daily"], lambda r: r["date"].replace(day=1), {
        "payments_collected": "payments_collected", "refunds": "refunds", "net_collected": "net_collected"})
    throughput = _month_sums(marts["fct_technician_throughput_weekly"], lambda r: r["week_start"].replace(day=1), {
        "billed_labor_hours": "billed_labor_hours", "work_orders_completed": "work_orders_completed"})
    return [first, second, advisors, items, amounts, appointments, collected, throughput]


def kpi_ratios_match_their_marts(truth: dict[str, Any]) -> list[str]:
    """The shop-wide ratios of fct_shop_kpis_monthly are those of the advisor, inspection and
    appointment answers in the same month (what the semantic layer answers by month)."""
    answers = expected_answers(truth)
    problems = []
    for r in ref.compute_marts(truth)["fct_shop_kpis_monthly"].to_dict("records"):
        key = (r["shop_id"], r["month_start"])
        for metric, answer in (("dollar_closing_ratio", answers[2]), ("item_approval_rate", answers[3]),
                               ("show_rate", answers[5])):
            want = answer.get(key, {}).get(metric)
            got = None if ref._missing(r[metric]) else r[metric]
            if (want is None) != (got is None) or (want is not None and not math.isclose(want, got, rel_tol=1e-12)):
                problems.append(f"{key} {metric}: kpi {got!r}, its own mart {want!r}")
    return problems


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
                elif metric in MONEY_METRICS:
                    same = ref.cents(Decimal(str(got))) == ref.cents(Decimal(str(want)))
                elif isinstance(want, Decimal):
                    same = Decimal(str(got)) == want
                elif isinstance(want, int) and not isinstance(want, bool):
                    same = int(got) == want
                else:
                    same = math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9)
                if not same:
                    problems.append(f"query {number} {key} {metric}: MetricFlow {got!r}, reference {want!r}")
    return problems

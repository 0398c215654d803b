"""An independent computation of the three main marts from the emulator's truth dump
(INTERFACES.md §2), following /work/shared/autosync/METRICS.md literally, in pandas with exact
Decimal money. The dbt marts must equal these to the cent (compare_mart).

It shares no code with the dbt project: it reads the API objects (not the raw tables), and states
each definition again in Python. The choices METRICS.md leaves open are those of
dbt_project/DECISIONLOG.md:
- a payment counts only while it and its work order exist; a refund only while its payment counts;
  an inspection only while it and its work order (if it has one) exist;
- rows whose technician_id is null are left out of the two per-technician marts;
- on a (shop, date) with payments but no invoices the invoiced sums are 0 and average_repair_order
  is NULL; money is rounded half away from zero to cents at the end; rates and hours averages are
  unrounded floats.
"""
from __future__ import annotations

import datetime as dt
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable

import pandas as pd

CENT = Decimal("0.01")
ZERO = Decimal("0")

REVENUE_COLUMNS = [
    "shop_id", "date", "work_orders_invoiced", "labor_revenue", "parts_revenue", "fees_revenue",
    "invoiced_revenue", "invoiced_tax", "invoiced_total", "average_repair_order", "parts_cost",
    "parts_gross_profit", "payments_collected", "refunds", "net_collected"]
THROUGHPUT_COLUMNS = [
    "shop_id", "technician_id", "week_start", "technician_name", "work_orders_completed", "jobs_completed",
    "billed_labor_hours", "labor_revenue", "avg_cycle_time_hours"]
INSPECTION_COLUMNS = [
    "shop_id", "technician_id", "month_start", "inspections_sent", "items_inspected", "items_recommended",
    "items_approved", "items_declined", "items_pending", "item_approval_rate", "red_item_approval_rate",
    "recommended_amount", "approved_amount", "dollar_approval_rate", "inspections_with_approval"]

# How each column is compared: money to the cent (exact Decimal), counts exactly, floats to 1e-9.
MONEY = {"labor_revenue", "parts_revenue", "fees_revenue", "invoiced_revenue", "invoiced_tax", "invoiced_total",
         "average_repair_order", "parts_cost", "parts_gross_profit", "payments_collected", "refunds",
         "net_collected", "recommended_amount", "approved_amount"}
EXACT_DECIMAL = {"billed_labor_hours"}
FLOATS = {"avg_cycle_time_hours", "item_approval_rate", "red_item_approval_rate", "dollar_approval_rate"}


def dec(value: Any) -> Decimal:
    """A JSON number as the exact decimal it was written as (0.1 -> Decimal('0.1'))."""
    return ZERO if value is None else Decimal(str(value))


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def ts(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def utc_date(value: str) -> dt.date:
    return ts(value).date()


def iso_monday(value: str) -> dt.date:
    day = utc_date(value)
    return day - dt.timedelta(days=day.weekday())


def month_start(value: str) -> dt.date:
    return utc_date(value).replace(day=1)


def dsum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, ZERO)


def rate(numerator: Any, denominator: Any) -> float | None:
    return None if denominator == 0 else float(numerator) / float(denominator)


# ----------------------------------------------------------------------------------------------
def live_objects(truth: dict[str, Any]) -> dict[str, list[dict]]:
    """The records every mart may use: what the truth dump lists as live, minus the children of
    deleted parents (payments and inspections of a work order that no longer exists)."""
    objects = truth["objects"]
    work_orders = list(objects.get("work_orders", []))
    live_wo = {w["id"] for w in work_orders}
    payments = [p for p in objects.get("payments", []) if p.get("work_order_id") in live_wo]
    inspections = [i for i in objects.get("inspections", [])
                   if i.get("work_order_id") is None or i.get("work_order_id") in live_wo]
    return {"work_orders": work_orders, "payments": payments, "inspections": inspections,
            "employees": list(objects.get("employees", []))}


def revenue_daily(truth: dict[str, Any]) -> pd.DataFrame:
    live = live_objects(truth)
    invoiced = []
    for wo in live["work_orders"]:
        if wo.get("invoiced_at") is None:
            continue
        parts_cost = dsum(dec(li.get("quantity")) * dec(li.get("unit_cost"))
                          for job in wo.get("jobs", []) if job.get("status") != "declined"
                          for li in job.get("line_items", []) if li.get("type") == "part")
        invoiced.append({"shop_id": wo["shop_id"], "date": utc_date(wo["invoiced_at"]),
                         "labor": dec(wo["labor_total"]), "parts": dec(wo["parts_total"]),
                         "fees": dec(wo["fees_total"]), "subtotal": dec(wo["subtotal"]),
                         "tax": dec(wo["tax_total"]), "total": dec(wo["total"]), "parts_cost": parts_cost})
    payments = [{"shop_id": p["shop_id"], "date": utc_date(p["created_at"]), "amount": dec(p["amount"])}
                for p in live["payments"] if p.get("status") == "succeeded"]
    refunds = [{"shop_id": p["shop_id"], "date": utc_date(r["created_at"]), "amount": dec(r["amount"])}
               for p in live["payments"] for r in p.get("refunds", [])]

    keys = ["shop_id", "date"]
    inv = _group(invoiced, keys, {"work_orders_invoiced": ("labor", "size"),
                                  **{k: (k, dsum) for k in ("labor", "parts", "fees", "subtotal", "tax", "total",
                                                            "parts_cost")}})
    pay = _group(payments, keys, {"payments_collected": ("amount", dsum)})
    ref = _group(refunds, keys, {"refunds": ("amount", dsum)})
    frame = inv.join(pay, how="outer").join(ref, how="outer").reset_index()

    rows = []
    for r in frame.to_dict("records"):
        n = 0 if _missing(r.get("work_orders_invoiced")) else int(r["work_orders_invoiced"])
        m = {k: (ZERO if _missing(r.get(k)) else r[k]) for k in
             ("labor", "parts", "fees", "subtotal", "tax", "total", "parts_cost", "payments_collected", "refunds")}
        rows.append({
            "shop_id": int(r["shop_id"]), "date": r["date"], "work_orders_invoiced": n,
            "labor_revenue": cents(m["labor"]), "parts_revenue": cents(m["parts"]), "fees_revenue": cents(m["fees"]),
            "invoiced_revenue": cents(m["subtotal"]), "invoiced_tax": cents(m["tax"]),
            "invoiced_total": cents(m["total"]),
            "average_repair_order": cents(m["subtotal"] / n) if n else None,
            "parts_cost": cents(m["parts_cost"]), "parts_gross_profit": cents(m["parts"] - m["parts_cost"]),
            "payments_collected": cents(m["payments_collected"]), "refunds": cents(m["refunds"]),
            "net_collected": cents(m["payments_collected"] - m["refunds"])})
    return pd.DataFrame(rows, columns=REVENUE_COLUMNS)


def technician_throughput_weekly(truth: dict[str, Any]) -> pd.DataFrame:
    live = live_objects(truth)
    names = {e["id"]: (None if e.get("first_name") is None or e.get("last_name") is None
                       else f"{e['first_name']} {e['last_name']}") for e in live["employees"]}
    work_orders, jobs, labor = [], [], []
    for wo in live["work_orders"]:
        if wo.get("completed_at") is None:
            continue
        week = iso_monday(wo["completed_at"])
        if wo.get("technician_id") is not None:
            cycle = None
            if wo.get("started_at") is not None:
                cycle = (ts(wo["completed_at"]) - ts(wo["started_at"])).total_seconds() / 3600
            work_orders.append({"shop_id": wo["shop_id"], "technician_id": wo["technician_id"], "week_start": week,
                                "cycle": cycle})
        for job in wo.get("jobs", []):
            if job.get("status") == "completed" and job.get("technician_id") is not None:
                jobs.append({"shop_id": wo["shop_id"], "technician_id": job["technician_id"], "week_start": week})
            if job.get("status") == "declined":
                continue
            for li in job.get("line_items", []):
                if li.get("type") == "labor" and li.get("technician_id") is not None:
                    labor.append({"shop_id": wo["shop_id"], "technician_id": li["technician_id"], "week_start": week,
                                  "hours": dec(li.get("hours")), "total": dec(li.get("total"))})

    keys = ["shop_id", "technician_id", "week_start"]
    wo_g = _group(work_orders, keys, {"work_orders_completed": ("week_start", "size"),
                                      "avg_cycle_time_hours": ("cycle", _mean)})
    job_g = _group(jobs, keys, {"jobs_completed": ("week_start", "size")})
    lab_g = _group(labor, keys, {"hours": ("hours", dsum), "labor_revenue": ("total", dsum)})
    frame = wo_g.join(job_g, how="outer").join(lab_g, how="outer").reset_index()

    rows = []
    for r in frame.to_dict("records"):
        rows.append({
            "shop_id": int(r["shop_id"]), "technician_id": int(r["technician_id"]), "week_start": r["week_start"],
            "technician_name": names.get(int(r["technician_id"])),
            "work_orders_completed": 0 if _missing(r.get("work_orders_completed")) else int(r["work_orders_completed"]),
            "jobs_completed": 0 if _missing(r.get("jobs_completed")) else int(r["jobs_completed"]),
            "billed_labor_hours": ZERO if _missing(r.get("hours")) else r["hours"],
            "labor_revenue": cents(ZERO if _missing(r.get("labor_revenue")) else r["labor_revenue"]),
            "avg_cycle_time_hours": None if _missing(r.get("avg_cycle_time_hours")) else float(r["avg_cycle_time_hours"])})
    return pd.DataFrame(rows, columns=THROUGHPUT_COLUMNS)


def inspection_approval_monthly(truth: dict[str, Any]) -> pd.DataFrame:
    live = live_objects(truth)
    per_inspection = []
    for insp in live["inspections"]:
        if insp.get("sent_at") is None or insp.get("technician_id") is None:
            continue
        items = insp.get("items", [])
        recommended = [i for i in items if i.get("condition") in ("yellow", "red")]
        approved = [i for i in recommended if i.get("approval") == "approved"]
        red = [i for i in items if i.get("condition") == "red"]
        per_inspection.append({
            "shop_id": insp["shop_id"], "technician_id": insp["technician_id"], "month_start": month_start(insp["sent_at"]),
            "items": len(items), "recommended": len(recommended), "approved": len(approved),
            "declined": sum(1 for i in recommended if i.get("approval") == "declined"),
            "pending": sum(1 for i in recommended if i.get("approval") == "pending"),
            "red": len(red), "red_approved": sum(1 for i in red if i.get("approval") == "approved"),
            "recommended_amount": dsum(dec(i.get("estimate_amount")) for i in recommended),
            "approved_amount": dsum(dec(i.get("estimate_amount")) for i in approved),
            "with_approval": 1 if approved else 0})
    keys = ["shop_id", "technician_id", "month_start"]
    counts = ("items", "recommended", "approved", "declined", "pending", "red", "red_approved", "with_approval")
    frame = _group(per_inspection, keys, {"inspections_sent": ("items", "size"),
                                          **{c: (c, "sum") for c in counts},
                                          "recommended_amount": ("recommended_amount", dsum),
                                          "approved_amount": ("approved_amount", dsum)}).reset_index()
    rows = []
    for r in frame.to_dict("records"):
        rows.append({
            "shop_id": int(r["shop_id"]), "technician_id": int(r["technician_id"]), "month_start": r["month_start"],
            "inspections_sent": int(r["inspections_sent"]), "items_inspected": int(r["items"]),
            "items_recommended": int(r["recommended"]), "items_approved": int(r["approved"]),
            "items_declined": int(r["declined"]), "items_pending": int(r["pending"]),
            "item_approval_rate": rate(r["approved"], r["recommended"]),
            "red_item_approval_rate": rate(r["red_approved"], r["red"]),
            "recommended_amount": cents(r["recommended_amount"]), "approved_amount": cents(r["approved_amount"]),
            "dollar_approval_rate": rate(r["approved_amount"], r["recommended_amount"]),
            "inspections_with_approval": int(r["with_approval"])})
    return pd.DataFrame(rows, columns=INSPECTION_COLUMNS)


def compute_marts(truth: dict[str, Any]) -> dict[str, pd.DataFrame]:
    return {"fct_revenue_daily": revenue_daily(truth),
            "fct_technician_throughput_weekly": technician_throughput_weekly(truth),
            "fct_inspection_approval_monthly": inspection_approval_monthly(truth)}


# ----------------------------------------------------------------------------------------------
def _group(records: list[dict], keys: list[str], aggregations: dict[str, tuple]) -> pd.DataFrame:
    columns = list(dict.fromkeys(keys + [source for source, _ in aggregations.values()]))
    frame = pd.DataFrame(records, columns=columns)
    if frame.empty:
        return pd.DataFrame(columns=keys + list(aggregations)).set_index(keys)
    grouped = frame.astype({c: object for c in columns if c not in keys}).groupby(keys, sort=True)
    return grouped.agg(**{name: pd.NamedAgg(column=src, aggfunc=fn) for name, (src, fn) in aggregations.items()})


def _mean(values: pd.Series) -> float | None:
    present = [float(v) for v in values if not _missing(v)]
    return sum(present) / len(present) if present else None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _normalise(value: Any, column: str) -> Any:
    if _missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value


def compare_mart(expected: pd.DataFrame, actual_rows: list[dict], keys: Iterable[str]) -> list[str]:
    """Every difference between the reference and the dbt output, as readable lines (empty = equal).
    Money and decimals must be equal exactly (to the cent), counts exactly, floats within 1e-9."""
    keys = list(keys)
    problems = []
    exp = {tuple(_normalise(r[k], k) for k in keys): r for r in expected.to_dict("records")}
    act = {tuple(_normalise(r[k], k) for k in keys): r for r in actual_rows}
    if len(act) != len(actual_rows):
        problems.append(f"dbt output has duplicate keys ({len(actual_rows)} rows, {len(act)} keys)")
    for key in sorted(set(exp) - set(act), key=str):
        problems.append(f"missing row {dict(zip(keys, key))}")
    for key in sorted(set(act) - set(exp), key=str):
        problems.append(f"unexpected row {dict(zip(keys, key))}: {act[key]}")
    for key in sorted(set(exp) & set(act), key=str):
        e_row, a_row = exp[key], act[key]
        missing_columns = set(e_row) - set(a_row)
        if missing_columns:
            problems.append(f"dbt output lacks columns {sorted(missing_columns)}")
            break
        for column in expected.columns:
            if column in keys:
                continue
            e, a = _normalise(e_row[column], column), _normalise(a_row[column], column)
            if e is None or a is None:
                same = e is None and a is None
            elif column in FLOATS:
                same = math.isclose(float(e), float(a), rel_tol=1e-9, abs_tol=1e-9)
            elif column in MONEY:
                same = Decimal(str(a)) == e and Decimal(str(a)) == Decimal(str(a)).quantize(CENT)
            elif column in EXACT_DECIMAL:
                same = Decimal(str(a)) == Decimal(str(e))
            else:
                same = e == a
            if not same:
                problems.append(f"{dict(zip(keys, key))} {column}: expected {e!r}, dbt has {a!r}")
    return problems

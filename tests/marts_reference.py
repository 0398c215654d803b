"""An independent computation of the marts from the emulator's truth dump (the API objects as the
emulator holds them), following the definitions of dbt_project/README.md literally, in pandas and
Python with exact Decimal money. The dbt marts must equal these to the cent (compare_mart).

It shares no code with the dbt project: it reads the API objects (not the raw tables), converts
UTC timestamps to each shop's local time with zoneinfo (not the warehouse's time zone functions),
and states each definition again in Python. The choices the definitions leave open are those of
dbt_project/DECISIONLOG.md:
- a payment counts only while it and its work order exist; a refund only while its payment counts;
  an inspection only while it and its work order (if it has one) exist;
- rows whose technician_id is null are left out of the two per-technician marts;
- on a (shop, date) with payments but no invoices the invoiced sums are 0 and average_repair_order
  is NULL; money is rounded half away from zero to cents at the end; rates and hours averages are
  unrounded floats.

One coherent thing, over 400 lines: one reference computation per mart, all from the same
flattened truth; split, each part would repeat the flattening.
"""
from __future__ import annotations

import collections
import datetime as dt
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable

from zoneinfo import ZoneInfo

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
         "net_collected", "recommended_amount", "approved_amount", "labor_cost", "gross_profit", "presented_amount",
         "sold_amount", "amount", "balance_due", "amount_owed", "recovered_amount", "declined_amount",
         "labor_gross_profit", "total", "amount_paid", "lifetime_revenue"}
EXACT_DECIMAL = {"billed_labor_hours", "labor_hours_sold", "hours_presented", "labor_hours"}
FLOATS = {"avg_cycle_time_hours", "item_approval_rate", "red_item_approval_rate", "dollar_approval_rate",
          "effective_labor_rate", "hours_per_repair_order", "gross_margin", "closing_ratio", "dollar_closing_ratio",
          "show_rate", "cycle_time_hours", "parts_gross_margin", "gross_profit_per_labor_hour", "inspection_rate",
          "hours_sold_ratio", "comeback_rate"}

# The grain of each mart the tests compare (key columns).
MART_KEYS = {
    "fct_revenue_daily": ("shop_id", "date"),
    "fct_technician_throughput_weekly": ("shop_id", "technician_id", "week_start"),
    "fct_inspection_approval_monthly": ("shop_id", "technician_id", "month_start"),
    "fct_shop_kpis_monthly": ("shop_id", "month_start"),
    "fct_service_advisor_monthly": ("shop_id", "service_advisor_id", "month_start"),
    "fct_declined_work": ("source", "source_id"),
    "fct_appointments_monthly": ("shop_id", "month_start"),
    "fct_accounts_receivable": ("work_order_id",),
    "fct_work_orders": ("work_order_id",),
    "fct_jobs": ("job_id",),
    "fct_inspections": ("inspection_id",),
    "dim_shops": ("shop_id",),
    "dim_customers": ("customer_id",),
    "dim_vehicles": ("vehicle_id",),
}


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


class Clock:
    """Each shop's zone, in the marts' order: a per-shop override, the shop's `timezone`, the default."""

    def __init__(self, truth: dict[str, Any], overrides: dict[int, str] | None = None, default: str = "UTC"):
        self.default = ZoneInfo(default)
        self.zones = {s["id"]: ZoneInfo(s["timezone"]) for s in truth["objects"].get("shops", []) if s.get("timezone")}
        self.zones.update({int(k): ZoneInfo(v) for k, v in (overrides or {}).items()})

    def zone(self, shop_id: int) -> ZoneInfo:
        return self.zones.get(shop_id, self.default)

    def date(self, shop_id: int, value: str | None) -> dt.date | None:
        return None if value is None else ts(value).astimezone(self.zone(shop_id)).date()

    def monday(self, shop_id: int, value: str) -> dt.date:
        day = self.date(shop_id, value)
        return day - dt.timedelta(days=day.weekday())

    def month(self, shop_id: int, value: str) -> dt.date:
        return self.date(shop_id, value).replace(day=1)


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
            "employees": list(objects.get("employees", [])), "customers": list(objects.get("customers", [])),
            "vehicles": list(objects.get("vehicles", [])), "appointments": list(objects.get("appointments", [])),
            "shops": list(objects.get("shops", []))}


def revenue_daily(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    clock = clock or Clock(truth)
    live = live_objects(truth)
    invoiced = []
    for wo in live["work_orders"]:
        if wo.get("invoiced_at") is None:
            continue
        parts_cost = dsum(dec(li.get("quantity")) * dec(li.get("unit_cost"))
                          for job in wo.get("jobs", []) if job.get("status") != "declined"
                          for li in job.get("line_items", []) if li.get("type") == "part")
        invoiced.append({"shop_id": wo["shop_id"], "date": clock.date(wo["shop_id"], wo["invoiced_at"]),
                         "labor": dec(wo["labor_total"]), "parts": dec(wo["parts_total"]),
                         "fees": dec(wo["fees_total"]), "subtotal": dec(wo["subtotal"]),
                         "tax": dec(wo["tax_total"]), "total": dec(wo["total"]), "parts_cost": parts_cost})
    payments = [{"shop_id": p["shop_id"], "date": clock.date(p["shop_id"], p["created_at"]), "amount": dec(p["amount"])}
                for p in live["payments"] if p.get("status") == "succeeded"]
    refunds = [{"shop_id": p["shop_id"], "date": clock.date(p["shop_id"], r["created_at"]), "amount": dec(r["amount"])}
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


def technician_throughput_weekly(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    clock = clock or Clock(truth)
    live = live_objects(truth)
    names = {e["id"]: (None if e.get("first_name") is None or e.get("last_name") is None
                       else f"{e['first_name']} {e['last_name']}") for e in live["employees"]}
    work_orders, jobs, labor = [], [], []
    for wo in live["work_orders"]:
        if wo.get("completed_at") is None:
            continue
        week = clock.monday(wo["shop_id"], wo["completed_at"])
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


def inspection_approval_monthly(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    clock = clock or Clock(truth)
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
            "shop_id": insp["shop_id"], "technician_id": insp["technician_id"],
            "month_start": clock.month(insp["shop_id"], insp["sent_at"]),
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


def _name(person: dict | None) -> str | None:
    if person is None or person.get("first_name") is None or person.get("last_name") is None:
        return None
    return f"{person['first_name']} {person['last_name']}"


def _counted_jobs(wo: dict) -> list[dict]:
    return [j for j in wo.get("jobs", []) if j.get("status") != "declined"]


def _labor_items(wo: dict) -> list[dict]:
    return [li for j in _counted_jobs(wo) for li in j.get("line_items", []) if li.get("type") == "labor"]


def _labor_cost(wo: dict, rates: dict[int, Decimal | None]) -> tuple[Decimal, int]:
    """Σ hours × the technician's current hourly_rate (a missing rate counts 0), and how many
    labor items had no rate."""
    cost, missing = ZERO, 0
    for li in _labor_items(wo):
        rate_ = rates.get(li.get("technician_id"))
        if rate_ is None:
            missing += 1
        else:
            cost += dec(li.get("hours")) * rate_
    return cost, missing


def _parts_cost(wo: dict) -> Decimal:
    return dsum(dec(li.get("quantity")) * dec(li.get("unit_cost"))
                for j in _counted_jobs(wo) for li in j.get("line_items", []) if li.get("type") == "part")


def _hourly_rates(live: dict) -> dict[int, Decimal | None]:
    return {e["id"]: (None if e.get("hourly_rate") is None else dec(e["hourly_rate"])) for e in live["employees"]}


SOLD = ("approved", "completed")


def comeback_job_ids(live: dict, clock: Clock) -> set[int]:
    """Jobs sold on an invoiced work order whose vehicle had a sold job of the same name on a
    different work order invoiced 1 to 90 local days before this one (each work order's local date)."""
    sold = []  # (vehicle, name, work order, invoiced local date, job id)
    for w in live["work_orders"]:
        if w.get("invoiced_at") is None or w.get("vehicle_id") is None:
            continue
        on = clock.date(w["shop_id"], w["invoiced_at"])
        sold += [(w["vehicle_id"], name_key(j.get("name")), w["id"], on, j["id"])
                 for j in w.get("jobs", []) if j.get("status") in SOLD]
    by_key: dict[tuple, list[tuple]] = {}
    for s in sold:
        by_key.setdefault(s[:2], []).append(s)
    return {this[4] for this in sold if this[1] is not None
            for other in by_key[this[:2]] if other[2] != this[2] and 1 <= (this[3] - other[3]).days <= 90}


def shop_kpis_monthly(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    clock = clock or Clock(truth)
    live = live_objects(truth)
    rates = _hourly_rates(live)
    invoiced = [w for w in live["work_orders"] if w.get("invoiced_at") is not None]
    # every customer's local invoice dates at this shop, oldest first
    history: dict[tuple, list[dt.date]] = {}
    for w in invoiced:
        if w.get("customer_id") is not None:
            history.setdefault((w["shop_id"], w["customer_id"]), []).append(clock.date(w["shop_id"], w["invoiced_at"]))
    inspected = {i.get("work_order_id") for i in live["inspections"]}
    comebacks = comeback_job_ids(live, clock)
    months: dict[tuple, dict] = {}
    for w in invoiced:
        key = (w["shop_id"], clock.month(w["shop_id"], w["invoiced_at"]))
        m = months.setdefault(key, {"n": 0, "subtotal": ZERO, "labor": ZERO, "parts": ZERO, "hours": ZERO,
                                    "labor_cost": ZERO, "missing": 0, "parts_cost": ZERO, "customers": {},
                                    "inspected": 0, "presented": ZERO, "sold": 0, "comebacks": 0})
        m["n"] += 1
        m["subtotal"] += dec(w["subtotal"])
        m["labor"] += dec(w["labor_total"])
        m["parts"] += dec(w["parts_total"])
        m["hours"] += dsum(dec(li.get("hours")) for li in _labor_items(w))
        cost, missing = _labor_cost(w, rates)
        m["labor_cost"] += cost
        m["missing"] += missing
        m["parts_cost"] += _parts_cost(w)
        m["inspected"] += w["id"] in inspected
        m["presented"] += dsum(dec(li.get("hours")) for j in w.get("jobs", []) for li in j.get("line_items", [])
                               if li.get("type") == "labor")
        sold = [j for j in w.get("jobs", []) if j.get("status") in SOLD]
        m["sold"] += len(sold)
        m["comebacks"] += sum(1 for j in sold if j["id"] in comebacks)
        if w.get("customer_id") is None:
            continue
        month = key[1]
        before = [d for d in history[(w["shop_id"], w["customer_id"])] if d < month]
        if not before:
            status = "new"  # the first ever invoice falls in this month
        elif (month - max(before)).days <= 365:
            status = "returning"
        else:
            status = "reactivated"
        m["customers"][w["customer_id"]] = status

    # the shop-wide ratios, each in its own event's month
    decided: dict[tuple, list[Decimal]] = {}
    for w in live["work_orders"]:
        s = decided.setdefault((w["shop_id"], clock.month(w["shop_id"], w["created_at"])), [ZERO, ZERO])
        for j in w.get("jobs", []):
            if j.get("status") in SOLD:
                s[0] += dec(j.get("total"))
            elif j.get("status") == "declined":
                s[1] += dec(j.get("total"))
    items: dict[tuple, list[int]] = {}
    for insp in live["inspections"]:
        if insp.get("sent_at") is None:
            continue
        s = items.setdefault((insp["shop_id"], clock.month(insp["shop_id"], insp["sent_at"])), [0, 0])
        recommended = [i for i in insp.get("items", []) if i.get("condition") in ("yellow", "red")]
        s[0] += sum(1 for i in recommended if i.get("approval") == "approved")
        s[1] += len(recommended)
    shows = {(r["shop_id"], r["month_start"]): r["show_rate"]
             for r in appointments_monthly(truth, clock).to_dict("records")}

    rows = []
    for (shop_id, month), m in sorted(months.items()):
        statuses = collections.Counter(m["customers"].values())
        profit = m["subtotal"] - m["labor_cost"] - m["parts_cost"]
        sold_amount, declined_amount = decided.get((shop_id, month), [ZERO, ZERO])
        approved, recommended = items.get((shop_id, month), [0, 0])
        rows.append({
            "shop_id": shop_id, "month_start": month, "car_count": m["n"],
            "invoiced_revenue": cents(m["subtotal"]), "average_repair_order": cents(m["subtotal"] / m["n"]),
            "labor_revenue": cents(m["labor"]), "parts_revenue": cents(m["parts"]), "labor_hours_sold": m["hours"],
            "effective_labor_rate": rate(m["labor"], m["hours"]), "hours_per_repair_order": rate(m["hours"], m["n"]),
            "labor_cost": cents(m["labor_cost"]), "labor_cost_complete": m["missing"] == 0,
            "parts_cost": cents(m["parts_cost"]),
            "gross_profit": cents(profit), "gross_margin": rate(profit, m["subtotal"]),
            "labor_gross_profit": cents(m["labor"] - m["labor_cost"]),
            "parts_gross_profit": cents(m["parts"] - m["parts_cost"]),
            "parts_gross_margin": rate(m["parts"] - m["parts_cost"], m["parts"]),
            "gross_profit_per_labor_hour": rate(profit, m["hours"]),
            "customers_served": len(m["customers"]), "new_customers": statuses["new"],
            "returning_customers": statuses["returning"], "reactivated_customers": statuses["reactivated"],
            "work_orders_inspected": m["inspected"], "inspection_rate": rate(m["inspected"], m["n"]),
            "hours_presented": m["presented"], "hours_sold_ratio": rate(m["hours"], m["presented"]),
            "jobs_sold": m["sold"], "comeback_jobs": m["comebacks"], "comeback_rate": rate(m["comebacks"], m["sold"]),
            "dollar_closing_ratio": rate(sold_amount, sold_amount + declined_amount),
            "item_approval_rate": rate(approved, recommended),
            "show_rate": shows.get((shop_id, month))})
    return pd.DataFrame(rows)


def jobs(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    """fct_jobs: one row per job of a live work order; costs unrounded (compared exactly)."""
    clock = clock or Clock(truth)
    live = live_objects(truth)
    rates = _hourly_rates(live)
    comebacks = comeback_job_ids(live, clock)
    recommending: dict[int, tuple] = {}  # job id -> (order, item id)
    for insp in live["inspections"]:
        responded = ts(insp.get("responded_at"))
        for item in insp.get("items", []):
            if item.get("job_id") is None:
                continue
            order = (responded is None, -(responded.timestamp()) if responded else 0, item["id"])
            if item["job_id"] not in recommending or order < recommending[item["job_id"]][0]:
                recommending[item["job_id"]] = (order, item["id"])
    rows = []
    for w in live["work_orders"]:
        for j in w.get("jobs", []):
            labor = [li for li in j.get("line_items", []) if li.get("type") == "labor"]
            cost = dsum(dec(li.get("hours")) * rates[li["technician_id"]] for li in labor
                        if rates.get(li.get("technician_id")) is not None)
            rows.append({"job_id": j["id"], "shop_id": w["shop_id"], "work_order_id": w["id"],
                         "vehicle_id": w.get("vehicle_id"), "job_status": j.get("status"),
                         "is_sold": j.get("status") in SOLD, "total": cents(dec(j.get("total"))),
                         "labor_hours": dsum(dec(li.get("hours")) for li in labor), "labor_cost": cost,
                         "labor_cost_complete": all(rates.get(li.get("technician_id")) is not None for li in labor),
                         "parts_cost": dsum(dec(li.get("quantity")) * dec(li.get("unit_cost"))
                                            for li in j.get("line_items", []) if li.get("type") == "part"),
                         "work_order_created_on": clock.date(w["shop_id"], w["created_at"]),
                         "work_order_invoiced_on": clock.date(w["shop_id"], w.get("invoiced_at")),
                         "inspection_item_id": recommending[j["id"]][1] if j["id"] in recommending else None,
                         "is_comeback": j["id"] in comebacks})
    frame = pd.DataFrame(rows)
    frame.attrs["exact"] = {"labor_cost", "parts_cost"}  # unrounded decimals, not cents
    return frame


def inspections(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    """fct_inspections: one row per live inspection, sent or not."""
    clock = clock or Clock(truth)
    rows = []
    for insp in live_objects(truth)["inspections"]:
        items = insp.get("items", [])
        recommended = [i for i in items if i.get("condition") in ("yellow", "red")]
        approved = [i for i in recommended if i.get("approval") == "approved"]
        rows.append({"inspection_id": insp["id"], "shop_id": insp["shop_id"], "work_order_id": insp.get("work_order_id"),
                     "technician_id": insp.get("technician_id"), "sent_on": clock.date(insp["shop_id"], insp.get("sent_at")),
                     "responded_on": clock.date(insp["shop_id"], insp.get("responded_at")),
                     "is_sent": insp.get("sent_at") is not None, "items_inspected": len(items),
                     "items_recommended": len(recommended), "items_approved": len(approved),
                     "items_declined": sum(1 for i in recommended if i.get("approval") == "declined"),
                     "items_pending": sum(1 for i in recommended if i.get("approval") == "pending"),
                     "red_items": sum(1 for i in items if i.get("condition") == "red"),
                     "red_items_approved": sum(1 for i in items if i.get("condition") == "red"
                                               and i.get("approval") == "approved"),
                     "recommended_amount": cents(dsum(dec(i.get("estimate_amount")) for i in recommended)),
                     "approved_amount": cents(dsum(dec(i.get("estimate_amount")) for i in approved))})
    return pd.DataFrame(rows)


def service_advisor_monthly(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    clock = clock or Clock(truth)
    live = live_objects(truth)
    names = {e["id"]: _name(e) for e in live["employees"]}
    groups: dict[tuple, dict] = {}
    for w in live["work_orders"]:
        key = (w["shop_id"], w.get("service_advisor_id"), clock.month(w["shop_id"], w["created_at"]))
        g = groups.setdefault(key, {"n": 0, "presented": 0, "sold": 0, "declined": 0, "p_amount": ZERO,
                                    "s_amount": ZERO, "d_amount": ZERO})
        g["n"] += 1
        for j in w.get("jobs", []):
            g["presented"] += 1
            g["p_amount"] += dec(j.get("total"))
            if j.get("status") in ("approved", "completed"):
                g["sold"] += 1
                g["s_amount"] += dec(j.get("total"))
            elif j.get("status") == "declined":
                g["declined"] += 1
                g["d_amount"] += dec(j.get("total"))
    rows = []
    for (shop_id, advisor, month), g in groups.items():
        rows.append({
            "shop_id": shop_id, "service_advisor_id": advisor, "month_start": month,
            "service_advisor_name": names.get(advisor), "work_orders_written": g["n"],
            "jobs_presented": g["presented"], "jobs_sold": g["sold"], "jobs_declined": g["declined"],
            "closing_ratio": rate(g["sold"], g["sold"] + g["declined"]),
            "presented_amount": cents(g["p_amount"]), "sold_amount": cents(g["s_amount"]),
            "declined_amount": cents(g["d_amount"]),
            # decided work only, like closing_ratio
            "dollar_closing_ratio": rate(g["s_amount"], g["s_amount"] + g["d_amount"])})
    return pd.DataFrame(rows)


def name_key(name: str | None) -> str | None:
    """A job or item name as fct_declined_work compares them: case ignored, surrounding whitespace
    dropped, runs of whitespace one space."""
    return None if name is None else re.sub(r"[ \t\n\v\f\r]+", " ", name).strip(" ").lower()


def declined_work(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    """fct_declined_work as METRICS defines it, walked object by object: each piece of declined
    work once, with the item behind a declined job, and whether a later visit sold it."""
    clock = clock or Clock(truth)
    live = live_objects(truth)
    work_orders = {w["id"]: w for w in live["work_orders"]}
    customers = {c["id"]: c for c in live["customers"]}
    jobs = {j["id"]: (j, w) for w in live["work_orders"] for j in w.get("jobs", [])}
    created_on = {w["id"]: clock.date(w["shop_id"], w["created_at"]) for w in live["work_orders"]}
    visits: dict[int, list[dict]] = {}
    for w in live["work_orders"]:
        if w.get("vehicle_id") is not None:
            visits.setdefault(w["vehicle_id"], []).append(w)

    declined_items = []  # (item, inspection)
    for insp in live["inspections"]:
        for item in insp.get("items", []):
            if item.get("approval") == "declined":
                declined_items.append((item, insp))
    behind: dict[int, tuple[dict, dict]] = {}  # declined job id -> the item behind it
    for item, insp in declined_items:
        named = jobs.get(item.get("job_id"))
        if named is None or named[0].get("status") != "declined":
            continue
        best = behind.get(named[0]["id"])

        def order(pair):  # the latest response first (none last), then the lowest id
            responded = ts(pair[1].get("responded_at"))
            return (responded is None, -(responded.timestamp()) if responded else 0, pair[0]["id"])
        if best is None or order((item, insp)) < order(best):
            behind[named[0]["id"]] = (item, insp)

    def recovery(vehicle_id, declined_on, names):
        if vehicle_id is None or declined_on is None:
            return None
        candidates = [(ts(w["created_at"]), w["id"], j["id"], j)
                      for w in visits.get(vehicle_id, []) if created_on[w["id"]] > declined_on
                      for j in w.get("jobs", [])
                      if j.get("status") in ("approved", "completed") and name_key(j.get("name")) in names]
        return min(candidates, key=lambda c: c[:3])[3] if candidates else None

    def row(source, source_id, shop_id, wo_id, item_id, customer_id, vehicle_id, description, declined_on, amount,
            names):
        customer = customers.get(customer_id)
        sold = recovery(vehicle_id, declined_on, {n for n in names if n is not None})
        returned = vehicle_id is not None and declined_on is not None and any(
            created_on[w["id"]] > declined_on for w in visits.get(vehicle_id, []))
        return {"source": source, "source_id": source_id, "shop_id": shop_id, "work_order_id": wo_id,
                "inspection_item_id": item_id, "customer_id": customer_id, "vehicle_id": vehicle_id,
                "description": description, "declined_on": declined_on,
                "amount": cents(dec(amount)) if amount is not None else None,
                "customer_name": _name(customer),
                "customer_phone": customer.get("phone") if customer else None,
                "customer_email": customer.get("email") if customer else None,
                "recovered": sold is not None,
                "recovered_amount": cents(dec(sold.get("total"))) if sold is not None else None,
                "vehicle_returned": returned}

    rows = []
    for w in live["work_orders"]:
        for j in w.get("jobs", []):
            if j.get("status") != "declined":
                continue
            item, insp = behind.get(j["id"], (None, None))
            responded = clock.date(insp["shop_id"], insp.get("responded_at")) if insp else None
            rows.append(row("job", j["id"], w["shop_id"], w["id"], item["id"] if item else None, w.get("customer_id"),
                            w.get("vehicle_id"), j.get("name"), responded or created_on[w["id"]], j.get("total"),
                            [name_key(j.get("name")), name_key(item.get("name")) if item else None]))
    for item, insp in declined_items:
        named = jobs.get(item.get("job_id"))
        if named is not None and named[0].get("status") != "pending":
            continue  # the declined job's row carries it, or it was sold after all
        wo = work_orders.get(insp.get("work_order_id"))
        vehicle = insp.get("vehicle_id") if insp.get("vehicle_id") is not None else (wo or {}).get("vehicle_id")
        responded = clock.date(insp["shop_id"], insp.get("responded_at"))
        rows.append(row("inspection_item", item["id"], insp["shop_id"], insp.get("work_order_id"), item["id"],
                        (wo or {}).get("customer_id"), vehicle, item.get("name"),
                        responded or (created_on[wo["id"]] if wo else None), item.get("estimate_amount"),
                        [name_key(item.get("name")), name_key(named[0].get("name")) if named else None]))
    return pd.DataFrame(rows)


def appointments_monthly(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    clock = clock or Clock(truth)
    live = live_objects(truth)
    invoiced = {w["id"] for w in live["work_orders"] if w.get("invoiced_at") is not None}
    groups: dict[tuple, collections.Counter] = {}
    for a in live["appointments"]:
        if a.get("starts_at") is None:
            continue
        counter = groups.setdefault((a["shop_id"], clock.month(a["shop_id"], a["starts_at"])), collections.Counter())
        counter["all"] += 1
        counter[a.get("status")] += 1
        counter["converted"] += a.get("work_order_id") in invoiced
    rows = []
    for (shop_id, month), c in groups.items():
        showed = c["arrived"] + c["completed"]
        rows.append({"shop_id": shop_id, "month_start": month, "appointments": c["all"], "scheduled": c["scheduled"],
                     "showed": showed, "no_shows": c["no_show"], "cancelled": c["cancelled"],
                     "show_rate": rate(showed, showed + c["no_show"]), "converted": c["converted"]})
    return pd.DataFrame(rows)


def accounts_receivable(truth: dict[str, Any], as_of: dt.date | dict[int, dt.date],
                        clock: Clock | None = None) -> pd.DataFrame:
    """as_of: the dbt var as_of_date, or each shop's day ({shop_id: date}), for a build with the var's
    default (today in each shop's zone): read the days that build used, since a shop's midnight may
    fall between the build and this computation.
    amount_owed = total - succeeded payments created on or before as_of (local dates); refunds
    never reopen an invoice, and the API's balance_due is not read for the amount."""
    clock = clock or Clock(truth)
    live = live_objects(truth)
    payments: dict[int, list[dict]] = {}
    for p in live["payments"]:
        if p.get("status") == "succeeded":
            payments.setdefault(p["work_order_id"], []).append(p)
    rows = []
    for w in live["work_orders"]:
        if w.get("invoiced_at") is None:
            continue
        invoiced_on = clock.date(w["shop_id"], w["invoiced_at"])
        as_of_here = as_of[w["shop_id"]] if isinstance(as_of, dict) else as_of
        if invoiced_on > as_of_here:
            continue
        paid = dsum(dec(p["amount"]) for p in payments.get(w["id"], [])
                    if clock.date(p["shop_id"], p["created_at"]) <= as_of_here)
        owed = dec(w.get("total")) - paid
        if owed <= 0:
            continue
        age = (as_of_here - invoiced_on).days
        bucket = "0-30" if age <= 30 else "31-60" if age <= 60 else "61-90" if age <= 90 else "90+"
        rows.append({"work_order_id": w["id"], "shop_id": w["shop_id"], "customer_id": w.get("customer_id"),
                     "invoiced_on": invoiced_on, "as_of_date": as_of_here, "age_days": age, "age_bucket": bucket,
                     "total": cents(dec(w.get("total"))), "amount_paid": cents(paid), "amount_owed": cents(owed),
                     "balance_due": cents(dec(w.get("balance_due")))})
    return pd.DataFrame(rows)


def work_orders(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    clock = clock or Clock(truth)
    live = live_objects(truth)
    rates = _hourly_rates(live)
    rows = []
    for w in live["work_orders"]:
        cost, missing = _labor_cost(w, rates)
        cycle = None
        if w.get("started_at") is not None and w.get("completed_at") is not None:
            cycle = (ts(w["completed_at"]) - ts(w["started_at"])).total_seconds() / 3600
        rows.append({"work_order_id": w["id"], "shop_id": w["shop_id"],
                     "shop_timezone": clock.zone(w["shop_id"]).key,
                     "created_on": clock.date(w["shop_id"], w["created_at"]),
                     "completed_on": clock.date(w["shop_id"], w.get("completed_at")),
                     "invoiced_on": clock.date(w["shop_id"], w.get("invoiced_at")),
                     "cycle_time_hours": cycle, "labor_cost": cents(cost), "is_labor_cost_complete": missing == 0,
                     "parts_cost": cents(_parts_cost(w)),
                     "billed_labor_hours": dsum(dec(li.get("hours")) for li in _labor_items(w))})
    return pd.DataFrame(rows)


def dim_shops(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    clock = clock or Clock(truth)
    return pd.DataFrame([{"shop_id": s["id"], "timezone": clock.zone(s["id"]).key}
                         for s in live_objects(truth)["shops"]])


def _visits(truth: dict[str, Any], clock: Clock, key: str) -> dict[int, list[dict]]:
    visits: dict[int, list[dict]] = {}
    for w in live_objects(truth)["work_orders"]:
        if w.get("invoiced_at") is not None and w.get(key) is not None:
            visits.setdefault(w[key], []).append(w)
    return visits


def dim_customers(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    clock = clock or Clock(truth)
    visits = _visits(truth, clock, "customer_id")
    rows = []
    for c in live_objects(truth)["customers"]:
        mine = visits.get(c["id"], [])
        dates = [clock.date(w["shop_id"], w["invoiced_at"]) for w in mine]
        rows.append({"customer_id": c["id"], "customer_name": _name(c),
                     "first_visit_on": min(dates) if dates else None, "last_visit_on": max(dates) if dates else None,
                     "visits": len(mine), "lifetime_revenue": cents(dsum(dec(w["subtotal"]) for w in mine))})
    return pd.DataFrame(rows)


def dim_vehicles(truth: dict[str, Any], clock: Clock | None = None) -> pd.DataFrame:
    clock = clock or Clock(truth)
    visits = _visits(truth, clock, "vehicle_id")
    rows = []
    for v in live_objects(truth)["vehicles"]:
        mine = visits.get(v["id"], [])
        latest = max(mine, key=lambda w: (ts(w["invoiced_at"]), w["id"])) if mine else None
        rows.append({"vehicle_id": v["id"],
                     "last_service_on": max(clock.date(w["shop_id"], w["invoiced_at"]) for w in mine) if mine else None,
                     "last_mileage": latest.get("mileage_in") if latest else None, "visits": len(mine)})
    return pd.DataFrame(rows)


def compute_marts(truth: dict[str, Any], as_of: dt.date | dict[int, dt.date] | None = None, overrides: dict[int, str] | None = None,
                  default_timezone: str = "UTC") -> dict[str, pd.DataFrame]:
    """Every mart the tests compare. `as_of` (the dbt var as_of_date, or {shop_id: date}) adds
    accounts receivable."""
    clock = Clock(truth, overrides, default_timezone)
    marts = {"fct_revenue_daily": revenue_daily(truth, clock),
             "fct_technician_throughput_weekly": technician_throughput_weekly(truth, clock),
             "fct_inspection_approval_monthly": inspection_approval_monthly(truth, clock),
             "fct_shop_kpis_monthly": shop_kpis_monthly(truth, clock),
             "fct_service_advisor_monthly": service_advisor_monthly(truth, clock),
             "fct_declined_work": declined_work(truth, clock),
             "fct_appointments_monthly": appointments_monthly(truth, clock),
             "fct_work_orders": work_orders(truth, clock),
             "fct_jobs": jobs(truth, clock),
             "fct_inspections": inspections(truth, clock),
             "dim_shops": dim_shops(truth, clock),
             "dim_customers": dim_customers(truth, clock),
             "dim_vehicles": dim_vehicles(truth, clock)}
    if as_of is not None:
        marts["fct_accounts_receivable"] = accounts_receivable(truth, as_of, clock)
    return marts


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
    exact = expected.attrs.get("exact", set())  # unrounded decimals a frame marks as compared exactly
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
            elif column in EXACT_DECIMAL or column in exact:
                same = Decimal(str(a)) == Decimal(str(e))
            elif column in MONEY:
                same = Decimal(str(a)) == e and Decimal(str(a)) == Decimal(str(a)).quantize(CENT)
            else:
                same = e == a
            if not same:
                problems.append(f"{dict(zip(keys, key))} {column}: expected {e!r}, dbt has {a!r}")
    return problems

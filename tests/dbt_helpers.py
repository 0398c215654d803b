"""Helpers for the dbt tests: a small synthetic AutoSync world shaped like the emulator's truth dump
(API objects by resource), a loader that writes it as the connector's raw tables into
DuckDB or Postgres, and readers for the marts.

The synthetic world lets the dbt project be tested on its own and on purpose-built edge cases
(week and day boundaries, half-cent averages, declined jobs, refunds, deleted records); the
end-to-end tests in test_marts_*.py run the real emulator and connector instead.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import re
import uuid
from decimal import Decimal
from typing import Any

import source_helpers
from autosync_source.settings import RESOURCE_NAMES, raw_tables
from pipelines.dbt_runner import DBT_PROJECT_DIR, MAIN_MARTS  # noqa: F401 - the tests read them here

PG_DSN = dict(host="127.0.0.1", port=5432, user="postgres", dbname="test")


# ----------------------------------------------------------------------------------------------
# Raw table layout: the tables and columns the connector declares (autosync_source/settings.py),
# as the SQL types the loaders below create them with, plus dlt's `_dlt_load_id` (the incremental
# models find what changed by it). dlt's other columns (_dlt_id, _dlt_parent_id, _dlt_list_idx) are
# left out: no model reads them.
ID, TXT, BOOL, TS = "bigint", "text", "boolean", "timestamptz"
_SQL_TYPES = {"bigint": ID, "text": TXT, "bool": BOOL, "timestamp": TS}


def sql_type(hint: dict[str, Any]) -> str:
    """The SQL type of a connector column hint (dlt's data_type, precision and scale)."""
    if hint["data_type"] == "decimal":
        return f"decimal({hint['precision']},{hint['scale']})"
    return _SQL_TYPES[hint["data_type"]]


def decimal_of(sql: str) -> tuple[int, int] | None:
    """(precision, scale) of a `decimal(p,s)` type, else None."""
    if not sql.startswith("decimal("):
        return None
    precision, scale = sql[len("decimal("):-1].split(",")
    return int(precision), int(scale)


LOAD_ID = "_dlt_load_id"
RAW_TABLES: dict[str, dict[str, str]] = {
    table: {**{column: sql_type(hint) for column, hint in columns.items()}, LOAD_ID: TXT}
    for table, columns in raw_tables().items()}
FIRST_LOAD_ID = "1700000000.000001"  # what the loaders below stamp on every row (a dlt load id)
TOP_LEVEL = RESOURCE_NAMES

SHOP_ZONES = ("America/Phoenix", "America/New_York", "America/Chicago")

# the dbt models built incrementally (dbt_project/macros/incremental.sql)
INCREMENTAL_MODELS = ("int_work_orders_localized", "int_line_items_enriched", "fct_work_orders", "fct_line_items",
                      "fct_revenue_daily", "fct_technician_throughput_weekly")
_WINDOW = re.compile(r"/\* autosync incremental window: (\{.*?\}) \*/")


def incremental_window(compiled_code: str) -> dict | None:
    """The window an incremental model's build used ({full, since, upto, touched, keys}): the model
    writes it into its compiled SQL. None when the SQL holds none."""
    found = _WINDOW.search(compiled_code or "")
    return json.loads(found.group(1)) if found else None


def iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def money(x: float | Decimal) -> float:
    return float(Decimal(str(x)).quantize(Decimal("0.01")))


# ----------------------------------------------------------------------------------------------
def make_world(seed: int = 7, shops: int = 3, work_orders: int = 40,
               clock: dt.datetime = dt.datetime(2025, 3, 20, 12, 0, 0, tzinfo=dt.timezone.utc)) -> dict[str, Any]:
    """A truth dump (plus `_deleted_objects`, the last known state of what was deleted) with the
    cases the marts must get right: declined jobs, partial and failed payments, refunds, unsent and
    unanswered inspections, records deleted at the source, work orders without a technician, events
    a second either side of midnight and of the Monday week boundary, averages that end in half a cent."""
    rnd = random.Random(seed)
    ids: dict[str, int] = {}

    def next_id(kind: str) -> int:
        ids[kind] = ids.get(kind, 0) + 1
        return ids[kind]

    numbers: dict[int, int] = {}

    def next_number(shop_id: int) -> int:
        """A work order's number: an integer counted per shop from 1001, as the emulator's are."""
        numbers[shop_id] = numbers.get(shop_id, 1000) + 1
        return numbers[shop_id]

    objects: dict[str, list] = {k: [] for k in TOP_LEVEL}
    deleted_objects: dict[str, list] = {k: [] for k in TOP_LEVEL}
    start = clock - dt.timedelta(days=45)

    def when(days_ago_max: float = 45) -> dt.datetime:
        t = clock - dt.timedelta(seconds=rnd.randint(3600, int(days_ago_max * 86400)))
        return t.replace(microsecond=0)

    for s in range(shops):
        shop_id = next_id("shops")
        created = start - dt.timedelta(days=400)
        objects["shops"].append({
            "id": shop_id, "name": f"Shop {shop_id}", "slug": f"shop-{shop_id}", "status": "active",
            "phone": f"555-010{shop_id}", "email": f"shop{shop_id}@example.com",
            "address": {"street": f"{shop_id} Main St", "city": "Springfield", "state": "IL", "zip": "62701"},
            # three zones: one without DST, two with (the world spans the March DST change)
            "timezone": SHOP_ZONES[s % len(SHOP_ZONES)],
            "settings": {"tax_rate": [7.25, 8.0, 6.5][s % 3], "labor_rate": 120.0 + 10 * s},
            "created_at": iso(created), "updated_at": iso(created)})
        techs, advisors = [], []
        for e in range(5):
            emp_id = next_id("employees")
            role = "technician" if e < 3 else ("service_advisor" if e == 3 else "manager")
            (techs if role == "technician" else advisors if role == "service_advisor" else []).append(emp_id)
            objects["employees"].append({
                "id": emp_id, "shop_id": shop_id, "first_name": f"Emp{emp_id}", "last_name": f"Lastname{emp_id}",
                "email": f"e{emp_id}@example.com", "role": role, "active": e != 2,
                "hourly_rate": money(25 + e * 3.5), "created_at": iso(created), "updated_at": iso(created)})
        parts = []
        for p in range(4):
            part_id = next_id("inventory")
            cost = money(rnd.uniform(5, 150))
            parts.append((part_id, f"P-{part_id:05d}", cost))
            objects["inventory"].append({
                "id": part_id, "shop_id": shop_id, "part_number": f"P-{part_id:05d}", "name": f"Part {part_id}",
                "brand": "Acme", "quantity_on_hand": rnd.randint(0, 40), "reorder_point": 5,
                "unit_cost": cost, "unit_price": money(cost * 1.6), "location": f"Bin {p}",
                "created_at": iso(created), "updated_at": iso(created)})
        customers = []
        for c in range(max(3, work_orders // 3)):
            cust_id = next_id("customers")
            t = when()
            cust = {"id": cust_id, "shop_id": shop_id, "first_name": f"Cust{cust_id}", "last_name": "Doe",
                    "email": f"c{cust_id}@example.com", "phone": "555-0199", "is_business": c % 5 == 0,
                    "company_name": f"Fleet {cust_id}" if c % 5 == 0 else None,
                    "address": {"street": "1 Elm", "city": "Springfield", "state": "IL", "zip": "62702"},
                    "notes": None, "created_at": iso(t), "updated_at": iso(t)}
            veh = {"id": next_id("vehicles"), "shop_id": shop_id, "customer_id": cust_id, "year": 2015 + c % 8,
                   "make": "Ford", "model": "F-150", "trim": "XL", "vin": f"1FTEW1EP{cust_id:09d}",
                   "mileage": 50000 + c * 1000, "license_plate": f"ABC{cust_id:04d}",
                   "created_at": iso(t), "updated_at": iso(t)}
            objects["vehicles"].append(veh)
            if c == 1:  # a customer deleted at the source (their vehicle and work orders stay)
                deleted_objects["customers"].append(cust)
            else:
                objects["customers"].append(cust)
            customers.append((cust_id, veh["id"]))
        tax_rate = Decimal(str(objects["shops"][-1]["settings"]["tax_rate"]))

        for w in range(work_orders):
            wo_id = next_id("work_orders")
            cust_id, veh_id = customers[w % len(customers)]
            created = when(40)
            tech = None if w % 17 == 16 else rnd.choice(techs)
            status = rnd.choices(["draft", "in_progress", "waiting_parts", "completed", "invoiced"],
                                 [1, 2, 1, 2, 6])[0]
            started = created + dt.timedelta(minutes=rnd.randint(10, 600)) if status != "draft" else None
            completed = invoiced = None
            if status in ("completed", "invoiced"):
                completed = started + dt.timedelta(seconds=rnd.randint(1800, 5 * 86400))
                # Boundaries: a second before/after midnight UTC and the ISO week start (Monday 00:00).
                if w % 7 == 0:
                    monday = (completed - dt.timedelta(days=completed.weekday())).replace(hour=0, minute=0, second=0)
                    completed = monday - dt.timedelta(seconds=1) if w % 14 == 0 else monday
                    completed = max(completed, started + dt.timedelta(seconds=1))
            if status == "invoiced":
                invoiced = completed + dt.timedelta(seconds=rnd.randint(60, 2 * 86400))
                if w % 5 == 0:
                    invoiced = invoiced.replace(hour=23, minute=59, second=59)
                if invoiced > clock:
                    invoiced = clock - dt.timedelta(seconds=1)
            jobs, labor_total, parts_total, fees_total, taxable_base = [], Decimal(0), Decimal(0), Decimal(0), Decimal(0)
            for j in range(rnd.randint(1, 3) if w % 11 else 0):
                job_id = next_id("jobs")
                job_tech = rnd.choice(techs) if (w + j) % 4 else tech
                job_status = rnd.choices(["pending", "approved", "declined", "completed"], [1, 2, 2, 4])[0]
                if status in ("completed", "invoiced") and job_status in ("pending", "approved"):
                    job_status = "completed"
                items, j_labor, j_parts = [], Decimal(0), Decimal(0)
                for k in range(rnd.randint(1, 4)):
                    li_id = next_id("line_items")
                    kind = ["labor", "part", "part", "fee"][k % 4] if k else "labor"
                    li = {"id": li_id, "job_id": job_id, "type": kind, "description": f"{kind} {li_id}",
                          "technician_id": None, "hours": None, "rate": None, "part_id": None, "part_number": None,
                          "quantity": None, "unit_cost": None, "unit_price": None, "taxable": kind != "labor"}
                    if kind == "labor":
                        hours = Decimal(rnd.choice(["0.5", "1.0", "1.25", "2.0", "3.5", "0.3"]))
                        rate = Decimal(str(objects["shops"][-1]["settings"]["labor_rate"]))
                        total = (hours * rate).quantize(Decimal("0.01"))
                        li.update(technician_id=job_tech if k % 3 else (job_tech or rnd.choice(techs)),
                                  hours=float(hours), rate=float(rate), total=float(total))
                        j_labor += total
                    elif kind == "part":
                        part_id, pn, cost = rnd.choice(parts)
                        qty = Decimal(rnd.choice(["1", "2", "4", "1.5"]))
                        price = (Decimal(str(cost)) * Decimal("1.6")).quantize(Decimal("0.01"))
                        total = (qty * price).quantize(Decimal("0.01"))
                        li.update(part_id=part_id, part_number=pn, quantity=float(qty), unit_cost=cost,
                                  unit_price=float(price), total=float(total))
                        j_parts += total
                        taxable_base += total if job_status != "declined" else 0
                    else:
                        fee = Decimal(rnd.choice(["4.99", "12.50", "25.00"]))
                        li.update(quantity=1.0, unit_cost=0.0, unit_price=float(fee), total=float(fee))
                        if job_status != "declined":
                            fees_total += fee
                            taxable_base += fee
                    items.append(li)
                jobs.append({"id": job_id, "work_order_id": wo_id, "name": f"Job {job_id}", "technician_id": job_tech,
                             "status": job_status,
                             "approved_at": iso(created + dt.timedelta(hours=1)) if job_status in ("approved", "completed") else None,
                             "labor_total": float(j_labor), "parts_total": float(j_parts),
                             "total": float(j_labor + j_parts), "line_items": items})
                if job_status != "declined":
                    labor_total += j_labor
                    parts_total += j_parts
            subtotal = labor_total + parts_total + fees_total
            if w % 9 == 4 and status == "invoiced":
                # Exact half-cent averages: two work orders invoiced the same second with an odd cent sum.
                pass
            tax = (taxable_base * tax_rate / 100).quantize(Decimal("0.01"))
            total = subtotal + tax
            wo = {"id": wo_id, "shop_id": shop_id, "number": next_number(shop_id), "customer_id": cust_id,
                  "vehicle_id": veh_id, "technician_id": tech, "service_advisor_id": advisors[0], "status": status,
                  "notes": None, "mileage_in": 50000 + w, "labor_total": float(labor_total),
                  "parts_total": float(parts_total), "fees_total": float(fees_total), "subtotal": float(subtotal),
                  "tax_total": float(tax), "total": float(total), "amount_paid": 0.0, "balance_due": float(total),
                  "started_at": iso(started), "completed_at": iso(completed), "invoiced_at": iso(invoiced),
                  "created_at": iso(created), "updated_at": iso(invoiced or completed or started or created),
                  "jobs": jobs, "payments": []}
            payments = []
            if status == "invoiced" and total > 0:
                paid = Decimal(0)
                plan = [total] if w % 3 else [(total / 2).quantize(Decimal("0.01"))]  # partial payments
                if w % 8 == 3:
                    plan = [total, total]  # first one fails
                for n, amount in enumerate(plan):
                    pay_status = "failed" if (w % 8 == 3 and n == 0) else ("pending" if w % 13 == 5 else "succeeded")
                    p_at = invoiced + dt.timedelta(seconds=rnd.randint(0, 3 * 86400))
                    if w % 6 == 1:
                        p_at = (p_at + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0)
                    p_at = min(p_at, clock - dt.timedelta(seconds=1))
                    refunds = []
                    if pay_status == "succeeded" and w % 5 == 2:
                        r_at = min(p_at + dt.timedelta(days=rnd.randint(0, 3), seconds=5), clock)
                        r_amount = money(min(Decimal("20.00"), amount))
                        refunds.append({"id": next_id("refunds"), "amount": r_amount, "reason": "goodwill",
                                        "created_at": iso(r_at)})
                        if w % 10 == 2:
                            refunds.append({"id": next_id("refunds"), "amount": 1.11, "reason": "rounding",
                                            "created_at": iso(r_at + dt.timedelta(hours=30))})
                    pay = {"id": next_id("payments"), "shop_id": shop_id, "work_order_id": wo_id,
                           "amount": float(amount), "method": rnd.choice(["card", "cash", "check", "text_to_pay"]),
                           "status": pay_status, "card_brand": "visa", "last4": "4242",
                           "refunded_amount": money(sum(Decimal(str(r["amount"])) for r in refunds)),
                           "refunds": refunds, "created_at": iso(p_at),
                           "updated_at": iso(max([p_at] + [dt.datetime.fromisoformat(r["created_at"].replace("Z", "+00:00"))
                                                           for r in refunds]))}
                    if pay_status == "succeeded":
                        paid += amount
                    payments.append(pay)
                wo["amount_paid"] = float(paid)
                wo["balance_due"] = float(total - paid)
            wo["payments"] = payments
            if w % 19 == 18:  # deleted at the source: the work order and everything under it
                deleted_objects["work_orders"].append(wo)
                deleted_objects["payments"].extend(payments)
            else:
                objects["work_orders"].append(wo)
                objects["payments"].extend(payments)
            # Inspections: most started work orders; some never sent, some unanswered.
            if started is not None and w % 4 != 3:
                insp_id = next_id("inspections")
                sent = started + dt.timedelta(minutes=rnd.randint(5, 300)) if w % 6 != 5 else None
                if sent is not None and w % 10 == 7:
                    sent = sent.replace(day=1, hour=0, minute=0, second=0) if sent.day > 1 else sent
                answered = sent is not None and w % 5 != 1
                items = []
                for n in range(rnd.randint(0 if w % 23 == 0 else 1, 6)):
                    condition = rnd.choices(["green", "yellow", "red"], [3, 2, 1])[0]
                    approval = "not_applicable" if condition == "green" else (
                        rnd.choice(["approved", "declined", "pending"]) if answered else "pending")
                    item_id = next_id("inspection_items")
                    items.append({
                        "id": item_id, "name": f"Item {item_id}", "category": "brakes", "condition": condition,
                        "notes": None, "estimate_amount": money(rnd.uniform(0, 400)) if condition != "green" else 0.0,
                        "approval": approval, "job_id": jobs[0]["id"] if jobs and condition != "green" else None,
                        "approved_at": iso(sent + dt.timedelta(hours=2)) if approval == "approved" else None,
                        "photos": [{"id": next_id("photos"), "url": f"https://img.example/{item_id}/{k}.jpg",
                                    "caption": None} for k in range(n % 3)]})
                insp = {"id": insp_id, "shop_id": shop_id, "work_order_id": wo_id, "vehicle_id": veh_id,
                        "technician_id": tech if w % 29 != 28 else None,
                        "status": "in_progress" if sent is None else ("responded" if answered else "sent"),
                        "sent_at": iso(sent), "responded_at": iso(sent + dt.timedelta(hours=2)) if answered else None,
                        "items": items, "created_at": iso(started), "updated_at": iso(sent or started)}
                if w % 19 == 18 or w % 31 == 30:
                    deleted_objects["inspections"].append(insp)
                else:
                    objects["inspections"].append(insp)
            appt = {"id": next_id("appointments"), "shop_id": shop_id, "customer_id": cust_id, "vehicle_id": veh_id,
                    "work_order_id": wo_id, "starts_at": iso(created), "ends_at": iso(created + dt.timedelta(hours=1)),
                    "status": "completed", "title": "Service", "created_at": iso(created), "updated_at": iso(created)}
            objects["appointments"].append(appt)

    # Half-cent average: two extra work orders invoiced in the same second, subtotals summing to an
    # odd number of cents, in a day of their own.
    shop_id = objects["shops"][0]["id"]
    day = (clock - dt.timedelta(days=50)).replace(hour=10, minute=0, second=0)
    for subtotal in (Decimal("0.14"), Decimal("0.15")):  # 0.145: a float division rounds it to 0.14
        wo_id = next_id("work_orders")
        objects["work_orders"].append({
            "id": wo_id, "shop_id": shop_id, "number": next_number(shop_id), "customer_id": objects["customers"][0]["id"],
            "vehicle_id": objects["vehicles"][0]["id"], "technician_id": None, "service_advisor_id": None,
            "status": "invoiced", "notes": "half cent", "mileage_in": 1, "labor_total": float(subtotal),
            "parts_total": 0.0, "fees_total": 0.0, "subtotal": float(subtotal), "tax_total": 0.0,
            "total": float(subtotal), "amount_paid": 0.0, "balance_due": float(subtotal),
            "started_at": iso(day - dt.timedelta(hours=3)), "completed_at": iso(day - dt.timedelta(hours=1)),
            "invoiced_at": iso(day), "created_at": iso(day - dt.timedelta(hours=4)), "updated_at": iso(day),
            "jobs": [], "payments": []})

    _add_analyst_cases(objects, clock, next_id, next_number)

    for k in objects:
        objects[k].sort(key=lambda o: o["id"])
    deleted = {k: sorted(o["id"] for o in v) for k, v in deleted_objects.items() if v}
    return {"clock": iso(clock), "objects": objects, "deleted": deleted, "_deleted_objects": deleted_objects}


def _add_analyst_cases(objects: dict[str, list], clock: dt.datetime, next_id, next_number) -> None:
    """One vehicle's story with what the analyst's review singled out (METRICS, 2026-12-06):
    - a customer back after more than a year (reactivated), with two invoices in one month;
    - a declined job named by two declined inspection items on two inspections of one work order
      (the later response stands behind the job), sold on a later visit under the same name in other
      case and spacing (recovered), plus a declined item with no job and one whose job stays
      pending, and a declined item whose job was sold after all (no row);
    - a repeat of the same repair 1 to 90 days later (a comeback);
    - an invoice paid in full and then refunded in full (owes nothing; the API's balance_due rises);
    - appointments still to come, a no-show, one converted into an invoiced work order."""
    shop_id = objects["shops"][1]["id"] if len(objects["shops"]) > 1 else objects["shops"][0]["id"]
    tech = next(e["id"] for e in objects["employees"] if e["shop_id"] == shop_id and e["role"] == "technician")
    cust_id = next_id("customers")
    long_ago = clock - dt.timedelta(days=480)
    objects["customers"].append({
        "id": cust_id, "shop_id": shop_id, "first_name": "Back", "last_name": "Again", "email": "back@example.com",
        "phone": "555-0142", "is_business": False, "company_name": None, "address": None, "notes": None,
        "created_at": iso(long_ago), "updated_at": iso(long_ago)})
    veh_id = next_id("vehicles")
    objects["vehicles"].append({
        "id": veh_id, "shop_id": shop_id, "customer_id": cust_id, "year": 2012, "make": "Honda", "model": "Civic",
        "trim": None, "vin": "2HGFB2F5XCH000001", "mileage": 90000, "license_plate": "BACK01",
        "created_at": iso(long_ago), "updated_at": iso(long_ago)})

    def job(name: str, status: str, labor: str) -> dict:
        job_id, li_id = next_id("jobs"), next_id("line_items")
        amount = Decimal(labor)
        return {"id": job_id, "work_order_id": None, "name": name, "technician_id": tech, "status": status,
                "approved_at": None, "labor_total": float(amount), "parts_total": 0.0, "total": float(amount),
                "line_items": [{"id": li_id, "job_id": job_id, "type": "labor", "description": name,
                                "technician_id": tech, "hours": float(amount / 100), "rate": 100.0, "part_id": None,
                                "part_number": None, "quantity": None, "unit_cost": None, "unit_price": None,
                                "total": float(amount), "taxable": False}]}

    def work_order(created: dt.datetime, jobs: list[dict], paid: bool = True, refunded: bool = False) -> dict:
        wo_id = next_id("work_orders")
        labor = sum((Decimal(str(j["labor_total"])) for j in jobs if j["status"] != "declined"), Decimal(0))
        invoiced = created + dt.timedelta(hours=3)
        wo = {"id": wo_id, "shop_id": shop_id, "number": next_number(shop_id), "customer_id": cust_id,
              "vehicle_id": veh_id, "technician_id": tech, "service_advisor_id": None, "status": "invoiced",
              "notes": None, "mileage_in": 90000 + wo_id, "labor_total": float(labor), "parts_total": 0.0,
              "fees_total": 0.0, "subtotal": float(labor), "tax_total": 0.0, "total": float(labor),
              "amount_paid": 0.0, "balance_due": float(labor), "started_at": iso(created + dt.timedelta(hours=1)),
              "completed_at": iso(created + dt.timedelta(hours=2)), "invoiced_at": iso(invoiced),
              "created_at": iso(created), "updated_at": iso(invoiced), "jobs": jobs, "payments": []}
        for j in jobs:
            j["work_order_id"] = wo_id
        if paid:
            p_at = invoiced + dt.timedelta(minutes=5)
            refunds = [{"id": next_id("refunds"), "amount": float(labor), "reason": "goodwill",
                        "created_at": iso(p_at + dt.timedelta(days=1))}] if refunded else []
            payment = {"id": next_id("payments"), "shop_id": shop_id, "work_order_id": wo_id, "amount": float(labor),
                       "method": "card", "status": "succeeded", "card_brand": "visa", "last4": "4242",
                       "refunded_amount": float(labor) if refunded else 0.0, "refunds": refunds,
                       "created_at": iso(p_at), "updated_at": iso(p_at + dt.timedelta(days=1 if refunded else 0))}
            wo["payments"] = [payment]
            objects["payments"].append(payment)
            wo["amount_paid"] = float(labor)
            wo["balance_due"] = float(labor) if refunded else 0.0  # the API reopens a refunded invoice
        objects["work_orders"].append(wo)
        return wo

    first_visit = clock - dt.timedelta(days=470)
    work_order(first_visit.replace(hour=15, minute=0, second=0), [job("Oil change", "completed", "80.00")])
    # back after more than a year: two invoices in one month, the second refunded in full
    visit = (clock - dt.timedelta(days=30)).replace(hour=15, minute=0, second=0)
    brakes = job("Brake pads", "declined", "310.00")
    alignment = job("Alignment", "pending", "95.00")
    sold_anyway = job("Battery", "completed", "150.00")
    first = work_order(visit, [job("Oil change", "completed", "80.00"), brakes, alignment, sold_anyway])
    work_order(visit + dt.timedelta(days=1), [job("Tire rotation", "completed", "40.00")], refunded=True)

    def item(name: str, job_id: int | None, amount: str) -> dict:
        item_id = next_id("inspection_items")
        return {"id": item_id, "name": name, "category": "general", "condition": "red", "notes": None,
                "estimate_amount": float(Decimal(amount)), "approval": "declined", "job_id": job_id,
                "approved_at": None, "photos": []}

    for hours, items in ((1, [item("Brake pads", brakes["id"], "300.00"), item("Wiper  blades", None, "35.50")]),
                         (2, [item("brake pads", brakes["id"], "305.00"), item("Alignment", alignment["id"], "95.00"),
                              item("Battery", sold_anyway["id"], "150.00")])):
        sent = visit + dt.timedelta(hours=hours)
        objects["inspections"].append({
            "id": next_id("inspections"), "shop_id": shop_id, "work_order_id": first["id"], "vehicle_id": veh_id,
            "technician_id": tech, "status": "responded", "sent_at": iso(sent),
            "responded_at": iso(sent + dt.timedelta(minutes=30)), "items": items, "created_at": iso(sent),
            "updated_at": iso(sent)})
    # the later visit: the brakes sold under another spelling, the wipers too, an oil change again
    later = (clock - dt.timedelta(days=10)).replace(hour=16, minute=0, second=0)
    converted = work_order(later, [job("  BRAKE   Pads ", "completed", "320.00"), job("wiper blades", "approved", "36.00"),
                                   job("Oil Change", "completed", "80.00")], paid=False)
    for status, starts, wo_id in (("completed", later, converted["id"]), ("no_show", later - dt.timedelta(days=2), None),
                                  ("scheduled", clock + dt.timedelta(days=3), None)):
        objects["appointments"].append({
            "id": next_id("appointments"), "shop_id": shop_id, "customer_id": cust_id, "vehicle_id": veh_id,
            "work_order_id": wo_id, "starts_at": iso(starts), "ends_at": iso(starts + dt.timedelta(hours=1)),
            "status": status, "title": "Service", "created_at": iso(starts - dt.timedelta(days=5)),
            "updated_at": iso(starts - dt.timedelta(days=5))})


# ----------------------------------------------------------------------------------------------
def flatten_truth(truth: dict[str, Any], synced_at: dt.datetime | None = None,
                  load_id: str = FIRST_LOAD_ID) -> dict[str, list[dict]]:
    """The raw tables the connector would load for this truth dump (flattened as
    source_helpers.flatten_truth reads the truth), every row stamped with `load_id`. Objects in
    `_deleted_objects` (if present) are loaded as the connector last saw them, with
    `_autosync_deleted_at` set."""
    synced_at = synced_at or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    rows: dict[str, list[dict]] = {t: [] for t in RAW_TABLES}
    sources = [(truth["objects"], None)]
    if truth.get("_deleted_objects"):
        sources.append((truth["_deleted_objects"], synced_at))
    for objects, deleted_at in sources:
        for table, by_id in source_helpers.flatten_truth({"objects": objects}).items():
            for row in by_id.values():
                if table in TOP_LEVEL:
                    row.update(_autosync_synced_at=synced_at, _autosync_deleted_at=deleted_at)
                row[LOAD_ID] = load_id
                rows[table].append(row)
    return rows


def _value(v: Any, kind: str) -> Any:
    if v is None:
        return None
    if kind == TS and isinstance(v, str):
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if decimal_of(kind):
        return Decimal(str(v))
    return v


def load_raw_duckdb(truth: dict[str, Any], path: str | os.PathLike, dataset: str = "autosync_raw") -> None:
    import duckdb
    rows = flatten_truth(truth)
    with contextlib.closing(duckdb.connect(str(path))) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"create schema if not exists {dataset}")
        for table, cols in RAW_TABLES.items():
            ddl = ", ".join(f'"{c}" {ty}' for c, ty in cols.items())
            con.execute(f'drop table if exists {dataset}."{table}"')
            con.execute(f'create table {dataset}."{table}" ({ddl})')
            data = [[_value(r.get(c), ty) for c, ty in cols.items()] for r in rows[table]]
            if data:
                con.executemany(f'insert into {dataset}."{table}" values ({", ".join("?" * len(cols))})', data)


def load_raw_postgres(truth: dict[str, Any], dataset: str) -> None:
    import psycopg2
    from psycopg2.extras import execute_values
    rows = flatten_truth(truth)
    with contextlib.closing(psycopg2.connect(**PG_DSN)) as con, con.cursor() as cur:
        cur.execute(f"create schema if not exists {dataset}")
        for table, cols in RAW_TABLES.items():
            ddl = ", ".join(f'"{c}" {ty}' for c, ty in cols.items())
            cur.execute(f'drop table if exists {dataset}."{table}"')
            cur.execute(f'create table {dataset}."{table}" ({ddl})')
            data = [[_value(r.get(c), ty) for c, ty in cols.items()] for r in rows[table]]
            if data:
                execute_values(cur, f'insert into {dataset}."{table}" values %s', data)
        con.commit()


def drop_postgres_schemas(*schemas: str) -> None:
    import psycopg2
    with contextlib.closing(psycopg2.connect(**PG_DSN)) as con, con.cursor() as cur:
        for schema in schemas:
            cur.execute(f"drop schema if exists {schema} cascade")
        con.commit()


# ----------------------------------------------------------------------------------------------
def read_table_duckdb(path: str | os.PathLike, schema: str, table: str) -> list[dict]:
    """Rows as dicts with exact types (DuckDB's .df() would turn decimals into floats)."""
    import duckdb
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        cur = con.execute(f'select * from {schema}."{table}"')
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def read_table_postgres(schema: str, table: str) -> list[dict]:
    import psycopg2
    with contextlib.closing(psycopg2.connect(**PG_DSN)) as con, con.cursor() as cur:
        cur.execute(f'select * from {schema}."{table}"')
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"

"""The records of a world as `GET {id}` returns them: id counters, a shop's context, and the
builders shared by the history generator, live activity and API writes.

Plain dicts, no pydantic: two million rows must build in well under two minutes.
"""
from __future__ import annotations

import random

from .money import cents, compute_job_totals, dollars, half_up_div, labor_total_cents, quantity_total_cents, tax_rate_thousandths
from .timefmt import iso
from .vin import make_vin
from .vocabulary import (CARD_BRANDS, CITIES, COMPANY_KINDS, COMPANY_WORDS, FEES, FIRST_NAMES, JOBS, LAST_NAMES,
                         MAKE_NAMES, MAKES, PARTS, STREETS)


def resource_names() -> tuple[str, ...]:
    return ("shops", "employees", "customers", "vehicles", "work_orders", "payments",
            "inspections", "appointments", "inventory")


class Ids:
    """Id counters per resource and child type: unique across shops, in generation order."""

    KINDS = ("shops", "employees", "customers", "vehicles", "work_orders", "jobs", "line_items",
             "payments", "refunds", "inspections", "inspection_items", "photos", "appointments",
             "inventory", "webhooks")

    def __init__(self) -> None:
        self.last = {kind: 0 for kind in self.KINDS}

    def next(self, kind: str) -> int:
        self.last[kind] += 1
        return self.last[kind]


# --------------------------------------------------------------------------- builders
# Builders are shared by the history generator and by live activity / API writes.

def person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def phone(rng: random.Random) -> str:
    return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"


def address(rng: random.Random) -> dict:
    city, state, zip3 = rng.choice(CITIES)
    return {"street": f"{rng.randint(10, 9999)} {rng.choice(STREETS)}", "city": city,
            "state": state, "zip": f"{zip3}{rng.randint(0, 99):02d}"}


def email_for(first: str, last: str, n: int, domain: str = "example.com") -> str:
    local = f"{first}.{last}".lower().replace("'", "")
    return f"{local}{n}@{domain}"


def build_customer(rng: random.Random, cid: int, shop_id: int, ts: int) -> dict:
    first, last = person(rng)
    is_business = rng.random() < 0.12
    company = (f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}" if is_business else None)
    stamp = iso(ts)
    return {"id": cid, "shop_id": shop_id, "first_name": first, "last_name": last,
            "email": email_for(first, last, cid) if rng.random() < 0.9 else None,
            "phone": phone(rng), "is_business": is_business, "company_name": company,
            "address": address(rng),
            "notes": rng.choice(("", "", "", "Prefers text", "Fleet account", "Net 30 terms", "VIP")) or None,
            "created_at": stamp, "updated_at": stamp}


def build_vehicle(rng: random.Random, vid: int, shop_id: int, customer_id: int, ts: int,
                  clock_year: int) -> dict:
    make = rng.choice(MAKE_NAMES)
    wmi, models = MAKES[make]
    model, trims, _body, _drive, _engine = rng.choice(models)
    year = rng.randint(max(2004, clock_year - 18), clock_year)
    age = clock_year - year
    stamp = iso(ts)
    return {"id": vid, "shop_id": shop_id, "customer_id": customer_id, "year": year,
            "make": make, "model": model, "trim": rng.choice(trims),
            "vin": make_vin(rng, wmi, year),
            "mileage": max(5, age * rng.randint(8000, 15000) + rng.randint(0, 9000)),
            "license_plate": "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(3))
                             + "-" + f"{rng.randint(0, 9999):04d}",
            "created_at": stamp, "updated_at": stamp}


def labor_line(line_id: int, job_id: int, description: str, technician_id: int | None,
               hours_h: int, rate_c: int, taxable: bool) -> dict:
    return {"id": line_id, "job_id": job_id, "type": "labor", "description": description,
            "technician_id": technician_id, "hours": hours_h / 100, "rate": dollars(rate_c),
            "part_id": None, "part_number": None, "quantity": None, "unit_cost": None,
            "unit_price": None, "taxable": taxable,
            "total": dollars(labor_total_cents(hours_h, rate_c))}


def part_line(line_id: int, job_id: int, part: dict, quantity_h: int) -> dict:
    price_c = cents(part["unit_price"])
    return {"id": line_id, "job_id": job_id, "type": "part", "description": part["name"],
            "technician_id": None, "hours": None, "rate": None, "part_id": part["id"],
            "part_number": part["part_number"], "quantity": quantity_h / 100,
            "unit_cost": part["unit_cost"], "unit_price": part["unit_price"], "taxable": True,
            "total": dollars(quantity_total_cents(quantity_h, price_c))}


def fee_line(line_id: int, job_id: int, description: str, price_c: int, taxable: bool) -> dict:
    return {"id": line_id, "job_id": job_id, "type": "fee", "description": description,
            "technician_id": None, "hours": None, "rate": None, "part_id": None,
            "part_number": None, "quantity": 1.0, "unit_cost": None,
            "unit_price": dollars(price_c), "taxable": taxable, "total": dollars(price_c)}


class ShopContext:
    """What builders need to know about one shop: rates, staff, parts by catalog key."""

    def __init__(self, shop: dict, technicians: list[int], advisors: list[int],
                 parts_by_key: dict[str, list[dict]]):
        self.shop = shop
        self.shop_id = shop["id"]
        self.tax_rate_k = tax_rate_thousandths(shop["settings"]["tax_rate"])
        self.labor_rate_c = cents(shop["settings"]["labor_rate"])
        self.tax_labor = False  # set by the generator (some shops tax labor)
        self.open_inspections_made = 0
        self.recent_made = 0
        self.payments_made = 0
        self._firsts: set[str] = set()
        self.technicians = technicians
        self.advisors = advisors
        self.parts_by_key = parts_by_key

    def seen(self, key: str) -> bool:
        return key in self._firsts

    def first(self, key: str) -> bool:
        """True the first time `key` is asked for in this shop: rare cases a small world must
        still contain (a refund, a failed card, a pending text-to-pay ...)."""
        if key in self._firsts:
            return False
        self._firsts.add(key)
        return True


def build_job(rng: random.Random, ids: Ids, ctx: ShopContext, wo_id: int, name: str,
              technician_id: int | None, status: str, approved_ts: int | None,
              tax_labor: bool, with_fee: bool, *, label: str | None = None, rate_c: int | None = None,
              hours_h: int | None = None) -> dict:
    """A job from the catalog entry `name`, shown as `label` (a name typed by hand may differ in
    case or spacing); labor at the shop's posted rate unless `rate_c` (a discount, a menu price),
    for the book hours varied by the technician unless `hours_h` (a flat-rate job's book hours)."""
    job_id = ids.next("jobs")
    book_h, parts = JOBS.get(name, (100, []))
    if hours_h is None:
        hours_h = max(10, book_h + rng.choice((-25, 0, 0, 0, 25, 50)))
        hours_h -= hours_h % 5
    label = name if label is None else label
    lines = [labor_line(ids.next("line_items"), job_id, f"Labor: {label}", technician_id,
                        hours_h, ctx.labor_rate_c if rate_c is None else rate_c, tax_labor)]
    for key, qty_h in parts:
        if qty_h == 0:
            if rng.random() < 0.5:
                continue
            qty_h = 400
        options = ctx.parts_by_key.get(key)
        if not options:
            continue
        lines.append(part_line(ids.next("line_items"), job_id, rng.choice(options), qty_h))
    if with_fee:
        desc, proportional, taxable = rng.choice(FEES)
        price_c = (min(4500, max(300, half_up_div(cents(lines[0]["total"]) * 5, 100)))
                   if proportional else rng.choice((495, 500, 795, 1000)))
        lines.append(fee_line(ids.next("line_items"), job_id, desc, price_c, taxable))
    job = {"id": job_id, "work_order_id": wo_id, "name": label, "technician_id": technician_id,
           "status": status, "approved_at": iso(approved_ts) if approved_ts is not None else None,
           "labor_total": 0.0, "parts_total": 0.0, "total": 0.0, "line_items": lines}
    compute_job_totals(job)
    return job


def build_inventory_part(rng: random.Random, pid: int, shop_id: int, key: str, brand: str,
                         ts: int) -> dict:
    name, lo, hi = PARTS[key]
    cost_c = rng.randint(lo, hi)
    price_c = half_up_div(cost_c * rng.choice((140, 150, 160, 175, 185, 200)), 100)
    stamp = iso(ts)
    return {"id": pid, "shop_id": shop_id,
            "part_number": f"{brand[:3].upper()}-{rng.randint(10000, 99999)}",
            "name": name, "brand": brand, "quantity_on_hand": rng.randint(0, 40),
            "reorder_point": rng.choice((2, 4, 5, 6, 10)), "unit_cost": dollars(cost_c),
            "unit_price": dollars(price_c),
            "location": f"Aisle {rng.randint(1, 9)}-{rng.choice('ABCDEF')}{rng.randint(1, 6)}",
            "created_at": stamp, "updated_at": stamp}



def build_payment(rng: random.Random, pid: int, shop_id: int, wo_id: int, amount_c: int, method: str,
                  status: str, ts: int) -> dict:
    card = method == "card"
    stamp = iso(ts)
    return {"id": pid, "shop_id": shop_id, "work_order_id": wo_id, "amount": dollars(amount_c),
            "method": method, "status": status,
            "card_brand": rng.choice(CARD_BRANDS) if card else None,
            "last4": f"{rng.randint(0, 9999):04d}" if card else None,
            "refunded_amount": 0.0, "refunds": [], "created_at": stamp, "updated_at": stamp}

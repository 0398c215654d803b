"""How one shop's history is generated: the shop, its staff and inventory, customers and
vehicles, then work orders in created order, bulk-edit bursts and appointments."""
from __future__ import annotations

import bisect
import random
import time
from typing import Callable

from ..records import (Ids, ShopContext, address, build_customer, build_inventory_part, build_vehicle, email_for,
                       person, phone)
from ..money import dollars
from ..seeding import rng_for
from ..timefmt import DAY, HISTORY_DAYS, HOUR, iso, parse_iso
from ..vocabulary import COMPANY_KINDS, COMPANY_WORDS, PART_BRANDS, PARTS, SHOP_LOCATIONS, SHOP_NAMES
from .appointments import generate_appointments
from .work_orders import generate_work_order


def business_time(rng: random.Random, day_start: int) -> int:
    return day_start + 7 * HOUR + rng.randint(0, 11 * HOUR - 1)


def generate_world(sink: Callable[[str, dict], None], ids: Ids, seed: int, shops: int,
                   work_orders: int, clock: int) -> list[ShopContext]:
    """Build the history of every shop up to `clock` into `sink(resource, obj)`."""
    contexts = []
    for index in range(shops):
        contexts.append(_generate_shop(sink, ids, seed, index, work_orders, clock))
    return contexts


def _generate_shop(sink: Callable[[str, dict], None], ids: Ids, seed: int, index: int,
                   n_work_orders: int, clock: int) -> ShopContext:
    r = rng_for(seed, "shop", index)
    history_start = clock - HISTORY_DAYS * DAY
    shop_id = ids.next("shops")
    shop_created = history_start - r.randint(30, 400) * DAY
    name = SHOP_NAMES[index % len(SHOP_NAMES)] + ("" if index < len(SHOP_NAMES) else f" #{index // len(SHOP_NAMES) + 1}")
    slug = name.lower().replace("'", "").replace("&", "and").replace("#", "").replace(" ", "-").replace("--", "-")
    addr = address(r)
    city, state, zip3, timezone = SHOP_LOCATIONS[index % len(SHOP_LOCATIONS)]
    addr.update(city=city, state=state, zip=f"{zip3}{addr['zip'][3:]}")
    shop = {"id": shop_id, "shop_id": shop_id, "name": name, "slug": slug, "status": "active",
            "phone": phone(r), "email": f"service@{slug.replace('-', '')}.com", "address": addr,
            "timezone": timezone,
            "settings": {"tax_rate": r.choice((5.5, 6.0, 6.25, 6.75, 7.0, 7.25, 7.5, 8.25, 8.875, 9.5)),
                         "labor_rate": float(r.choice((99, 110, 119, 125, 135, 149, 165, 185)))},
            "created_at": iso(shop_created),
            "updated_at": iso(history_start + r.randint(0, HISTORY_DAYS * DAY - 1))}
    tax_labor = r.random() < 0.3
    sink("shops", shop)

    # staff
    re = rng_for(seed, "employees", index)
    technicians, advisors = [], []
    roles = (["manager"] + ["service_advisor"] * re.randint(1, 3) + ["technician"] * re.randint(3, 6))
    for role in roles:
        eid = ids.next("employees")
        first, last = person(re)
        ts = shop_created + re.randint(0, 300) * DAY
        active = re.random() > 0.1 or role == "manager"
        if role == "technician" and active:
            technicians.append(eid)
        if role == "service_advisor" and active:
            advisors.append(eid)
        sink("employees", {"id": eid, "shop_id": shop_id, "first_name": first, "last_name": last,
                           "email": email_for(first, last, eid, shop["email"].split("@")[1]),
                           "role": role, "active": active,
                           "hourly_rate": dollars(re.randint(1800, 4800) if role != "manager" else re.randint(3500, 6000)),
                           "created_at": iso(ts), "updated_at": iso(max(ts, history_start + re.randint(0, HISTORY_DAYS * DAY - 1)))})
    if not advisors:
        advisors.append(technicians[0])

    # inventory: every catalog part in 1-3 brands; a bulk price update touches most rows in one second
    ri = rng_for(seed, "inventory", index)
    parts_by_key: dict[str, list[dict]] = {}
    inventory = []
    inv_created = history_start - 10 * DAY
    for key in PARTS:
        for brand in ri.sample(PART_BRANDS, ri.randint(1, 3)):
            part = build_inventory_part(ri, ids.next("inventory"), shop_id, key, brand, inv_created)
            parts_by_key.setdefault(key, []).append(part)
            inventory.append(part)
    ctx = ShopContext(shop, technicians, advisors, parts_by_key)
    ctx.tax_labor = tax_labor

    # customers and vehicles: an import burst at history start (same created/updated second),
    # then steady sign-ups
    rc = rng_for(seed, "customers", index)
    n_customers = max(5, int(n_work_orders * 0.45))
    imported = max(3, n_customers // 5)
    import_ts = history_start - 5 * DAY + 9 * HOUR
    customer_times = [import_ts] * imported + sorted(
        business_time(rc, history_start + rc.randint(0, HISTORY_DAYS - 1) * DAY)
        for _ in range(n_customers - imported))
    customer_times = [t for t in customer_times if t <= clock]
    customers: list[dict] = []
    vehicles: list[dict] = []
    clock_year = time.gmtime(clock).tm_year
    for ts in customer_times:
        cust = build_customer(rc, ids.next("customers"), shop_id, ts)
        customers.append(cust)
        n_veh = rc.randint(2, 5) if cust["is_business"] else rc.choice((1, 1, 1, 2, 2, 3))
        for _ in range(n_veh):
            vts = ts if rc.random() < 0.7 else min(clock, ts + rc.randint(1, 200) * DAY)
            vehicles.append(build_vehicle(rc, ids.next("vehicles"), shop_id, cust["id"], vts, clock_year))
    if customers and not any(c["is_business"] for c in customers):
        customers[-1]["is_business"] = True
        customers[-1]["company_name"] = f"{rc.choice(COMPANY_WORDS)} {rc.choice(COMPANY_KINDS)}"
    vehicles.sort(key=lambda v: (v["created_at"], v["id"]))
    vehicle_times = [parse_iso(v["created_at"]) for v in vehicles]

    # work orders in created order
    rw = rng_for(seed, "work_orders", index)
    rp = rng_for(seed, "payments", index)
    rx = rng_for(seed, "inspections", index)
    first_vehicle_ts = vehicle_times[0]
    wo_times = sorted(max(first_vehicle_ts, business_time(rw, history_start + rw.randint(0, HISTORY_DAYS - 1) * DAY))
                      for _ in range(n_work_orders))
    # make sure the recent days are busy so every open status exists
    recent = min(n_work_orders, max(10, n_work_orders // 40))
    wo_times = sorted(wo_times[recent:] + [clock - rw.randint(60, 4 * DAY) for _ in range(recent)])
    number = 1000
    vehicle_mileage: dict[int, tuple[int, int]] = {}
    customer_touch: dict[int, int] = {}
    work_orders_out: list[dict] = []
    payments_out: list[dict] = []
    inspections_out: list[dict] = []
    for t0 in wo_times:
        k = bisect.bisect_right(vehicle_times, t0)
        vehicle = vehicles[rw.randrange(k)]
        number += 1
        wo, pays, insp = generate_work_order(rw, rp, rx, ids, ctx, vehicle, number, t0, clock)
        work_orders_out.append(wo)
        payments_out.extend(pays)
        if insp is not None:
            inspections_out.append(insp)
        prev = vehicle_mileage.get(vehicle["id"])
        if prev is None or wo["mileage_in"] > prev[0]:
            vehicle_mileage[vehicle["id"]] = (wo["mileage_in"], t0)
        customer_touch[vehicle["customer_id"]] = t0

    for v in vehicles:
        seen = vehicle_mileage.get(v["id"])
        if seen and seen[0] > v["mileage"]:
            v["mileage"] = seen[0]
            v["updated_at"] = iso(max(parse_iso(v["updated_at"]), seen[1]))

    # bulk edits: hundreds of rows sharing one updated_at second, crossing page boundaries
    rb = rng_for(seed, "bursts", index)
    inv_burst = clock - rb.randint(20, 200) * DAY
    for part in inventory:
        if rb.random() < 0.9:
            part["updated_at"] = iso(inv_burst)
    _burst(rb, customers, clock, size=min(len(customers), max(150, len(customers) // 4)))
    _burst(rb, work_orders_out, clock, size=min(len(work_orders_out), max(150, len(work_orders_out) // 8)))
    _burst(rb, work_orders_out, clock, size=min(len(work_orders_out), 250))

    # appointments
    ra = rng_for(seed, "appointments", index)
    appointments = generate_appointments(ra, ids, shop_id, work_orders_out, customers, vehicles, clock)

    for obj in sorted(customers, key=lambda c: c["id"]):
        sink("customers", obj)
    for obj in sorted(vehicles, key=lambda v: v["id"]):
        sink("vehicles", obj)
    for obj in inventory:
        sink("inventory", obj)
    for obj in work_orders_out:
        sink("work_orders", obj)
    for obj in payments_out:
        sink("payments", obj)
    for obj in inspections_out:
        sink("inspections", obj)
    for obj in appointments:
        sink("appointments", obj)
    return ctx


def _burst(rng: random.Random, rows: list[dict], clock: int, size: int) -> None:
    if not rows:
        return
    burst_ts = clock - rng.randint(3, 120) * DAY + rng.randint(0, DAY - 1)
    eligible = [row for row in rows if row["created_at"] <= iso(burst_ts) and row["updated_at"] < iso(burst_ts)]
    if not eligible:
        return
    stamp = iso(burst_ts)
    for row in rng.sample(eligible, min(size, len(eligible))):
        row["updated_at"] = stamp
        if "notes" in row and "status" in row:
            row["notes"] = (row["notes"] + " " if row["notes"] else "") + "[reviewed]"

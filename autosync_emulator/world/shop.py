"""How one shop's history is generated: the shop, its staff and inventory, customers and
vehicles, then work orders in created order, bulk-edit bursts and appointments."""
from __future__ import annotations

import bisect
import heapq
import random
import time
from collections import Counter
from typing import Callable

from ..records import (Ids, ShopContext, address, build_customer, build_inventory_part, build_vehicle, email_for,
                       person, phone)
from ..money import dollars
from ..seeding import rng_for
from ..timefmt import DAY, HISTORY_DAYS, HOUR, iso, parse_iso
from ..vocabulary import (BASE_JOBS, COMPANY_KINDS, COMPANY_WORDS, MENU_JOBS, PART_BRANDS, PARTS, SHOP_LOCATIONS,
                          SHOP_NAMES)
from .appointments import generate_appointments
from .hours import ShopHours
from .work_orders import Outcome, Visit, generate_work_order, name_variant


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
    # the shop's opening hours on its own clock, and the few jobs it sells at a menu price
    hours = ShopHours(timezone, history_start - 30 * DAY, clock + 150 * DAY)
    ctx.hours = hours
    rpr = rng_for(seed, "pricing", index)
    ctx.menu = {name: rpr.randrange(lo, hi) // 100 * 100 + rpr.choice((95, 99))
                for name, (lo, hi) in rpr.sample(sorted(MENU_JOBS.items()), rpr.randint(2, 4))}

    # customers and vehicles: an import burst at history start (same created/updated second),
    # then steady sign-ups
    rc = rng_for(seed, "customers", index)
    n_customers = max(5, int(n_work_orders * 0.45))
    imported = max(3, n_customers // 5)
    import_ts = history_start - 5 * DAY + 9 * HOUR
    customer_times = [import_ts] * imported + sorted(
        hours.random_between(rc, history_start, clock) for _ in range(n_customers - imported))
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
    # fleet accounts: their labor discount in percent (0: terms but no discount)
    fleet_pct = {c["id"]: rpr.choice((0, 10, 10, 15)) for c in customers if c["is_business"]}

    # work orders in created order, in open hours
    rw = rng_for(seed, "work_orders", index)
    rp = rng_for(seed, "payments", index)
    rx = rng_for(seed, "inspections", index)
    first_vehicle_ts = vehicle_times[0]
    wo_times = sorted(max(first_vehicle_ts, hours.random_between(rw, history_start, clock))
                      for _ in range(n_work_orders))
    # make sure the recent days are busy so every open status exists
    recent = min(n_work_orders, max(10, n_work_orders // 40))
    wo_times = sorted(wo_times[recent:] + [hours.random_between(rw, clock - 4 * DAY, clock - 60) for _ in range(recent)])
    visits = _Visits(rng_for(seed, "visits", index), ctx, history_start, clock)
    ro = rng_for(seed, "odometer", index)
    odometer: dict[int, tuple[int, int, int]] = {}  # vehicle id -> (miles, when, miles a day)
    done: dict[int, dict[str, int]] = {}  # vehicle id -> catalog job -> when it was last done
    number = 1000
    work_orders_out: list[dict] = []
    payments_out: list[dict] = []
    inspections_out: list[dict] = []
    for t0 in wo_times:
        vehicle, visit = visits.next_due(t0)
        if vehicle is None:
            k = bisect.bisect_right(vehicle_times, t0)
            vehicle = vehicles[rw.randrange(k)]
            for _ in range(20):  # a customer kept away for his return after a year stays away
                if vehicle["customer_id"] not in visits.reserved:
                    break
                vehicle = vehicles[rw.randrange(k)]
        fleet = fleet_pct.get(vehicle["customer_id"])
        # the odometer only moves forward: the miles the car does a day since it was last seen
        seen = odometer.get(vehicle["id"])
        if seen is None:
            seen = (vehicle["mileage"], parse_iso(vehicle["created_at"]),
                    ro.randint(40, 90) if fleet is not None else ro.randint(15, 45))
        miles = seen[0] + (t0 - seen[1]) * seen[2] // DAY + ro.randint(0, 30)
        odometer[vehicle["id"]] = (miles, t0, seen[2])
        number += 1
        done_here = done.setdefault(vehicle["id"], {})
        recently = frozenset(name for name, when in done_here.items() if t0 - when < 120 * DAY)
        out = generate_work_order(rw, rp, rx, ids, ctx, vehicle, number, t0, clock, mileage_in=miles,
                                  fleet_pct=fleet, visit=visit, recently_done=recently)
        for name, _typed in out.sold:
            done_here[name] = t0
        work_orders_out.append(out.wo)
        payments_out.extend(out.payments)
        inspections_out.extend(out.inspections)
        visits.plan_after(vehicle, out)

    for v in vehicles:
        seen = odometer.get(v["id"])
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
    appointments = generate_appointments(ra, ids, shop_id, work_orders_out, customers, vehicles, clock, hours)

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


class _Visits:
    """Visits that follow from earlier ones, served by the next work-order slot once due: a repeat
    repair within weeks (a comeback), declined work sold on a later visit, and one customer who
    comes back after more than a year away (kept from random visits meanwhile)."""

    def __init__(self, rng: random.Random, ctx: ShopContext, history_start: int, clock: int) -> None:
        self.rng = rng
        self.ctx = ctx
        self.history_start = history_start
        self.clock = clock
        self.heap: list[tuple[int, int, dict, Visit]] = []
        self.seq = 0
        self.reserved: set[int] = set()
        self.waiting: Counter = Counter()  # customer id -> planned visits not served yet

    def next_due(self, t0: int) -> tuple[dict | None, Visit | None]:
        if not self.heap or self.heap[0][0] > t0:
            return None, None
        _due, _seq, vehicle, visit = heapq.heappop(self.heap)
        self.waiting[vehicle["customer_id"]] -= 1
        self.reserved.discard(vehicle["customer_id"])
        return vehicle, visit

    def _plan(self, due: int, vehicle: dict, visit: Visit) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (due, self.seq, vehicle, visit))
        self.waiting[vehicle["customer_id"]] += 1

    def plan_after(self, vehicle: dict, out: Outcome) -> None:
        rng, ctx = self.rng, self.ctx
        customer = vehicle["customer_id"]
        if customer in self.reserved:
            return
        created, invoiced = out.created, out.invoiced
        if invoiced is not None:
            # far enough that the month of the return starts more than 365 days after this invoice
            due = invoiced + rng.randint(400, 440) * DAY
            if (not ctx.seen("reactivation") and invoiced < self.history_start + 80 * DAY
                    and not self.waiting[customer] and due < self.clock - 10 * DAY):
                ctx.first("reactivation")
                self.reserved.add(customer)
                self._plan(due, vehicle, Visit([(name, name, False) for name in rng.sample(BASE_JOBS, 1)]))
                return
            if out.sold and (rng.random() < 0.025 or ctx.first("comeback")):
                name, label = rng.choice(out.sold)
                typed = name_variant(rng, name) if rng.random() < 0.25 else label
                self._plan(invoiced + rng.randint(3, 45) * DAY, vehicle, Visit([(name, typed, rng.random() < 0.6)]))
        for name, label in out.declined:
            if rng.random() < 0.3 or ctx.first("recovered"):
                typed = name_variant(rng, label.strip()) if rng.random() < 0.25 or ctx.first("recovered_as_typed") else label
                self._plan(created + rng.randint(7, 120) * DAY, vehicle, Visit([(name, typed, False)]))
                break

"""Appointments of the history: visits that became work orders, no-shows, cancellations and
the schedule ahead of the clock."""
from __future__ import annotations

import random

from ..records import Ids
from ..seeding import Weighted
from ..timefmt import DAY, HOUR, iso, parse_iso
from ..vocabulary import APPOINTMENT_TITLES
from .hours import ShopHours

PAST_APPOINTMENT = Weighted(("no_show", "cancelled", "completed"), (3, 4, 3))


def generate_appointments(ra: random.Random, ids: Ids, shop_id: int, work_orders: list[dict],
                           customers: list[dict], vehicles: list[dict], clock: int, hours: ShopHours) -> list[dict]:
    out = []
    by_customer: dict[int, list[dict]] = {}
    for v in vehicles:
        by_customer.setdefault(v["customer_id"], []).append(v)
    # appointments that became work orders
    for wo in work_orders:
        if ra.random() < 0.25:
            t0 = parse_iso(wo["created_at"])
            starts = t0 - ra.randint(0, 20) * 60
            starts -= starts % 900
            created = starts - ra.randint(HOUR, 10 * DAY)
            out.append(_appointment(ra, ids, shop_id, wo["customer_id"], wo["vehicle_id"], wo["id"],
                                    starts, created, "completed", min(clock, t0)))
    # no-shows, cancellations, and the schedule ahead of the clock
    eligible = [c for c in customers if c["id"] in by_customer]
    n_other = max(8, len(work_orders) // 10)
    for k in range(n_other):
        cust = ra.choice(eligible)
        veh = ra.choice(by_customer[cust["id"]])
        earliest = max(parse_iso(cust["created_at"]), parse_iso(veh["created_at"]))
        created = ra.randint(earliest, max(earliest, clock - 60))
        starts = created + ra.randint(HOUR, 21 * DAY)
        if k < 4 and earliest < clock - 2 * DAY:
            # the first four: one ahead of the clock, then a no-show, a cancellation, a visit
            created = ra.randint(earliest, clock - 2 * DAY)
            starts = clock + ra.randint(HOUR, 7 * DAY) if k == 0 else ra.randint(created + 900, clock - DAY)
        starts = hours.open_at_or_after(starts)  # booked into open hours, on the quarter hour
        starts += -starts % 900
        if k in (1, 2, 3) and earliest < clock - 2 * DAY and starts <= clock:
            status = ("no_show", "cancelled", "completed")[k - 1]
            updated = min(clock, starts + ra.randint(0, 3 * HOUR)) if status != "cancelled" else ra.randint(created, min(clock, starts))
        elif starts > clock:
            status, updated = "scheduled", created
            if ra.random() < 0.15 and k != 0:
                status, updated = "cancelled", ra.randint(created, clock)
        else:
            status = PAST_APPOINTMENT.pick(ra)
            updated = min(clock, starts + ra.randint(0, 3 * HOUR)) if status != "cancelled" else ra.randint(created, min(clock, starts))
            if status == "completed":
                status = "arrived" if clock - starts < 2 * HOUR else "completed"
        out.append(_appointment(ra, ids, shop_id, cust["id"], veh["id"], None, starts, created, status, updated))
    out.sort(key=lambda a: a["created_at"])
    # ids in creation order
    for appt in out:
        appt["id"] = ids.next("appointments")
    return out


def _appointment(ra: random.Random, ids: Ids, shop_id: int, customer_id: int, vehicle_id: int,
                 wo_id: int | None, starts: int, created: int, status: str, updated: int) -> dict:
    return {"id": 0, "shop_id": shop_id, "customer_id": customer_id, "vehicle_id": vehicle_id,
            "work_order_id": wo_id, "starts_at": iso(starts),
            "ends_at": iso(starts + ra.choice((1800, 3600, 5400, 7200))),
            "status": status, "title": ra.choice(APPOINTMENT_TITLES),
            "created_at": iso(created), "updated_at": iso(max(created, updated))}

"""One work order of the history, with its inspections and payments, consistent with the clock:
a stage that would lie in the future has not happened yet.

Everything a person does happens in the shop's opening hours (`ctx.hours`, on the shop's own
clock): work starts, finishes and is invoiced in open time, and most customers pay when they
pick the car up. Fleet accounts often pay on terms, 30 to 60 days later. Labor is not always
sold at the posted rate: menu (flat-rate) jobs, fleet and coupon discounts, and free labor on a
repeat repair make the effective labor rate differ from the rate card, as in a real shop.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..money import cents, compute_work_order_totals, dollars, half_up_div, labor_total_cents, quantity_total_cents
from ..records import Ids, ShopContext, build_job, build_payment
from ..seeding import Weighted
from ..timefmt import DAY, HOUR, iso
from ..vocabulary import BASE_JOBS, INSPECTION_ITEMS, ITEM_NOTES, JOBS, REFUND_REASONS, WO_NOTES

OPEN_DAY = 10 * HOUR  # about one working day of open time (weekdays 10.5 h, Saturdays 6 h)


def _pick_status(rng: random.Random, age_seconds: int, ctx: "ShopContext") -> str:
    if age_seconds < 4 * DAY:
        made = ctx.recent_made
        ctx.recent_made += 1
        if made < 5:
            return ("draft", "in_progress", "waiting_parts", "completed", "invoiced")[made]
        return RECENT_STATUS.pick(rng)
    return OLD_STATUS.pick(rng)


RECENT_STATUS = Weighted(("draft", "in_progress", "waiting_parts", "completed", "invoiced"), (18, 27, 14, 18, 23))
OLD_STATUS = Weighted(("draft", "completed", "invoiced"), (1, 4, 95))
INSPECTION_STATUS = Weighted(("in_progress", "sent", "responded"), (2, 3, 5))
CONDITION = Weighted(("green", "yellow", "red"), (70, 20, 10))
APPROVAL_CLOSED = Weighted(("approved", "declined"), (55, 45))
APPROVAL_OPEN = Weighted(("approved", "declined", "pending"), (50, 35, 15))
METHOD = Weighted(("card", "cash", "check", "text_to_pay"), (55, 15, 10, 20))
FLEET_METHOD = Weighted(("check", "card", "text_to_pay"), (60, 25, 15))


def name_variant(rng: random.Random, name: str) -> str:
    """The same name as someone types it by hand: it differs only in case or spacing."""
    k = rng.randrange(5)
    if k == 0:
        return name.lower()
    if k == 1:
        return name.upper()
    if k == 2:
        return name.replace(" ", "  ", 1)
    if k == 3:
        return f" {name} "
    return name.title()


@dataclass
class Visit:
    """What a planned visit brings the car in for: jobs (catalog name, name as typed, free labor)
    sold whatever else happens; a planned visit older than the busy last days was invoiced."""

    jobs: list[tuple[str, str, bool]] = field(default_factory=list)


@dataclass
class Outcome:
    """A generated work order and what later visits may follow from it."""

    wo: dict
    payments: list[dict]
    inspections: list[dict]
    sold: list[tuple[str, str]]      # (catalog name, name as typed) of completed jobs
    declined: list[tuple[str, str]]  # (catalog name, the name a later sale must carry)
    created: int
    invoiced: int | None


def _labor_price(ctx: ShopContext, name: str, discount_pct: int) -> tuple[int | None, int | None]:
    """(book hours, rate) of a menu job at its flat price; else (None, the discounted rate or None)."""
    price_c = ctx.menu.get(name)
    if price_c is not None:
        hours_h = JOBS[name][0]
        return hours_h, half_up_div(price_c * 100, hours_h)
    if discount_pct:
        return None, half_up_div(ctx.labor_rate_c * (100 - discount_pct), 100)
    return None, None


def _estimate_c(ctx: ShopContext, job_name: str) -> int:
    """What the recommended job would cost (an inspection item estimated without writing a job)."""
    hours_h, parts = JOBS[job_name]
    total = labor_total_cents(hours_h, ctx.labor_rate_c)
    for key, qty_h in parts:
        options = ctx.parts_by_key.get(key)
        if qty_h and options:
            total += quantity_total_cents(qty_h, cents(options[0]["unit_price"]))
    return total


def generate_work_order(rw: random.Random, rp: random.Random, rx: random.Random, ids: Ids,
                        ctx: ShopContext, vehicle: dict, number: int, t0: int, clock: int, *,
                        mileage_in: int, fleet_pct: int | None, visit: Visit | None,
                        recently_done: frozenset[str] = frozenset()) -> Outcome:
    """`fleet_pct`: the customer's fleet labor discount (None: not a fleet account); `recently_done`:
    catalog jobs this car had done lately, which it does not need again (a repeat repair is a
    planned `visit` only, so comebacks stay occasional)."""
    hours = ctx.hours
    wo_id = ids.next("work_orders")
    status = _pick_status(rw, clock - t0, ctx)
    if visit is not None and clock - t0 >= 4 * DAY:
        status = "invoiced"
    started = hours.add(t0, rw.randint(5 * 60, 3 * HOUR)) if status != "draft" else None
    completed = invoiced = None
    late_invoice = False
    if status in ("completed", "invoiced"):
        completed = hours.add(started, rw.randint(HOUR, 3 * OPEN_DAY if rw.random() < 0.2 else 8 * HOUR))
        if status == "invoiced":
            # picked up the same day, or the next open day
            invoiced = hours.add(completed, rw.randint(60, 2 * OPEN_DAY if rw.random() < 0.3 else 2 * HOUR))
            if clock - invoiced > 14 * DAY and ctx.first("invoice_before_midnight"):
                # the owner closes the day out late once: minutes before local midnight
                invoiced = hours.local_midnight_after(completed) - rw.randint(5, 15) * 60
                late_invoice = True
    # cap at the clock: a stage that would lie in the future has not happened yet
    if invoiced is not None and invoiced > clock:
        invoiced, status, late_invoice = None, "completed", False
    if completed is not None and completed > clock:
        completed, status = None, "in_progress"
    if started is not None and started > clock:
        started, status = None, "draft"
    if status == "in_progress" and rw.random() < 0.3:
        status = "waiting_parts"

    tech = rw.choice(ctx.technicians)
    advisor = rw.choice(ctx.advisors)
    touched = [t0]
    jobs: list[dict] = []
    closed = status in ("completed", "invoiced")
    discount = fleet_pct or (10 if rw.random() < 0.06 else 0)  # fleet terms, else a coupon now and then
    sold: list[tuple[str, str]] = []
    declined: list[tuple[str, str]] = []

    def job_status_for(forced: bool) -> tuple[str, int | None]:
        if status == "draft":
            return "pending", None
        if closed:
            return ("completed", started) if forced or rw.random() >= 0.04 else ("declined", None)
        return rw.choice(("approved", "approved", "completed")), started

    catalog: dict[int, str] = {}  # job id -> catalog name (the job's own name may be typed differently)
    planned = visit.jobs if visit is not None else []
    planned_names = {name for name, _label, _free in planned}
    for name, label, free in planned:
        job_status, appr = job_status_for(True)
        hours_h, rate_c = _labor_price(ctx, name, discount)
        if free:  # a repeat repair: the labor is on the shop
            rate_c = 0
        job = build_job(rw, ids, ctx, wo_id, name, tech, job_status, appr, ctx.tax_labor,
                        with_fee=False, label=label, rate_c=rate_c, hours_h=hours_h)
        catalog[job["id"]] = name
        jobs.append(job)
    n_base = rw.choice((1, 1, 1, 2, 2, 3)) if not planned else rw.choice((0, 0, 1))
    choices = [n for n in BASE_JOBS if n not in recently_done] if recently_done else BASE_JOBS
    for name in rw.sample(choices, min(n_base, len(choices))):
        if name in planned_names:
            continue
        job_status, appr = job_status_for(False)
        hours_h, rate_c = _labor_price(ctx, name, discount)
        label = name_variant(rw, name) if rw.random() < 0.01 else name
        job = build_job(rw, ids, ctx, wo_id, name, tech, job_status, appr, ctx.tax_labor,
                        with_fee=rw.random() < 0.35, label=label, rate_c=rate_c, hours_h=hours_h)
        catalog[job["id"]] = name
        jobs.append(job)

    inspections: list[dict] = []
    if started is not None and rx.random() < (0.45 if closed else 0.7):
        lo, hi = started, (completed - 60 if closed else None)
        insp, last = _generate_inspection(rx, ids, ctx, wo_id, vehicle["id"], tech, status, lo, hi, clock,
                                          jobs, catalog, touched, declined, exclude=(), discount=discount,
                                          recently_done=recently_done)
        inspections.append(insp)
        if closed and last is not None and completed - last > HOUR and (rx.random() < 0.02 or ctx.first("two_inspections")):
            # a second inspection on the same visit (after a test drive, or a second opinion)
            seen = tuple(item["name"].strip().lower() for item in insp["items"])
            insp2, _ = _generate_inspection(rx, ids, ctx, wo_id, vehicle["id"], tech, status, last + 60, hi, clock,
                                            jobs, catalog, touched, declined, exclude=seen, discount=discount,
                                            recently_done=recently_done)
            inspections.append(insp2)
    for job in jobs:
        if job["status"] == "completed":
            sold.append((catalog[job["id"]], job["name"]))
        elif job["status"] == "declined":
            declined.append((catalog[job["id"]], job["name"]))

    wo = {"id": wo_id, "shop_id": ctx.shop_id, "number": number, "customer_id": vehicle["customer_id"],
          "vehicle_id": vehicle["id"], "technician_id": tech, "service_advisor_id": advisor,
          "status": status, "notes": rw.choice(WO_NOTES) or None, "mileage_in": mileage_in,
          "labor_total": 0.0, "parts_total": 0.0, "fees_total": 0.0, "subtotal": 0.0,
          "tax_total": 0.0, "total": 0.0, "amount_paid": 0.0, "balance_due": 0.0,
          "started_at": iso(started) if started else None,
          "completed_at": iso(completed) if completed else None,
          "invoiced_at": iso(invoiced) if invoiced else None,
          "created_at": iso(t0), "updated_at": iso(t0), "jobs": jobs}
    compute_work_order_totals(wo, ctx.tax_rate_k, [])
    payments = _generate_payments(rp, ids, ctx, wo, status, started, completed, invoiced, clock, touched,
                                  fleet=fleet_pct is not None, late_invoice=late_invoice)
    compute_work_order_totals(wo, ctx.tax_rate_k, payments)
    touched.extend(x for x in (started, completed, invoiced) if x)
    wo["updated_at"] = iso(min(clock, max(touched)))
    return Outcome(wo, payments, inspections, sold, declined, t0, invoiced)


def _generate_inspection(rx: random.Random, ids: Ids, ctx: ShopContext, wo_id: int, vehicle_id: int,
                         tech: int, wo_status: str, lo: int, hi: int | None, clock: int, jobs: list[dict],
                         catalog: dict[int, str], touched: list[int], declined: list[tuple[str, str]],
                         exclude: tuple[str, ...], discount: int = 0,
                         recently_done: frozenset[str] = frozenset()) -> tuple[dict, int | None]:
    """An inspection begun after `lo` (and answered before `hi` on a closed work order); returns it
    and its response time. Its yellow and red items propose jobs; a declined item may have no job
    (the advisor only noted it) or a job left pending, and now and then the customer buys at the
    counter what he declined on the phone."""
    hours = ctx.hours
    insp_id = ids.next("inspections")
    created = hours.add(lo, rx.randint(5 * 60, 45 * 60))
    sent = hours.add(created, rx.randint(10 * 60, 90 * 60))
    responded = hours.add(sent, rx.randint(5 * 60, 2 * OPEN_DAY if rx.random() < 0.2 else 2 * HOUR))
    decided_all = wo_status in ("completed", "invoiced")
    if decided_all:
        status = "responded"
        # the inspection happened before the work was finished
        if hi is not None and responded > hi:
            b0 = hours.business(lo)
            span = max(4, hours.business(hi) - b0)
            created, sent, responded = hours.at(b0 + span // 4), hours.at(b0 + span // 2), hours.at(b0 + 3 * span // 4)
    else:
        # the first open inspections of a shop take each status in turn, so even a tiny
        # world has all three; then the usual mix
        made = ctx.open_inspections_made
        ctx.open_inspections_made += 1
        status = ("in_progress", "sent", "responded")[made] if made < 3 else INSPECTION_STATUS.pick(rx)
    if created > clock:
        created = clock
    if status != "in_progress" and sent > clock:
        status = "in_progress"
    if status == "responded" and responded > clock:
        status = "sent"
    items = []
    pool = ([entry for entry in INSPECTION_ITEMS if entry[0].lower() not in exclude and entry[2] not in recently_done]
            if exclude or recently_done else INSPECTION_ITEMS)
    for name, category, job_name in rx.sample(pool, min(len(pool), rx.randint(5, 9))):
        item_id = ids.next("inspection_items")
        condition = CONDITION.pick(rx)
        photos = []
        if condition != "green" or rx.random() < 0.05:
            for _ in range(rx.randint(1, 2) if condition != "green" else 1):
                pid = ids.next("photos")
                photos.append({"id": pid, "url": f"https://media.autosync.example/inspections/{insp_id}/{item_id}/{pid}.jpg",
                               "caption": rx.choice(("Before", "Close-up", "Measurement", "Overview", None))})
        label = name_variant(rx, name) if rx.random() < 0.03 else name
        item = {"id": item_id, "job_id": None, "name": label, "category": category,
                "condition": condition, "notes": rx.choice(ITEM_NOTES[condition]) or None,
                "estimate_amount": None, "approval": "not_applicable", "approved_at": None,
                "photos": photos}
        items.append(item)
        if condition == "green":
            continue
        if status == "responded":
            approval = (APPROVAL_CLOSED if decided_all else APPROVAL_OPEN).pick(rx)
        else:
            approval = "pending"
        if approval == "approved":
            job_status = "completed" if decided_all or rx.random() < 0.3 else "approved"
            appr = responded
        elif approval == "declined":
            r = rx.random()
            if r < 0.12 or ctx.first("declined_item_without_job"):
                # noted and priced, no job written: the call list must still show it
                item.update(estimate_amount=dollars(_estimate_c(ctx, job_name)), approval="declined")
                declined.append((job_name, label))
                continue
            if not decided_all and (r < 0.4 or ctx.first("declined_item_job_pending")):
                job_status, appr = "pending", None
            elif decided_all and (r < 0.16 or ctx.first("declined_item_sold_after_all")):
                job_status, appr = "completed", responded
            else:
                job_status, appr = "declined", None
        else:
            job_status, appr = "pending", None
        hours_h, rate_c = _labor_price(ctx, job_name, discount)
        job = build_job(rx, ids, ctx, wo_id, job_name, tech, job_status, appr, ctx.tax_labor,
                        with_fee=False, rate_c=rate_c, hours_h=hours_h)
        catalog[job["id"]] = job_name
        jobs.append(job)
        item["job_id"] = job["id"]
        item["estimate_amount"] = job["total"]
        item["approval"] = approval
        item["approved_at"] = job["approved_at"] if approval == "approved" else None
    stamp_sent = iso(sent) if status != "in_progress" else None
    stamp_resp = iso(responded) if status == "responded" else None
    updated = responded if status == "responded" else sent if status == "sent" else created
    if status == "responded":
        touched.append(responded)
    insp = {"id": insp_id, "shop_id": ctx.shop_id, "work_order_id": wo_id, "vehicle_id": vehicle_id,
            "technician_id": tech, "status": status, "sent_at": stamp_sent, "responded_at": stamp_resp,
            "created_at": iso(created), "updated_at": iso(min(updated, clock)), "items": items}
    return insp, (responded if status == "responded" else None)


def _method(rng: random.Random, ctx: "ShopContext") -> str:
    made = ctx.payments_made
    ctx.payments_made += 1
    if made < 4:  # every method early on, so that even a tiny world has them all
        return ("card", "cash", "check", "text_to_pay")[made]
    return METHOD.pick(rng)


def _generate_payments(rp: random.Random, ids: Ids, ctx: ShopContext, wo: dict, status: str,
                       started: int | None, completed: int | None, invoiced: int | None, clock: int,
                       touched: list[int], *, fleet: bool, late_invoice: bool) -> list[dict]:
    hours = ctx.hours
    total_c = cents(wo["total"])
    if total_c <= 0 or started is None:
        return []
    plan: list[tuple[int, int, str | None]] = []  # (amount cents, timestamp, method or None: any)
    if status == "invoiced":
        pickup = hours.add(invoiced, rp.randint(0, 20 * 60))
        if late_invoice:
            plan.append((total_c, invoiced + rp.randint(30, 180), "text_to_pay"))  # paid from the phone at once
        elif ctx.first("split_payment"):
            deposit = half_up_div(total_c * rp.choice((20, 25, 30, 50)), 100)
            plan.append((deposit, hours.add(started, rp.randint(60, HOUR)), None))
            plan.append((total_c - deposit, pickup, None))
        elif ctx.first("partial_payment"):
            # part at pickup, the rest never came: an invoice still owed
            plan.append((half_up_div(total_c * rp.choice((40, 50, 60)), 100), pickup, None))
        elif fleet and rp.random() < 0.7:
            # a fleet account on terms: paid 30 to 60 days after the invoice, a few later still
            days = rp.randint(30, 60) if rp.random() < 0.93 else rp.randint(61, 120)
            due = invoiced + days * DAY
            plan.append((total_c, hours.random_between(rp, due, due + DAY), FLEET_METHOD.pick(rp)))
        else:
            r = rp.random()
            if r < 0.86:  # paid in full at pickup
                plan.append((total_c, pickup, None))
            elif r < 0.93:  # a deposit when work began, the rest at pickup
                deposit = half_up_div(total_c * rp.choice((20, 25, 30, 50)), 100)
                plan.append((deposit, hours.add(started, rp.randint(60, HOUR)), None))
                plan.append((total_c - deposit, pickup, None))
            elif r < 0.965:  # part at pickup, the rest within a few weeks
                part = half_up_div(total_c * rp.choice((40, 50, 60)), 100)
                plan.append((part, pickup, None))
                plan.append((total_c - part, hours.add(pickup, rp.randint(3, 20) * OPEN_DAY), None))
            elif r < 0.985:  # paid in full a few days later
                plan.append((total_c, hours.add(pickup, rp.randint(2, 25) * OPEN_DAY), None))
            # else never paid
    elif status == "completed" and rp.random() < 0.3:
        plan.append((half_up_div(total_c * rp.choice((25, 50)), 100), hours.add(completed, rp.randint(0, HOUR)), None))
    elif status in ("in_progress", "waiting_parts") and rp.random() < 0.1:
        plan.append((half_up_div(total_c * 20, 100), hours.add(started, rp.randint(60, HOUR)), None))
    payments = []
    for amount_c, ts, wanted_method in plan:
        if ts > clock:
            continue  # not paid yet
        method = wanted_method or _method(rp, ctx)
        if method == "card" and rp.random() < 0.06 or ctx.first("failed_payment"):
            failed = build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], amount_c, "card", "failed",
                                   max(started, ts - rp.randint(60, 300)))
            payments.append(failed)
        pay_status = "succeeded"
        if method == "text_to_pay" and clock - ts < DAY and rp.random() < 0.5:
            pay_status = "pending"
        pay = build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], amount_c, method, pay_status, ts)
        wanted = rp.random() < 0.05
        if pay_status == "succeeded" and (wanted or (not ctx.seen("refund") and ts + HOUR <= clock)):
            rts = hours.add(ts, rp.randint(HOUR, 10 * OPEN_DAY))
            if not wanted:
                rts = min(rts, clock)
            if rts <= clock:
                ctx.first("refund")
                amount = amount_c if rp.random() < 0.3 else max(1, half_up_div(amount_c * rp.randint(5, 60), 100))
                pay["refunds"] = [{"id": ids.next("refunds"), "amount": dollars(amount),
                                   "reason": rp.choice(REFUND_REASONS), "created_at": iso(rts)}]
                pay["refunded_amount"] = dollars(amount)
                pay["updated_at"] = iso(rts)
                touched.append(rts)
        payments.append(pay)
        touched.append(ts)
    # an unpaid invoice sometimes has a text-to-pay link still pending
    if status == "invoiced" and not plan and rp.random() < 0.4:
        ts = min(clock, hours.add(invoiced, rp.randint(60, HOUR)))
        payments.append(build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], total_c,
                                      "text_to_pay", "pending", ts))
        touched.append(ts)
    elif status in ("completed", "invoiced") and not ctx.seen("pending_payment"):
        outstanding = total_c - sum(cents(p["amount"]) - cents(p["refunded_amount"]) for p in payments if p["status"] != "failed")
        if outstanding > 0:
            ctx.first("pending_payment")
            ts = min(clock, hours.add(invoiced or completed, rp.randint(60, HOUR)))
            payments.append(build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], outstanding,
                                          "text_to_pay", "pending", ts))
            touched.append(ts)
    return payments

"""One work order of the history, with its inspection and payments, consistent with the clock:
a stage that would lie in the future has not happened yet."""
from __future__ import annotations

import random

from ..money import cents, compute_work_order_totals, dollars, half_up_div
from ..records import Ids, ShopContext, build_job, build_payment
from ..seeding import Weighted
from ..timefmt import DAY, HOUR, iso, parse_iso
from ..vocabulary import BASE_JOBS, INSPECTION_ITEMS, ITEM_NOTES, REFUND_REASONS, WO_NOTES


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



def generate_work_order(rw: random.Random, rp: random.Random, rx: random.Random, ids: Ids,
                         ctx: ShopContext, vehicle: dict, number: int, t0: int,
                         clock: int) -> tuple[dict, list[dict], dict | None]:
    wo_id = ids.next("work_orders")
    status = _pick_status(rw, clock - t0, ctx)
    started = t0 + rw.randint(5 * 60, 3 * HOUR) if status != "draft" else None
    completed = invoiced = None
    if status in ("completed", "invoiced"):
        completed = started + rw.randint(HOUR, 3 * DAY if rw.random() < 0.2 else 8 * HOUR)
        if status == "invoiced":
            invoiced = completed + rw.randint(60, 2 * DAY if rw.random() < 0.3 else 2 * HOUR)
    # cap at the clock: a stage that would lie in the future has not happened yet
    if invoiced is not None and invoiced > clock:
        invoiced, status = None, "completed"
    if completed is not None and completed > clock:
        completed, status = None, "in_progress"
    if started is not None and started > clock:
        started, status = None, "draft"
    if status == "in_progress" and rw.random() < 0.3:
        status = "waiting_parts"

    tech = rw.choice(ctx.technicians)
    advisor = rw.choice(ctx.advisors)
    mileage_in = vehicle["mileage"] + max(0, (t0 - parse_iso(vehicle["created_at"])) // DAY * rw.randint(20, 45))
    touched = [t0]
    jobs: list[dict] = []
    closed = status in ("completed", "invoiced")
    for name in rw.sample(BASE_JOBS, rw.choice((1, 1, 1, 2, 2, 3))):
        if status == "draft":
            job_status, appr = "pending", None
        elif closed:
            job_status = "declined" if rw.random() < 0.04 else "completed"
            appr = started if job_status == "completed" else None
        else:
            job_status = rw.choice(("approved", "approved", "completed"))
            appr = started
        jobs.append(build_job(rw, ids, ctx, wo_id, name, tech, job_status, appr, ctx.tax_labor,
                              with_fee=rw.random() < 0.35))

    inspection = None
    if started is not None and rx.random() < (0.45 if status in ("completed", "invoiced") else 0.7):
        inspection = _generate_inspection(rx, ids, ctx, wo_id, vehicle["id"], tech, status,
                                          started, completed, clock, jobs, touched)

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
    payments = _generate_payments(rp, ids, ctx, wo, status, started, completed, invoiced, clock, touched)
    compute_work_order_totals(wo, ctx.tax_rate_k, payments)
    touched.extend(x for x in (started, completed, invoiced) if x)
    wo["updated_at"] = iso(min(clock, max(touched)))
    return wo, payments, inspection


def _generate_inspection(rx: random.Random, ids: Ids, ctx: ShopContext, wo_id: int, vehicle_id: int,
                         tech: int, wo_status: str, started: int, completed: int | None, clock: int,
                         jobs: list[dict], touched: list[int]) -> dict:
    insp_id = ids.next("inspections")
    created = started + rx.randint(5 * 60, 45 * 60)
    sent = created + rx.randint(10 * 60, 90 * 60)
    responded = sent + rx.randint(5 * 60, 20 * HOUR if rx.random() < 0.2 else 2 * HOUR)
    if wo_status in ("completed", "invoiced"):
        status = "responded"
        # the inspection happened before the work was finished
        latest = completed - 60
        if responded > latest:
            span = max(3, latest - started)
            created = started + span // 4
            sent = started + span // 2
            responded = started + (3 * span) // 4
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
    decided_all = wo_status in ("completed", "invoiced")
    for name, category, job_name in rx.sample(INSPECTION_ITEMS, rx.randint(5, 9)):
        item_id = ids.next("inspection_items")
        condition = CONDITION.pick(rx)
        photos = []
        if condition != "green" or rx.random() < 0.05:
            for _ in range(rx.randint(1, 2) if condition != "green" else 1):
                pid = ids.next("photos")
                photos.append({"id": pid, "url": f"https://media.autosync.example/inspections/{insp_id}/{item_id}/{pid}.jpg",
                               "caption": rx.choice(("Before", "Close-up", "Measurement", "Overview", None))})
        item = {"id": item_id, "job_id": None, "name": name, "category": category,
                "condition": condition, "notes": rx.choice(ITEM_NOTES[condition]) or None,
                "estimate_amount": None, "approval": "not_applicable", "approved_at": None,
                "photos": photos}
        if condition != "green":
            if status == "responded":
                approval = (APPROVAL_CLOSED if decided_all else APPROVAL_OPEN).pick(rx)
            else:
                approval = "pending"
            if approval == "approved":
                job_status = "completed" if decided_all or rx.random() < 0.3 else "approved"
                appr = responded
            elif approval == "declined":
                job_status, appr = "declined", None
            else:
                job_status, appr = "pending", None
            job = build_job(rx, ids, ctx, wo_id, job_name, tech, job_status, appr, ctx.tax_labor,
                            with_fee=False)
            jobs.append(job)
            item["job_id"] = job["id"]
            item["estimate_amount"] = job["total"]
            item["approval"] = approval
            item["approved_at"] = job["approved_at"]
        items.append(item)
    stamp_sent = iso(sent) if status != "in_progress" else None
    stamp_resp = iso(responded) if status == "responded" else None
    updated = responded if status == "responded" else sent if status == "sent" else created
    if status == "responded":
        touched.append(responded)
    return {"id": insp_id, "shop_id": ctx.shop_id, "work_order_id": wo_id, "vehicle_id": vehicle_id,
            "technician_id": tech, "status": status, "sent_at": stamp_sent, "responded_at": stamp_resp,
            "created_at": iso(created), "updated_at": iso(min(updated, clock)), "items": items}



def _method(rng: random.Random, ctx: "ShopContext") -> str:
    made = ctx.payments_made
    ctx.payments_made += 1
    if made < 4:  # every method early on, so that even a tiny world has them all
        return ("card", "cash", "check", "text_to_pay")[made]
    return METHOD.pick(rng)


def _generate_payments(rp: random.Random, ids: Ids, ctx: ShopContext, wo: dict, status: str,
                       started: int | None, completed: int | None, invoiced: int | None, clock: int,
                       touched: list[int]) -> list[dict]:
    total_c = cents(wo["total"])
    if total_c <= 0 or started is None:
        return []
    plan: list[tuple[int, int]] = []  # (amount cents, timestamp)
    if status == "invoiced":
        r = rp.random()
        if ctx.first("split_payment"):
            r = 0.7
        elif ctx.first("partial_payment"):
            r = 0.85
        if r < 0.62:
            plan.append((total_c, invoiced + rp.randint(0, 3 * HOUR)))
        elif r < 0.80:
            deposit = half_up_div(total_c * rp.choice((20, 25, 30, 50)), 100)
            plan.append((deposit, started + rp.randint(60, HOUR)))
            plan.append((total_c - deposit, invoiced + rp.randint(0, 2 * DAY)))
        elif r < 0.92:
            plan.append((half_up_div(total_c * rp.choice((40, 50, 60)), 100), invoiced + rp.randint(0, DAY)))
        # else unpaid invoice
    elif status == "completed" and rp.random() < 0.3:
        plan.append((half_up_div(total_c * rp.choice((25, 50)), 100), completed + rp.randint(0, HOUR)))
    elif status in ("in_progress", "waiting_parts") and rp.random() < 0.1:
        plan.append((half_up_div(total_c * 20, 100), started + rp.randint(60, HOUR)))
    payments = []
    for amount_c, ts in plan:
        ts = min(ts, clock)
        method = _method(rp, ctx)
        if method == "card" and rp.random() < 0.06 or ctx.first("failed_payment"):
            failed = build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], amount_c, "card", "failed",
                                   max(started, ts - rp.randint(60, 600)))
            payments.append(failed)
        pay_status = "succeeded"
        if method == "text_to_pay" and clock - ts < DAY and rp.random() < 0.5:
            pay_status = "pending"
        pay = build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], amount_c, method, pay_status, ts)
        wanted = rp.random() < 0.05
        if pay_status == "succeeded" and (wanted or (not ctx.seen("refund") and ts + HOUR <= clock)):
            rts = ts + rp.randint(HOUR, 20 * DAY)
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
        ts = min(clock, invoiced + rp.randint(60, HOUR))
        payments.append(build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], total_c,
                                      "text_to_pay", "pending", ts))
        touched.append(ts)
    elif status in ("completed", "invoiced") and not ctx.seen("pending_payment"):
        outstanding = total_c - sum(cents(p["amount"]) - cents(p["refunded_amount"]) for p in payments if p["status"] != "failed")
        if outstanding > 0:
            ctx.first("pending_payment")
            ts = min(clock, (invoiced or completed) + rp.randint(60, HOUR))
            payments.append(build_payment(rp, ids.next("payments"), ctx.shop_id, wo["id"], outstanding,
                                          "text_to_pay", "pending", ts))
            touched.append(ts)
    return payments

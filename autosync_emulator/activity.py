"""Time and activity: the emulator clock moves only here, and moving it makes a shop busy.

`advance(seconds)` draws the events of that span for every shop (Poisson arrivals at
fixed hourly rates, from one seeded generator, so the same calls give the same world),
applies them in time order with the clock set to each event's second, and ends with the
clock at start + seconds. Late commits become visible as the clock passes them.
The background thread calls `advance` in small steps so the data changes while clients
page through it; the store lock is held only for one step at a time.
"""
from __future__ import annotations

import heapq
import threading
from typing import Any

from .seeding import rng_for
from .timefmt import HOUR, iso

# events per shop per hour (a busy shop), what each does is in Activity._apply
RATES: dict[str, float] = {
    "new_customer": 0.5,
    "new_lead": 0.1,            # a customer without vehicles (the kind that may be deleted)
    "new_vehicle": 0.2,
    "update_customer": 0.4,
    "new_work_order": 1.5,
    "progress_work_order": 3.0,
    "inspect": 1.2,
    "payment": 1.2,
    "settle_pending_payment": 0.3,
    "refund": 0.08,
    "stock": 1.5,
    "new_appointment": 0.6,
    "appointment_status": 0.6,
    "delete": 0.08,
    "bulk_edit": 0.02,
}


class Activity:
    """Draws and applies a span's events through the backend's public methods; owns no state but
    its seeded generator and the background thread."""

    def __init__(self, store, backend, seed: int):
        self.store = store
        self.backend = backend
        self.rng = rng_for(seed, "activity")
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.events_applied = 0
        self.last_error: str | None = None

    # -------------------------------------------------------------- clock
    def advance(self, seconds: float) -> dict:
        seconds = int(seconds)
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        store = self.store
        with store.lock:
            backend = self.backend
            start = store.clock
            end = start + seconds
            schedule: list[tuple[int, int, int, str]] = []
            seq = 0
            for shop_id in backend.shop_ids():
                for kind, per_hour in RATES.items():
                    t = float(start)
                    while True:
                        t += self.rng.expovariate(per_hour / HOUR)
                        if t > end:
                            break
                        seq += 1
                        schedule.append((int(t), seq, shop_id, kind))
            heapq.heapify(schedule)
            applied = 0
            while schedule:
                ts, _seq, shop_id, kind = heapq.heappop(schedule)
                if ts > store.clock:
                    store.set_clock(ts)
                if self._apply(shop_id, kind):
                    applied += 1
            store.set_clock(end)
            self.events_applied += applied
            return {"clock": iso(end), "events": applied}

    # -------------------------------------------------------------- one event
    def _apply(self, shop_id: int, kind: str) -> bool:
        b = self.backend
        r = self.rng
        if kind == "new_customer":
            b.new_customer(shop_id, r, with_vehicles=True)
        elif kind == "new_lead":
            b.new_customer(shop_id, r, with_vehicles=False)
        elif kind == "new_vehicle":
            cust = b.random_latest(shop_id, "customers", r)
            if cust is None:
                return False
            b.new_vehicle(cust, r)
        elif kind == "update_customer":
            cust = b.random_latest(shop_id, "customers", r)
            if cust is None:
                return False
            changes = r.choice(({"phone": f"({r.randint(201, 989)}) {r.randint(200, 999)}-{r.randint(0, 9999):04d}"},
                                {"notes": r.choice(("Prefers text", "Prefers email", "VIP", "Net 30 terms"))},
                                {"email": f"{cust['first_name'].lower()}.{cust['id']}@example.net"}))
            b.update_customer(shop_id, cust["id"], changes)
        elif kind == "new_work_order":
            wo = b.new_work_order(shop_id, r)
            if wo is None:
                return False
            if r.random() < 0.3:
                starts = b.clock - b.clock % 900
                b.add_appointment(shop_id, wo["customer_id"], wo["vehicle_id"], wo["id"], starts, starts + HOUR,
                                  r.choice(("Oil change", "Brake noise", "Diagnostic", "Scheduled maintenance")),
                                  status="arrived")  # a walk-in: the visit that opened this work order
        elif kind == "progress_work_order":
            return self._progress(shop_id)
        elif kind == "inspect":
            return self._inspect(shop_id)
        elif kind == "payment":
            return self._payment(shop_id)
        elif kind == "settle_pending_payment":
            pending = b.pending_payment_ids(shop_id)
            if not pending:
                return False
            pay = b.latest("payments", pending[r.randrange(len(pending))])
            b.settle_payment(pay, "succeeded" if r.random() < 0.85 else "failed")
        elif kind == "refund":
            refundable = b.refundable_payment_ids(shop_id)
            if not refundable:
                return False
            # refunds concern recent payments
            pay = b.latest("payments", refundable[max(0, len(refundable) - 1 - r.randrange(min(50, len(refundable))))])
            remaining = round(pay["amount"] * 100) - round(pay["refunded_amount"] * 100)
            amount = remaining if r.random() < 0.4 else max(1, remaining * r.randint(5, 60) // 100)
            b.add_refund(pay, amount, r.choice(("customer_request", "goodwill", "overcharge", "warranty")))
        elif kind == "stock":
            part = b.random_latest(shop_id, "inventory", r)
            if part is None:
                return False
            qty = part["quantity_on_hand"]
            qty = qty + r.randint(5, 30) if qty < part["reorder_point"] or r.random() < 0.3 else max(0, qty - r.randint(1, 4))
            b.save_part({**part, "quantity_on_hand": qty})
        elif kind == "new_appointment":
            cust = b.random_latest(shop_id, "customers", r)
            vehicles = b.vehicle_ids_of(cust["id"]) if cust else None
            if not vehicles:
                return False
            starts = b.clock + r.randint(2, 14 * 24) * HOUR
            starts -= starts % 900
            b.add_appointment(shop_id, cust["id"], vehicles[0], None, starts, starts + r.choice((1, 2)) * HOUR,
                              r.choice(("Oil change", "State inspection", "Tire rotation", "A/C not cold")))
        elif kind == "appointment_status":
            scheduled = b.appointment_ids_with_status(shop_id, "scheduled")
            if not scheduled:
                return False
            appt = b.latest("appointments", scheduled[r.randrange(len(scheduled))])
            b.set_appointment_status(appt, r.choices(("cancelled", "arrived", "no_show"), (3, 5, 2))[0])
        elif kind == "delete":
            return self._delete(shop_id)
        elif kind == "bulk_edit":
            return self._bulk_edit(shop_id)
        return True

    def _progress(self, shop_id: int) -> bool:
        b = self.backend
        r = self.rng
        status = r.choices(("draft", "in_progress", "waiting_parts", "completed"), (3, 4, 2, 3))[0]
        ids = b.work_order_ids_with_status(shop_id, status)
        if not ids:
            return False
        wo = b.latest("work_orders", ids[r.randrange(len(ids))])
        if status == "draft":
            b.transition(wo, "in_progress", r)
        elif status == "in_progress":
            b.transition(wo, "waiting_parts" if r.random() < 0.2 else "completed", r)
        elif status == "waiting_parts":
            b.transition(wo, "in_progress", r)
        else:
            b.transition(wo, "invoiced", r)
        return True

    def _inspect(self, shop_id: int) -> bool:
        b = self.backend
        r = self.rng
        in_progress = b.open_inspection_ids(shop_id, "in_progress")
        sent = b.open_inspection_ids(shop_id, "sent")
        step = r.choice(("create", "send", "respond"))
        if step == "send" and in_progress:
            b.send_inspection(b.latest("inspections", in_progress[r.randrange(len(in_progress))]))
            return True
        if step == "respond" and sent:
            b.respond_inspection(b.latest("inspections", sent[r.randrange(len(sent))]), r)
            return True
        candidates = b.uninspected_in_progress_ids(shop_id)
        if not candidates:
            return False
        b.create_inspection(b.latest("work_orders", candidates[r.randrange(len(candidates))]), r)
        return True

    def _payment(self, shop_id: int) -> bool:
        b = self.backend
        r = self.rng
        unpaid = b.unpaid_work_order_ids(shop_id)
        if not unpaid:
            return False
        # mostly the freshest invoices get paid
        wid = unpaid[max(0, len(unpaid) - 1 - r.randrange(min(30, len(unpaid))))]
        wo = b.latest("work_orders", wid)
        outstanding = b.outstanding_cents(wo)
        if outstanding <= 0:
            return False
        amount = outstanding if r.random() < 0.75 else max(1, outstanding * r.choice((25, 50)) // 100)
        method = r.choices(("card", "cash", "check", "text_to_pay"), (55, 15, 10, 20))[0]
        body: dict[str, Any] = {"work_order_id": wid, "amount": amount / 100, "method": method}
        if method == "card" and r.random() < 0.05:
            body["card_number"] = "4000000000000002"
        b.create_payment(shop_id, body)
        return True

    def _delete(self, shop_id: int) -> bool:
        """Hard deletes (no webhook), only where nothing refers to the row."""
        b = self.backend
        r = self.rng
        choice = r.choice(("appointment", "work_order", "customer"))
        if choice == "appointment":
            cancelled = b.appointment_ids_with_status(shop_id, "cancelled")
            if cancelled:
                b.delete_appointment(b.latest("appointments", cancelled[r.randrange(len(cancelled))]))
                return True
        if choice == "work_order":
            drafts = b.deletable_draft_ids(shop_id)
            if drafts:
                b.delete_work_order(b.latest("work_orders", drafts[r.randrange(len(drafts))]))
                return True
        oid = b.deletable_recent_customer(shop_id)
        if oid is None:
            return False
        b.delete_customer(shop_id, oid)
        return True

    def _bulk_edit(self, shop_id: int) -> bool:
        b = self.backend
        r = self.rng
        resource = r.choice(("inventory", "customers", "work_orders"))
        ids = b.object_ids(shop_id, resource)
        if not len(ids):
            return False
        ids = list(ids)
        b.bulk_edit(resource, r.sample(ids, min(len(ids), r.randint(150, 400))))
        return True

    # -------------------------------------------------------------- background
    def start(self, hours_per_second: float = 1.0, tick_seconds: float = 0.1) -> None:
        if isinstance(hours_per_second, bool) or not isinstance(hours_per_second, (int, float)) or not 0 < hours_per_second <= 1000:
            raise ValueError("hours_per_second must be a number in (0, 1000]")
        if isinstance(tick_seconds, bool) or not isinstance(tick_seconds, (int, float)) or not 0.01 <= tick_seconds <= 10:
            raise ValueError("tick_seconds must be a number in [0.01, 10]")
        self.stop()
        self._stop = threading.Event()
        step = hours_per_second * HOUR * tick_seconds

        def run() -> None:
            carry = 0.0
            while not self._stop.wait(tick_seconds):
                carry += step
                whole = int(carry)
                carry -= whole
                if whole:
                    try:
                        self.advance(whole)
                    except Exception as exc:  # keep serving; the error is visible on the control plane
                        self.last_error = repr(exc)
                        import logging
                        logging.getLogger("autosync_emulator").exception("background activity failed")
                        return

        self._thread = threading.Thread(target=run, name="autosync-emulator-activity", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

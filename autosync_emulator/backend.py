"""Business rules over the store: generation of the world, API writes, and the changes
that activity makes. No HTTP here; the routes and the activity generator call these.

Every change stores a fresh dict (copy on write, see store.py) stamped with the emulator
clock, keeps work-order money consistent (totals, paid, balance), and emits the webhook
event the real API would send. Callers hold `store.lock`.
"""
from __future__ import annotations

import re
import time
from typing import Any, Callable

from sortedcontainers import SortedSet

from . import world
from .errors import ApiError
from .store import Store
from .world import (HOUR, Ids, ShopContext, build_customer, build_job, build_payment, build_vehicle,
                    cents, compute_job_totals, compute_work_order_totals, dollars, fee_line, iso,
                    labor_line, parse_iso, part_line, rng_for, vin_is_valid)

EVENTS = ("workorder.created", "workorder.updated", "workorder.completed", "workorder.invoiced",
          "payment.received", "payment.refunded", "customer.created", "customer.updated",
          "appointment.created", "inspection.completed", "inspection.approved", "inventory.low_stock")
WO_FLOW = {"draft": ("in_progress",), "in_progress": ("waiting_parts", "completed"),
           "waiting_parts": ("in_progress", "completed"), "completed": ("invoiced",), "invoiced": ()}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DECLINE_TEST_CARD = "4000000000000002"


# ------------------------------------------------------------------ body validation

def _field_error(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", message, field)


def req_str(body: dict, field: str, max_len: int = 200) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _field_error(field, f"The '{field}' field is required and must be a non-empty string.")
    if len(value) > max_len:
        raise _field_error(field, f"The '{field}' field must be at most {max_len} characters.")
    return value.strip()


def opt_str(body: dict, field: str, max_len: int = 500) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _field_error(field, f"The '{field}' field must be a string.")
    if len(value) > max_len:
        raise _field_error(field, f"The '{field}' field must be at most {max_len} characters.")
    return value


def req_int(body: dict, field: str, lo: int = 1, hi: int = 2**53) -> int:
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _field_error(field, f"The '{field}' field is required and must be an integer.")
    if not lo <= value <= hi:
        raise _field_error(field, f"The '{field}' field must be between {lo} and {hi}.")
    return value


def opt_int(body: dict, field: str, lo: int = 0, hi: int = 2**53) -> int | None:
    return None if body.get(field) is None else req_int(body, field, lo, hi)


def opt_bool(body: dict, field: str) -> bool | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _field_error(field, f"The '{field}' field must be true or false.")
    return value


def req_amount(body: dict, field: str, lo_cents: int = 1, hi_cents: int = 10**9) -> int:
    """A money or quantity value with at most 2 decimals, in hundredths."""
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise _field_error(field, f"The '{field}' field is required and must be a number.")
    if abs(value) > 1e12:
        raise _field_error(field, f"The '{field}' field is out of range.")
    hundredths = round(value * 100)
    if abs(value * 100 - hundredths) > 1e-6:
        raise _field_error(field, f"The '{field}' field allows at most 2 decimals.")
    if not lo_cents <= hundredths <= hi_cents:
        raise _field_error(field, f"The '{field}' field must be between {lo_cents / 100} and {hi_cents / 100}.")
    return int(hundredths)


def opt_amount(body: dict, field: str, lo_cents: int = 0, hi_cents: int = 10**9) -> int | None:
    return None if body.get(field) is None else req_amount(body, field, lo_cents, hi_cents)


def req_timestamp(body: dict, field: str) -> int:
    value = body.get(field)
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value):
        raise _field_error(field, f"The '{field}' field must be a UTC timestamp like 2024-01-15T10:30:00Z.")
    try:
        ts = parse_iso(value)
        if iso(ts) != value:
            raise ValueError
    except (ValueError, OverflowError):
        raise _field_error(field, f"The '{field}' field is not a valid date.") from None
    return ts


def only_fields(body: Any, allowed: set[str]) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The request body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _field_error(unknown[0], f"Unknown field '{unknown[0]}'.")
    return body


# ------------------------------------------------------------------ backend

class Backend:
    def __init__(self, store: Store, seed: int, shops: int, work_orders: int, start: str | int):
        self.store = store
        self.seed = seed
        self.n_shops = shops
        self.n_work_orders = work_orders
        self.start = parse_iso(start) if isinstance(start, str) else int(start)
        self.ids = Ids()
        self.contexts: dict[int, ShopContext] = {}
        self.build_seconds = 0.0
        self.write_rng = rng_for(seed, "api-writes")
        self.event_seq = 0
        self.event_sink: Callable[[str, int, bytes, str], None] | None = None
        self.wants_event: Callable[[str, int], bool] = lambda event, shop_id: False
        # bookkeeping over the latest state (business rules must see uncommitted writes too)
        self.payments_of_wo: dict[int, list[int]] = {}
        self.inspection_of_wo: dict[int, int] = {}
        self.wo_by_status: dict[int, dict[str, SortedSet]] = {}
        self.unpaid: dict[int, SortedSet] = {}
        self.pending_payments: dict[int, SortedSet] = {}
        self.refundable: dict[int, SortedSet] = {}
        self.open_inspections: dict[int, dict[str, SortedSet]] = {}
        self.vehicles_of_customer: dict[int, list[int]] = {}
        self.wo_count_of_customer: dict[int, int] = {}
        self.appointments_of_customer: dict[int, int] = {}
        self.linked_wo: set[int] = set()
        self.appointments_by_status: dict[int, dict[str, SortedSet]] = {}
        self.next_number: dict[int, int] = {}
        self.vins: dict[int, set[str]] = {}

    # -------------------------------------------------------------- generation
    def generate(self) -> None:
        began = time.perf_counter()
        store = self.store
        with store.lock:
            store.set_clock(self.start)
            contexts = world.generate_world(store.bulk_add, self.ids, self.seed, self.n_shops,
                                            self.n_work_orders, self.start)
            self.contexts = {ctx.shop_id: ctx for ctx in contexts}
            store.finish_bulk()
            self._index_world()
        self.build_seconds = time.perf_counter() - began

    def _index_world(self) -> None:
        # plain sets while loading (SortedSet.add one by one is slow at 200k rows), sorted at the end
        for shop_id in self.contexts:
            self.wo_by_status[shop_id] = {s: set() for s in ("draft", "in_progress", "waiting_parts", "completed")}
            self.unpaid[shop_id] = set()
            self.pending_payments[shop_id] = set()
            self.refundable[shop_id] = set()
            self.open_inspections[shop_id] = {"in_progress": set(), "sent": set()}
            self.appointments_by_status[shop_id] = {"scheduled": set(), "cancelled": set()}
            self.next_number[shop_id] = 1001
            self.vins[shop_id] = set()
        tables = self.store.tables
        for vid, v in tables["vehicles"].latest.items():
            self.vehicles_of_customer.setdefault(v["customer_id"], []).append(vid)
            self.vins[v["shop_id"]].add(v["vin"])
        for pid, p in tables["payments"].latest.items():
            self.payments_of_wo.setdefault(p["work_order_id"], []).append(pid)
            self._index_payment(p)
        for iid, insp in tables["inspections"].latest.items():
            self.inspection_of_wo[insp["work_order_id"]] = iid
            self._index_inspection(None, insp)
        for wid, wo in tables["work_orders"].latest.items():
            self._index_wo(None, wo)
            self.wo_count_of_customer[wo["customer_id"]] = self.wo_count_of_customer.get(wo["customer_id"], 0) + 1
            self.next_number[wo["shop_id"]] = max(self.next_number[wo["shop_id"]], wo["number"] + 1)
        for aid, appt in tables["appointments"].latest.items():
            self._index_appointment(None, appt)
        for shop_id in self.contexts:
            for group in (self.wo_by_status[shop_id], self.open_inspections[shop_id], self.appointments_by_status[shop_id]):
                for key in group:
                    group[key] = SortedSet(group[key])
            for flat in (self.unpaid, self.pending_payments, self.refundable):
                flat[shop_id] = SortedSet(flat[shop_id])

    # -------------------------------------------------------------- indexes
    def _index_wo(self, old: dict | None, new: dict | None) -> None:
        ref = new or old
        by_status = self.wo_by_status[ref["shop_id"]]
        if old is not None and old["status"] in by_status:
            by_status[old["status"]].discard(old["id"])
        if new is not None and new["status"] in by_status:
            by_status[new["status"]].add(new["id"])
        unpaid = self.unpaid[ref["shop_id"]]
        if new is not None and new["status"] in ("completed", "invoiced") and self._outstanding_c(new) > 0:
            unpaid.add(new["id"])
        else:
            unpaid.discard(ref["id"])

    def _index_payment(self, p: dict) -> None:
        shop = p["shop_id"]
        if p["status"] == "pending":
            self.pending_payments[shop].add(p["id"])
        else:
            self.pending_payments[shop].discard(p["id"])
        if p["status"] == "succeeded" and cents(p["refunded_amount"]) < cents(p["amount"]):
            self.refundable[shop].add(p["id"])
        else:
            self.refundable[shop].discard(p["id"])

    def _index_inspection(self, old: dict | None, new: dict) -> None:
        open_ = self.open_inspections[new["shop_id"]]
        if old is not None and old["status"] in open_:
            open_[old["status"]].discard(old["id"])
        if new["status"] in open_:
            open_[new["status"]].add(new["id"])

    def _index_appointment(self, old: dict | None, new: dict | None) -> None:
        ref = new or old
        by_status = self.appointments_by_status[ref["shop_id"]]
        if old is not None:
            if old["status"] in by_status:
                by_status[old["status"]].discard(old["id"])
        else:
            self.appointments_of_customer[ref["customer_id"]] = self.appointments_of_customer.get(ref["customer_id"], 0) + 1
            if ref["work_order_id"] is not None:
                self.linked_wo.add(ref["work_order_id"])
        if new is not None and new["status"] in by_status:
            by_status[new["status"]].add(new["id"])
        if new is None:
            self.appointments_of_customer[ref["customer_id"]] -= 1

    # -------------------------------------------------------------- basics
    @property
    def clock(self) -> int:
        return self.store.clock

    def now_iso(self) -> str:
        return iso(self.store.clock)

    def ctx(self, shop_id: int) -> ShopContext:
        return self.contexts[shop_id]

    def latest(self, resource: str, oid: int) -> dict | None:
        return self.store.latest(resource, oid)

    def owned(self, resource: str, shop_id: int, oid: Any, field: str | None = None) -> dict:
        """The latest version of an object of this shop, or a 404 (422 when it is a body field)."""
        obj = self.store.latest(resource, oid) if isinstance(oid, int) and not isinstance(oid, bool) else None
        if obj is None or obj["shop_id"] != shop_id:
            label = resource.rstrip("s").replace("_", " ")
            if field is not None:
                raise _field_error(field, f"No {label} with id {oid} in this shop.")
            raise ApiError(404, "not_found", f"{label.capitalize()} {oid} not found.")
        return obj

    def payments_of(self, wo_id: int) -> list[dict]:
        table = self.store.tables["payments"].latest
        return [table[pid] for pid in self.payments_of_wo.get(wo_id, ()) if pid in table]

    def _outstanding_c(self, wo: dict) -> int:
        """What can still be charged: total - net paid - pending charges."""
        pending = sum(cents(p["amount"]) for p in self.payments_of(wo["id"]) if p["status"] == "pending")
        return cents(wo["total"]) - cents(wo["amount_paid"]) - pending

    def detail(self, resource: str, obj: dict) -> dict:
        """The object as GET {id} returns it (from the latest state)."""
        if resource == "work_orders":
            return {**obj, "payments": self.payments_of(obj["id"])}
        return obj

    def emit(self, event: str, resource: str, obj: dict) -> None:
        self.event_seq += 1
        if self.event_sink is None or not self.wants_event(event, obj["shop_id"]):
            return
        event_id = f"evt_{self.seed & 0xffff:04x}{self.event_seq:012x}"
        self.event_sink(event, obj["shop_id"], self.detail(resource, obj), event_id)

    # -------------------------------------------------------------- work-order money
    def save_work_order(self, wo: dict, touched: bool = True) -> dict:
        """Recompute the money of a (fresh) work-order dict and store it."""
        old = self.store.latest("work_orders", wo["id"])
        compute_work_order_totals(wo, self.ctx(wo["shop_id"]).tax_rate_k, self.payments_of(wo["id"]))
        if touched:
            wo["updated_at"] = self.now_iso()
        self.store.put("work_orders", wo)
        self._index_wo(old, wo)
        return wo

    def refresh_work_order_money(self, wo_id: int) -> dict:
        return self.save_work_order(dict(self.store.latest("work_orders", wo_id)))

    def _non_failed_net_c(self, wo_id: int) -> int:
        return sum(cents(p["amount"]) - cents(p["refunded_amount"])
                   for p in self.payments_of(wo_id) if p["status"] != "failed")

    def _total_if(self, wo: dict, jobs: list[dict]) -> int:
        probe = {**wo, "jobs": jobs}
        compute_work_order_totals(probe, self.ctx(wo["shop_id"]).tax_rate_k, [])
        return cents(probe["total"])

    # -------------------------------------------------------------- customers
    CUSTOMER_FIELDS = {"first_name", "last_name", "email", "phone", "is_business", "company_name", "address", "notes"}

    def _customer_fields(self, body: dict, partial: bool) -> dict:
        out: dict[str, Any] = {}
        for field in ("first_name", "last_name"):
            if not partial or field in body:
                out[field] = req_str(body, field, 100)
        if "email" in body:
            email = opt_str(body, "email", 200)
            if email is not None and not EMAIL_RE.match(email):
                raise _field_error("email", "The 'email' field must be a valid email address.")
            out["email"] = email
        for field, limit in (("phone", 40), ("company_name", 200), ("notes", 2000)):
            if field in body:
                out[field] = opt_str(body, field, limit)
        if "is_business" in body:
            out["is_business"] = bool(opt_bool(body, "is_business"))
        if "address" in body:
            addr = body["address"]
            if addr is None:
                out["address"] = None
            else:
                if not isinstance(addr, dict) or set(addr) - {"street", "city", "state", "zip"}:
                    raise _field_error("address", "The 'address' field must be an object {street, city, state, zip}.")
                out["address"] = {k: opt_str(addr, k, 200) for k in ("street", "city", "state", "zip")}
        return out

    def create_customer(self, shop_id: int, body: Any) -> dict:
        body = only_fields(body, self.CUSTOMER_FIELDS)
        fields = self._customer_fields(body, partial=False)
        stamp = self.now_iso()
        cust = {"id": self.ids.next("customers"), "shop_id": shop_id, "first_name": fields["first_name"],
                "last_name": fields["last_name"], "email": fields.get("email"), "phone": fields.get("phone"),
                "is_business": fields.get("is_business", False), "company_name": fields.get("company_name"),
                "address": fields.get("address"), "notes": fields.get("notes"),
                "created_at": stamp, "updated_at": stamp}
        self.store.put("customers", cust)
        self.emit("customer.created", "customers", cust)
        return cust

    def update_customer(self, shop_id: int, cid: int, body: Any) -> dict:
        body = only_fields(body, self.CUSTOMER_FIELDS)
        old = self.owned("customers", shop_id, cid)
        fields = self._customer_fields(body, partial=True)
        if not fields:
            return old
        cust = {**old, **fields, "updated_at": self.now_iso()}
        self.store.put("customers", cust)
        self.emit("customer.updated", "customers", cust)
        return cust

    def delete_customer(self, shop_id: int, cid: int) -> None:
        self.owned("customers", shop_id, cid)
        if self.vehicles_of_customer.get(cid) or self.wo_count_of_customer.get(cid) or self.appointments_of_customer.get(cid):
            raise ApiError(409, "conflict", f"Customer {cid} has vehicles, work orders or appointments and cannot be deleted.")
        self.store.delete("customers", cid)

    # -------------------------------------------------------------- vehicles
    VEHICLE_FIELDS = {"customer_id", "year", "make", "model", "trim", "vin", "mileage", "license_plate"}

    def _vehicle_fields(self, shop_id: int, body: dict, partial: bool, current_vin: str | None = None) -> dict:
        out: dict[str, Any] = {}
        if not partial or "customer_id" in body:
            out["customer_id"] = self.owned("customers", shop_id, req_int(body, "customer_id"), "customer_id")["id"]
        if not partial or "year" in body:
            out["year"] = req_int(body, "year", 1900, time.gmtime(self.clock).tm_year + 1)
        for field in ("make", "model"):
            if not partial or field in body:
                out[field] = req_str(body, field, 60)
        for field in ("trim", "license_plate"):
            if field in body:
                out[field] = opt_str(body, field, 40)
        if "mileage" in body:
            out["mileage"] = opt_int(body, "mileage", 0, 5_000_000)
        if "vin" in body:
            vin = opt_str(body, "vin", 17)
            if vin is not None:
                vin = vin.upper()
                if len(vin) != 17 or not vin_is_valid(vin):
                    raise _field_error("vin", "The 'vin' field must be 17 characters with a valid check digit.")
                if vin != current_vin and vin in self.vins[shop_id]:
                    raise ApiError(409, "conflict", f"A vehicle with VIN {vin} already exists in this shop.", "vin")
            out["vin"] = vin
        return out

    def create_vehicle(self, shop_id: int, body: Any) -> dict:
        body = only_fields(body, self.VEHICLE_FIELDS)
        fields = self._vehicle_fields(shop_id, body, partial=False)
        stamp = self.now_iso()
        vehicle = {"id": self.ids.next("vehicles"), "shop_id": shop_id, "customer_id": fields["customer_id"],
                   "year": fields["year"], "make": fields["make"], "model": fields["model"],
                   "trim": fields.get("trim"), "vin": fields.get("vin"), "mileage": fields.get("mileage"),
                   "license_plate": fields.get("license_plate"), "created_at": stamp, "updated_at": stamp}
        self._store_vehicle(None, vehicle)
        return vehicle

    def update_vehicle(self, shop_id: int, vid: int, body: Any) -> dict:
        body = only_fields(body, self.VEHICLE_FIELDS)
        old = self.owned("vehicles", shop_id, vid)
        fields = self._vehicle_fields(shop_id, body, partial=True, current_vin=old["vin"])
        if not fields:
            return old
        if "customer_id" in fields and fields["customer_id"] != old["customer_id"] and self.wo_count_of_vehicle(vid):
            raise ApiError(409, "conflict", "A vehicle with work orders cannot change owner.", "customer_id")
        vehicle = {**old, **fields, "updated_at": self.now_iso()}
        self._store_vehicle(old, vehicle)
        return vehicle

    def wo_count_of_vehicle(self, vid: int) -> int:
        return sum(1 for wo in self.store.tables["work_orders"].latest.values() if wo["vehicle_id"] == vid)

    def _store_vehicle(self, old: dict | None, vehicle: dict) -> None:
        if old is not None:
            self.vehicles_of_customer[old["customer_id"]].remove(old["id"])
            if old["vin"]:
                self.vins[old["shop_id"]].discard(old["vin"])
        self.vehicles_of_customer.setdefault(vehicle["customer_id"], []).append(vehicle["id"])
        if vehicle["vin"]:
            self.vins[vehicle["shop_id"]].add(vehicle["vin"])
        self.store.put("vehicles", vehicle)

    # -------------------------------------------------------------- work orders
    WO_FIELDS = {"customer_id", "vehicle_id", "technician_id", "service_advisor_id", "notes", "mileage_in", "jobs"}

    def _employee(self, shop_id: int, body: dict, field: str, role: str) -> int | None:
        eid = opt_int(body, field, 1)
        if eid is None:
            return None
        emp = self.owned("employees", shop_id, eid, field)
        if emp["role"] != role and not (role == "service_advisor" and emp["role"] == "manager"):
            raise _field_error(field, f"Employee {eid} is not a {role.replace('_', ' ')}.")
        return eid

    def create_work_order(self, shop_id: int, body: Any) -> dict:
        body = only_fields(body, self.WO_FIELDS)
        customer = self.owned("customers", shop_id, req_int(body, "customer_id"), "customer_id")
        vehicle = self.owned("vehicles", shop_id, req_int(body, "vehicle_id"), "vehicle_id")
        if vehicle["customer_id"] != customer["id"]:
            raise _field_error("vehicle_id", f"Vehicle {vehicle['id']} does not belong to customer {customer['id']}.")
        tech = self._employee(shop_id, body, "technician_id", "technician")
        advisor = self._employee(shop_id, body, "service_advisor_id", "service_advisor")
        mileage = opt_int(body, "mileage_in", 0, 5_000_000)
        jobs_body = body.get("jobs") or []
        if not isinstance(jobs_body, list) or len(jobs_body) > 50:
            raise _field_error("jobs", "The 'jobs' field must be a list of at most 50 jobs.")
        wo_id = self.ids.last["work_orders"] + 1
        jobs = [self._job_from_body(shop_id, wo_id, job, tech, f"jobs[{i}]") for i, job in enumerate(jobs_body)]
        self.ids.next("work_orders")
        number = self.next_number[shop_id]
        self.next_number[shop_id] += 1
        stamp = self.now_iso()
        wo = {"id": wo_id, "shop_id": shop_id, "number": number, "customer_id": customer["id"],
              "vehicle_id": vehicle["id"], "technician_id": tech, "service_advisor_id": advisor,
              "status": "draft", "notes": opt_str(body, "notes", 2000),
              "mileage_in": mileage if mileage is not None else vehicle["mileage"],
              "labor_total": 0.0, "parts_total": 0.0, "fees_total": 0.0, "subtotal": 0.0, "tax_total": 0.0,
              "total": 0.0, "amount_paid": 0.0, "balance_due": 0.0, "started_at": None, "completed_at": None,
              "invoiced_at": None, "created_at": stamp, "updated_at": stamp, "jobs": jobs}
        self.wo_count_of_customer[customer["id"]] = self.wo_count_of_customer.get(customer["id"], 0) + 1
        self.save_work_order(wo)
        self.emit("workorder.created", "work_orders", wo)
        return wo

    def _job_from_body(self, shop_id: int, wo_id: int, body: Any, default_tech: int | None, where: str) -> dict:
        if not isinstance(body, dict) or set(body) - {"name", "technician_id", "line_items"}:
            raise _field_error(where, f"'{where}' must be an object with name, technician_id?, line_items?.")
        name = req_str(body, "name", 200)
        tech = self._employee(shop_id, body, "technician_id", "technician") or default_tech
        lines_body = body.get("line_items") or []
        if not isinstance(lines_body, list) or len(lines_body) > 100:
            raise _field_error(f"{where}.line_items", "line_items must be a list of at most 100 items.")
        ctx = self.ctx(shop_id)
        job_id = self.ids.last["jobs"] + 1
        lines = []
        next_line = self.ids.last["line_items"]
        for i, line in enumerate(lines_body):
            next_line += 1
            lines.append(self._line_from_body(shop_id, ctx, job_id, next_line, line, tech, f"{where}.line_items[{i}]"))
        self.ids.last["jobs"] = job_id
        self.ids.last["line_items"] = next_line
        job = {"id": job_id, "work_order_id": wo_id, "name": name, "technician_id": tech, "status": "pending",
               "approved_at": None, "labor_total": 0.0, "parts_total": 0.0, "total": 0.0, "line_items": lines}
        compute_job_totals(job)
        return job

    def _line_from_body(self, shop_id: int, ctx: ShopContext, job_id: int, line_id: int, body: Any,
                        tech: int | None, where: str) -> dict:
        if not isinstance(body, dict):
            raise _field_error(where, f"'{where}' must be an object.")
        allowed = {"type", "description", "technician_id", "hours", "rate", "part_id", "quantity", "unit_price", "taxable"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise _field_error(f"{where}.{unknown[0]}", f"Unknown field '{unknown[0]}'.")
        kind = body.get("type")
        taxable = opt_bool(body, "taxable")
        if kind == "labor":
            hours = req_amount(body, "hours", 1, 100_00)
            rate = opt_amount(body, "rate", 0, 10_000_00)
            line_tech = self._employee(shop_id, body, "technician_id", "technician") or tech
            desc = opt_str(body, "description", 500) or "Labor"
            return labor_line(line_id, job_id, desc, line_tech, hours, ctx.labor_rate_c if rate is None else rate,
                              ctx.tax_labor if taxable is None else taxable)
        if kind == "part":
            part = self.owned("inventory", shop_id, req_int(body, "part_id"), f"{where}.part_id")
            qty = req_amount(body, "quantity", 1, 10_000_00)
            line = part_line(line_id, job_id, part, qty)
            price = opt_amount(body, "unit_price", 0, 1_000_000_00)
            if price is not None:
                line["unit_price"] = dollars(price)
                line["total"] = dollars(world.quantity_total_cents(qty, price))
            if taxable is not None:
                line["taxable"] = taxable
            if body.get("description") is not None:
                line["description"] = opt_str(body, "description", 500)
            return line
        if kind == "fee":
            price = req_amount(body, "unit_price", 0, 1_000_000_00)
            qty = opt_amount(body, "quantity", 1, 10_000_00)
            desc = opt_str(body, "description", 500) or "Fee"
            line = fee_line(line_id, job_id, desc, price, True if taxable is None else taxable)
            if qty is not None and qty != 100:
                line["quantity"] = qty / 100
                line["total"] = dollars(world.quantity_total_cents(qty, price))
            return line
        raise _field_error(f"{where}.type", "A line item's type must be labor, part or fee.")

    def update_work_order(self, shop_id: int, wid: int, body: Any) -> dict:
        body = only_fields(body, {"technician_id", "service_advisor_id", "notes", "mileage_in"})
        old = self.owned("work_orders", shop_id, wid)
        changes: dict[str, Any] = {}
        if "technician_id" in body:
            changes["technician_id"] = self._employee(shop_id, body, "technician_id", "technician")
        if "service_advisor_id" in body:
            changes["service_advisor_id"] = self._employee(shop_id, body, "service_advisor_id", "service_advisor")
        if "notes" in body:
            changes["notes"] = opt_str(body, "notes", 2000)
        if "mileage_in" in body:
            changes["mileage_in"] = opt_int(body, "mileage_in", 0, 5_000_000)
        if not changes:
            return old
        wo = self.save_work_order({**old, **changes})
        self.emit("workorder.updated", "work_orders", wo)
        return wo

    def add_job(self, shop_id: int, wid: int, body: Any) -> dict:
        old = self.owned("work_orders", shop_id, wid)
        if old["status"] in ("completed", "invoiced"):
            raise ApiError(409, "conflict", f"Work order {wid} is {old['status']}; jobs can no longer be added.")
        job = self._job_from_body(shop_id, wid, body, old["technician_id"], "job")
        wo = self.save_work_order({**old, "jobs": [*old["jobs"], job]})
        self.emit("workorder.updated", "work_orders", wo)
        return job

    def set_status(self, shop_id: int, wid: int, body: Any) -> dict:
        body = only_fields(body, {"status"})
        status = body.get("status")
        if status not in WO_FLOW:
            raise _field_error("status", f"The 'status' field must be one of {', '.join(WO_FLOW)}.")
        old = self.owned("work_orders", shop_id, wid)
        if status == old["status"]:
            return old
        if status not in WO_FLOW[old["status"]]:
            raise ApiError(409, "conflict", f"A work order cannot go from {old['status']} to {status}.", "status")
        return self.transition(old, status, self.write_rng)

    def transition(self, old: dict, status: str, rng) -> dict:
        """Move a work order along its flow, with the job and inspection changes that implies."""
        now = self.now_iso()
        wo = {**old, "status": status}
        if status == "in_progress" and old["started_at"] is None:
            wo["started_at"] = now
            linked = self._linked_jobs(old["id"])
            wo["jobs"] = [({**j, "status": "approved", "approved_at": now} if j["status"] == "pending" and j["id"] not in linked else j)
                          for j in old["jobs"]]
        if status == "completed":
            self._settle_pending(wo, rng)
            wo = {**self.store.latest("work_orders", old["id"]), "status": "completed", "completed_at": now}
            wo["jobs"] = [({**j, "status": "completed"} if j["status"] == "approved" else j) for j in wo["jobs"]]
        if status == "invoiced":
            wo["invoiced_at"] = now
        wo = self.save_work_order(wo)
        event = {"completed": "workorder.completed", "invoiced": "workorder.invoiced"}.get(status, "workorder.updated")
        self.emit(event, "work_orders", wo)
        return wo

    def _linked_jobs(self, wo_id: int) -> set[int]:
        iid = self.inspection_of_wo.get(wo_id)
        if iid is None:
            return set()
        insp = self.store.latest("inspections", iid)
        return {it["job_id"] for it in insp["items"] if it["job_id"] is not None}

    def _settle_pending(self, wo: dict, rng) -> None:
        """Before completion every job is decided: answer the inspection, approve the rest."""
        iid = self.inspection_of_wo.get(wo["id"])
        if iid is not None:
            insp = self.store.latest("inspections", iid)
            if insp["status"] == "in_progress":
                self.send_inspection(insp)
                insp = self.store.latest("inspections", iid)
            if insp["status"] == "sent" or any(it["approval"] == "pending" for it in insp["items"]):
                self.respond_inspection(insp, rng, decide_all=True)
        current = self.store.latest("work_orders", wo["id"])
        now = self.now_iso()
        if any(j["status"] == "pending" for j in current["jobs"]):
            jobs = [({**j, "status": "approved", "approved_at": now} if j["status"] == "pending" else j) for j in current["jobs"]]
            self.save_work_order({**current, "jobs": jobs})

    # -------------------------------------------------------------- inspections
    def create_inspection(self, wo: dict, rng) -> dict:
        ctx = self.ctx(wo["shop_id"])
        stamp = self.now_iso()
        iid = self.ids.next("inspections")
        items = []
        new_jobs = []
        for name, category, job_name in rng.sample(world.INSPECTION_ITEMS, rng.randint(6, 10)):
            item_id = self.ids.next("inspection_items")
            condition = rng.choices(("green", "yellow", "red"), (70, 20, 10))[0]
            photos = []
            if condition != "green":
                for _ in range(rng.randint(1, 2)):
                    pid = self.ids.next("photos")
                    photos.append({"id": pid, "url": f"https://media.autosync.example/inspections/{iid}/{item_id}/{pid}.jpg",
                                   "caption": rng.choice(("Before", "Close-up", "Measurement", None))})
            item = {"id": item_id, "job_id": None, "name": name, "category": category, "condition": condition,
                    "notes": rng.choice(world.ITEM_NOTES[condition]) or None, "estimate_amount": None,
                    "approval": "not_applicable", "approved_at": None, "photos": photos}
            if condition != "green":
                job = build_job(rng, self.ids, ctx, wo["id"], job_name, wo["technician_id"], "pending", None,
                                ctx.tax_labor, with_fee=False)
                new_jobs.append(job)
                item.update(job_id=job["id"], estimate_amount=job["total"], approval="pending")
            items.append(item)
        insp = {"id": iid, "shop_id": wo["shop_id"], "work_order_id": wo["id"], "vehicle_id": wo["vehicle_id"],
                "technician_id": wo["technician_id"], "status": "in_progress", "sent_at": None, "responded_at": None,
                "created_at": stamp, "updated_at": stamp, "items": items}
        self.inspection_of_wo[wo["id"]] = iid
        self.store.put("inspections", insp)
        self._index_inspection(None, insp)
        if new_jobs:
            self.save_work_order({**wo, "jobs": [*wo["jobs"], *new_jobs]})
        return insp

    def send_inspection(self, insp: dict) -> dict:
        now = self.now_iso()
        new = {**insp, "status": "sent", "sent_at": now, "updated_at": now}
        self.store.put("inspections", new)
        self._index_inspection(insp, new)
        self.emit("inspection.completed", "inspections", new)
        return new

    def respond_inspection(self, insp: dict, rng, decide_all: bool = False) -> dict:
        """The customer answers: each pending yellow/red item approved or declined (or left)."""
        now = self.now_iso()
        wo = self.store.latest("work_orders", insp["work_order_id"])
        jobs = {j["id"]: j for j in wo["jobs"]}
        items = []
        approved_any = False
        for item in insp["items"]:
            if item["approval"] != "pending":
                items.append(item)
                continue
            choice = rng.choices(("approved", "declined", "pending"), (50, 35, 0 if decide_all else 15))[0]
            if choice == "declined":
                trial = {**jobs, item["job_id"]: {**jobs[item["job_id"]], "status": "declined"}}
                if self._total_if(wo, list(trial.values())) < self._non_failed_net_c(wo["id"]):
                    choice = "approved"  # a decline may never leave payments above the total
            if choice == "approved":
                approved_any = True
                jobs[item["job_id"]] = {**jobs[item["job_id"]], "status": "approved", "approved_at": now}
                items.append({**item, "approval": "approved", "approved_at": now})
            elif choice == "declined":
                jobs[item["job_id"]] = {**jobs[item["job_id"]], "status": "declined", "approved_at": None}
                items.append({**item, "approval": "declined"})
            else:
                items.append(item)
        new = {**insp, "status": "responded", "sent_at": insp["sent_at"] or now, "responded_at": now,
               "updated_at": now, "items": items}
        self.store.put("inspections", new)
        self._index_inspection(insp, new)
        wo = self.save_work_order({**wo, "jobs": [jobs[j["id"]] for j in wo["jobs"]]})
        if approved_any:
            self.emit("inspection.approved", "inspections", new)
        self.emit("workorder.updated", "work_orders", wo)
        return new

    # -------------------------------------------------------------- payments
    PAYMENT_FIELDS = {"work_order_id", "amount", "method", "card_number", "card_brand"}

    def create_payment(self, shop_id: int, body: Any) -> dict:
        body = only_fields(body, self.PAYMENT_FIELDS)
        wo = self.owned("work_orders", shop_id, req_int(body, "work_order_id"), "work_order_id")
        amount = req_amount(body, "amount", 1, 10**10)
        method = body.get("method")
        if method not in ("card", "cash", "check", "text_to_pay"):
            raise _field_error("method", "The 'method' field must be one of card, cash, check, text_to_pay.")
        if wo["status"] == "draft":
            raise ApiError(409, "conflict", f"Work order {wo['id']} is a draft; it cannot take payments yet.")
        outstanding = self._outstanding_c(wo)
        if amount > outstanding:
            raise _field_error("amount", f"The amount exceeds what is outstanding on the work order ({dollars(max(0, outstanding)):.2f}).")
        status = {"card": "succeeded", "cash": "succeeded", "check": "succeeded", "text_to_pay": "pending"}[method]
        card_number = opt_str(body, "card_number", 19)
        if method == "card" and card_number is not None:
            digits = card_number.replace(" ", "")
            if not digits.isdigit() or not 12 <= len(digits) <= 19:
                raise _field_error("card_number", "The 'card_number' field must be 12-19 digits.")
            if digits == DECLINE_TEST_CARD:
                status = "failed"
        pay = build_payment(self.write_rng, self.ids.next("payments"), shop_id, wo["id"], amount, method, status, self.clock)
        if method == "card" and card_number is not None:
            pay["last4"] = card_number.replace(" ", "")[-4:]
            pay["card_brand"] = "visa" if card_number.startswith("4") else pay["card_brand"]
        self._store_payment(None, pay)
        return pay

    def _store_payment(self, old: dict | None, pay: dict) -> None:
        if old is None:
            self.payments_of_wo.setdefault(pay["work_order_id"], []).append(pay["id"])
        self.store.put("payments", pay)
        self._index_payment(pay)
        wo = self.refresh_work_order_money(pay["work_order_id"])
        if pay["status"] == "succeeded" and (old is None or old["status"] != "succeeded"):
            self.emit("payment.received", "payments", pay)
        self.emit("workorder.updated", "work_orders", wo)

    def settle_payment(self, pay: dict, status: str) -> dict:
        new = {**pay, "status": status, "updated_at": self.now_iso()}
        self._store_payment(pay, new)
        return new

    def refund(self, shop_id: int, pid: int, body: Any) -> dict:
        body = only_fields(body, {"amount", "reason"})
        pay = self.owned("payments", shop_id, pid)
        if pay["status"] != "succeeded":
            raise ApiError(409, "conflict", f"Payment {pid} is {pay['status']}; only succeeded payments can be refunded.")
        remaining = cents(pay["amount"]) - cents(pay["refunded_amount"])
        amount = req_amount(body, "amount", 1, 10**10) if body.get("amount") is not None else remaining
        if amount > remaining or remaining <= 0:
            raise _field_error("amount", f"The refund exceeds what remains refundable ({dollars(remaining):.2f}).")
        reason = opt_str(body, "reason", 200) or "customer_request"
        return self.add_refund(pay, amount, reason)

    def add_refund(self, pay: dict, amount_c: int, reason: str) -> dict:
        refund = {"id": self.ids.next("refunds"), "amount": dollars(amount_c), "reason": reason, "created_at": self.now_iso()}
        new = {**pay, "refunds": [*pay["refunds"], refund],
               "refunded_amount": dollars(cents(pay["refunded_amount"]) + amount_c), "updated_at": self.now_iso()}
        self.store.put("payments", new)
        self._index_payment(new)
        wo = self.refresh_work_order_money(pay["work_order_id"])
        self.emit("payment.refunded", "payments", new)
        self.emit("workorder.updated", "work_orders", wo)
        return refund

    # -------------------------------------------------------------- appointments
    APPOINTMENT_FIELDS = {"customer_id", "vehicle_id", "work_order_id", "starts_at", "ends_at", "title"}

    def create_appointment(self, shop_id: int, body: Any) -> dict:
        body = only_fields(body, self.APPOINTMENT_FIELDS)
        customer = self.owned("customers", shop_id, req_int(body, "customer_id"), "customer_id")
        vehicle_id = opt_int(body, "vehicle_id", 1)
        if vehicle_id is not None:
            vehicle = self.owned("vehicles", shop_id, vehicle_id, "vehicle_id")
            if vehicle["customer_id"] != customer["id"]:
                raise _field_error("vehicle_id", f"Vehicle {vehicle_id} does not belong to customer {customer['id']}.")
        wo_id = opt_int(body, "work_order_id", 1)
        if wo_id is not None:
            self.owned("work_orders", shop_id, wo_id, "work_order_id")
        starts = req_timestamp(body, "starts_at")
        ends = req_timestamp(body, "ends_at") if body.get("ends_at") is not None else starts + HOUR
        if ends <= starts:
            raise _field_error("ends_at", "The 'ends_at' field must be after 'starts_at'.")
        return self.add_appointment(shop_id, customer["id"], vehicle_id, wo_id, starts, ends,
                                    opt_str(body, "title", 200) or "Appointment")

    def add_appointment(self, shop_id: int, customer_id: int, vehicle_id: int | None, wo_id: int | None,
                        starts: int, ends: int, title: str, status: str = "scheduled") -> dict:
        stamp = self.now_iso()
        appt = {"id": self.ids.next("appointments"), "shop_id": shop_id, "customer_id": customer_id,
                "vehicle_id": vehicle_id, "work_order_id": wo_id, "starts_at": iso(starts), "ends_at": iso(ends),
                "status": status, "title": title, "created_at": stamp, "updated_at": stamp}
        self.store.put("appointments", appt)
        self._index_appointment(None, appt)
        self.emit("appointment.created", "appointments", appt)
        return appt

    def set_appointment_status(self, appt: dict, status: str) -> dict:
        new = {**appt, "status": status, "updated_at": self.now_iso()}
        self.store.put("appointments", new)
        self._index_appointment(appt, new)
        return new

    def delete_appointment(self, appt: dict) -> None:
        self.store.delete("appointments", appt["id"])
        self._index_appointment(appt, None)

    # -------------------------------------------------------------- inventory
    INVENTORY_FIELDS = {"quantity_on_hand", "adjustment", "reorder_point", "unit_cost", "unit_price", "location"}

    def update_inventory(self, shop_id: int, pid: int, body: Any) -> dict:
        body = only_fields(body, self.INVENTORY_FIELDS)
        old = self.owned("inventory", shop_id, pid)
        changes: dict[str, Any] = {}
        if "quantity_on_hand" in body and "adjustment" in body:
            raise _field_error("adjustment", "Send quantity_on_hand or adjustment, not both.")
        if "quantity_on_hand" in body:
            changes["quantity_on_hand"] = req_int(body, "quantity_on_hand", 0, 10**7)
        if "adjustment" in body:
            qty = old["quantity_on_hand"] + req_int(body, "adjustment", -10**7, 10**7)
            if qty < 0:
                raise _field_error("adjustment", "The adjustment would make the stock negative.")
            changes["quantity_on_hand"] = qty
        if "reorder_point" in body:
            changes["reorder_point"] = req_int(body, "reorder_point", 0, 10**7)
        for field in ("unit_cost", "unit_price"):
            if field in body:
                changes[field] = dollars(req_amount(body, field, 0, 10**9))
        if "location" in body:
            changes["location"] = opt_str(body, "location", 100)
        if not changes:
            return old
        return self.save_part({**old, **changes})

    def save_part(self, part: dict) -> dict:
        old = self.store.latest("inventory", part["id"])
        part["updated_at"] = self.now_iso()
        self.store.put("inventory", part)
        was_low = old["quantity_on_hand"] < old["reorder_point"]
        if part["quantity_on_hand"] < part["reorder_point"] and not was_low:
            self.emit("inventory.low_stock", "inventory", part)
        return part

    # -------------------------------------------------------------- activity helpers
    def new_customer(self, shop_id: int, rng, with_vehicles: bool) -> dict:
        cust = build_customer(rng, self.ids.next("customers"), shop_id, self.clock)
        self.store.put("customers", cust)
        self.emit("customer.created", "customers", cust)
        if with_vehicles:
            for _ in range(rng.choice((1, 1, 2))):
                self.new_vehicle(cust, rng)
        return cust

    def new_vehicle(self, cust: dict, rng) -> dict:
        year = time.gmtime(self.clock).tm_year
        vehicle = build_vehicle(rng, self.ids.next("vehicles"), cust["shop_id"], cust["id"], self.clock, year)
        self._store_vehicle(None, vehicle)
        return vehicle

    def new_work_order(self, shop_id: int, rng) -> dict | None:
        vehicles = self.store.tables["vehicles"].latest
        ctx = self.ctx(shop_id)
        # recent and returning customers alike: a random vehicle of this shop
        candidates = self.store.tables["vehicles"].index.get(shop_id)
        if candidates is None or not len(candidates.by_id):
            return None
        for _ in range(5):
            vid = candidates.by_id[rng.randrange(len(candidates.by_id))]
            vehicle = vehicles.get(vid)
            if vehicle is not None:
                break
        else:
            return None
        wo_id = self.ids.next("work_orders")
        tech = rng.choice(ctx.technicians)
        jobs = [build_job(rng, self.ids, ctx, wo_id, name, tech, "pending", None, ctx.tax_labor, rng.random() < 0.3)
                for name in rng.sample(world.BASE_JOBS, rng.choice((1, 1, 2)))]
        number = self.next_number[shop_id]
        self.next_number[shop_id] += 1
        stamp = self.now_iso()
        wo = {"id": wo_id, "shop_id": shop_id, "number": number, "customer_id": vehicle["customer_id"],
              "vehicle_id": vehicle["id"], "technician_id": tech, "service_advisor_id": rng.choice(ctx.advisors),
              "status": "draft", "notes": rng.choice(world.WO_NOTES) or None, "mileage_in": (vehicle["mileage"] or 0) + rng.randint(0, 4000),
              "labor_total": 0.0, "parts_total": 0.0, "fees_total": 0.0, "subtotal": 0.0, "tax_total": 0.0,
              "total": 0.0, "amount_paid": 0.0, "balance_due": 0.0, "started_at": None, "completed_at": None,
              "invoiced_at": None, "created_at": stamp, "updated_at": stamp, "jobs": jobs}
        self.wo_count_of_customer[vehicle["customer_id"]] = self.wo_count_of_customer.get(vehicle["customer_id"], 0) + 1
        self.save_work_order(wo)
        self.emit("workorder.created", "work_orders", wo)
        if wo["mileage_in"] > (vehicle["mileage"] or 0):
            self._store_vehicle(vehicle, {**vehicle, "mileage": wo["mileage_in"], "updated_at": stamp})
        return wo

    def delete_work_order(self, wo: dict) -> None:
        self.store.delete("work_orders", wo["id"])
        self._index_wo(wo, None)
        self.wo_count_of_customer[wo["customer_id"]] -= 1

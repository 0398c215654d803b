"""Customers: create, update, hard delete (only when nothing refers to one), new sign-ups."""
from __future__ import annotations

import re
from typing import Any

from ..errors import ApiError
from ..records import build_customer
from .validation import field_error, only_fields, opt_bool, opt_str, req_str

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CustomersMixin:
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
                raise field_error("email", "The 'email' field must be a valid email address.")
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
                    raise field_error("address", "The 'address' field must be an object {street, city, state, zip}.")
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

    def vehicle_ids_of(self, customer_id: int) -> list[int]:
        return self.vehicles_of_customer.get(customer_id) or []

    def deletable_recent_customer(self, shop_id: int) -> int | None:
        """A customer nothing refers to, among the most recent sign-ups (the likeliest leads)."""
        ids = self.object_ids(shop_id, "customers")
        for oid in list(ids.islice(max(0, len(ids) - 200), reverse=True)):
            if not self.vehicles_of_customer.get(oid) and not self.wo_count_of_customer.get(oid) \
                    and not self.appointments_of_customer.get(oid) and self.store.latest("customers", oid) is not None:
                return oid
        return None

    def delete_customer(self, shop_id: int, cid: int) -> None:
        self.owned("customers", shop_id, cid)
        if self.vehicles_of_customer.get(cid) or self.wo_count_of_customer.get(cid) or self.appointments_of_customer.get(cid):
            raise ApiError(409, "conflict", f"Customer {cid} has vehicles, work orders or appointments and cannot be deleted.")
        self.store.delete("customers", cid)

    def new_customer(self, shop_id: int, rng, with_vehicles: bool) -> dict:
        cust = build_customer(rng, self.ids.next("customers"), shop_id, self.clock)
        self.store.put("customers", cust)
        self.emit("customer.created", "customers", cust)
        if with_vehicles:
            for _ in range(rng.choice((1, 1, 2))):
                self.new_vehicle(cust, rng)
        return cust

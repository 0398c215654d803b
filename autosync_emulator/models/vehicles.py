"""Vehicles: create and update (one VIN per shop, owner fixed once it has work orders), new ones."""
from __future__ import annotations

import time
from typing import Any

from ..errors import ApiError
from ..records import build_vehicle
from ..vin import vin_is_valid
from .validation import field_error, only_fields, opt_int, opt_str, req_int, req_str


class VehiclesMixin:
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
                    raise field_error("vin", "The 'vin' field must be 17 characters with a valid check digit.")
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
        return sum(1 for wo in self.store.latest_objects("work_orders") if wo["vehicle_id"] == vid)

    def _store_vehicle(self, old: dict | None, vehicle: dict) -> None:
        if old is not None:
            self.vehicles_of_customer[old["customer_id"]].remove(old["id"])
            if old["vin"]:
                self.vins[old["shop_id"]].discard(old["vin"])
        self.vehicles_of_customer.setdefault(vehicle["customer_id"], []).append(vehicle["id"])
        if vehicle["vin"]:
            self.vins[vehicle["shop_id"]].add(vehicle["vin"])
        self.store.put("vehicles", vehicle)

    def new_vehicle(self, cust: dict, rng) -> dict:
        year = time.gmtime(self.clock).tm_year
        vehicle = build_vehicle(rng, self.ids.next("vehicles"), cust["shop_id"], cust["id"], self.clock, year)
        self._store_vehicle(None, vehicle)
        return vehicle

"""Appointments: booked through the API or by activity, their status, hard deletes of cancelled ones."""
from __future__ import annotations

from typing import Any

from ..timefmt import HOUR, iso
from .validation import field_error, only_fields, opt_int, opt_str, req_int, req_timestamp


class AppointmentsMixin:
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

    # -------------------------------------------------------------- appointments
    APPOINTMENT_FIELDS = {"customer_id", "vehicle_id", "work_order_id", "starts_at", "ends_at", "title"}

    def create_appointment(self, shop_id: int, body: Any) -> dict:
        body = only_fields(body, self.APPOINTMENT_FIELDS)
        customer = self.owned("customers", shop_id, req_int(body, "customer_id"), "customer_id")
        vehicle_id = opt_int(body, "vehicle_id", 1)
        if vehicle_id is not None:
            vehicle = self.owned("vehicles", shop_id, vehicle_id, "vehicle_id")
            if vehicle["customer_id"] != customer["id"]:
                raise field_error("vehicle_id", f"Vehicle {vehicle_id} does not belong to customer {customer['id']}.")
        wo_id = opt_int(body, "work_order_id", 1)
        if wo_id is not None:
            self.owned("work_orders", shop_id, wo_id, "work_order_id")
        starts = req_timestamp(body, "starts_at")
        ends = req_timestamp(body, "ends_at") if body.get("ends_at") is not None else starts + HOUR
        if ends <= starts:
            raise field_error("ends_at", "The 'ends_at' field must be after 'starts_at'.")
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

    def appointment_ids_with_status(self, shop_id: int, status: str):
        """Scheduled or cancelled appointments, by id."""
        return self.appointments_by_status[shop_id][status]

    def set_appointment_status(self, appt: dict, status: str) -> dict:
        new = {**appt, "status": status, "updated_at": self.now_iso()}
        self.store.put("appointments", new)
        self._index_appointment(appt, new)
        return new

    def delete_appointment(self, appt: dict) -> None:
        self.store.delete("appointments", appt["id"])
        self._index_appointment(appt, None)

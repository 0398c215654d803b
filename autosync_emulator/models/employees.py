"""Employees are read-only through the API; writes refer to them by role."""
from __future__ import annotations

from .validation import field_error, opt_int


class EmployeesMixin:
    def _employee(self, shop_id: int, body: dict, field: str, role: str) -> int | None:
        eid = opt_int(body, field, 1)
        if eid is None:
            return None
        emp = self.owned("employees", shop_id, eid, field)
        if emp["role"] != role and not (role == "service_advisor" and emp["role"] == "manager"):
            raise field_error(field, f"Employee {eid} is not a {role.replace('_', ' ')}.")
        return eid

"""The backend of the emulated API, composed from one mixin per resource family (moto's layout).

State and business rules only, no HTTP: `app.py` calls the public methods named in the route
table (`routes.py`), `activity.py` calls the rest.
"""
from __future__ import annotations

from .appointments import AppointmentsMixin
from .base import BackendBase
from .customers import CustomersMixin
from .employees import EmployeesMixin
from .inspections import InspectionsMixin
from .inventory import InventoryMixin
from .payments import PaymentsMixin
from .shops import ShopsMixin
from .vehicles import VehiclesMixin
from .work_orders import WO_FLOW, WorkOrdersMixin


class Backend(ShopsMixin, EmployeesMixin, CustomersMixin, VehiclesMixin, WorkOrdersMixin, InspectionsMixin,
              PaymentsMixin, AppointmentsMixin, InventoryMixin, BackendBase):
    """Every resource family over one store, one id sequence and one seeded source for writes."""


__all__ = ["Backend", "WO_FLOW"]

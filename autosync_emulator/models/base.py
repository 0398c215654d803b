"""The backend's foundation: state bookkeeping, generation, lookups and webhook events.

The mixins of this package (one per resource family, as moto composes its EC2 backend) add the
business rules; `models/__init__.py` composes them into `Backend`. No HTTP here: the routes and
the activity generator call public methods. Callers hold `store.lock`.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from sortedcontainers import SortedSet

from ..errors import ApiError
from ..records import Ids, ShopContext
from ..seeding import rng_for
from ..store import Store
from ..timefmt import iso, parse_iso
from ..world import generate_world
from .validation import field_error


class BackendBase:
    """State shared by every resource family; the indexes each family keeps are declared here
    because generation fills them all in one pass (`_index_world`)."""

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
            contexts = generate_world(store.bulk_add, self.ids, self.seed, self.n_shops,
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
        for wo in tables["work_orders"].latest.values():
            self._index_wo(None, wo)
            self.wo_count_of_customer[wo["customer_id"]] = self.wo_count_of_customer.get(wo["customer_id"], 0) + 1
            self.next_number[wo["shop_id"]] = max(self.next_number[wo["shop_id"]], wo["number"] + 1)
        for appt in tables["appointments"].latest.values():
            self._index_appointment(None, appt)
        for shop_id in self.contexts:
            for group in (self.wo_by_status[shop_id], self.open_inspections[shop_id], self.appointments_by_status[shop_id]):
                for key in group:
                    group[key] = SortedSet(group[key])
            for flat in (self.unpaid, self.pending_payments, self.refundable):
                flat[shop_id] = SortedSet(flat[shop_id])

    # -------------------------------------------------------------- basics
    @property
    def clock(self) -> int:
        return self.store.clock

    def now_iso(self) -> str:
        return iso(self.store.clock)

    def latest(self, resource: str, oid: int) -> dict | None:
        return self.store.latest(resource, oid)

    def owned(self, resource: str, shop_id: int, oid: Any, field: str | None = None) -> dict:
        """The latest version of an object of this shop, or a 404 (422 when it is a body field)."""
        obj = self.store.latest(resource, oid) if isinstance(oid, int) and not isinstance(oid, bool) else None
        if obj is None or obj["shop_id"] != shop_id:
            label = resource.rstrip("s").replace("_", " ")
            if field is not None:
                raise field_error(field, f"No {label} with id {oid} in this shop.")
            raise ApiError(404, "not_found", f"{label.capitalize()} {oid} not found.")
        return obj

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


    # -------------------------------------------------------------- picks for activity
    def object_ids(self, shop_id: int, resource: str):
        """The ids of one shop's latest objects of a resource, sorted (a SortedList; may be empty)."""
        return self.store.ids_of_shop(resource, shop_id)

    def random_latest(self, shop_id: int, resource: str, rng) -> dict | None:
        ids = self.object_ids(shop_id, resource)
        if not len(ids):
            return None
        return self.store.latest(resource, ids[rng.randrange(len(ids))])

    def bulk_edit(self, resource: str, ids: list[int]) -> None:
        """Hundreds of rows get the same updated_at second, as a bulk edit in the shop's admin does."""
        stamp = self.now_iso()
        store = self.store
        for oid in sorted(ids):
            obj = store.latest(resource, oid)
            if obj is None:
                continue
            if resource == "inventory":
                price = round(obj["unit_price"] * 100)
                store.put("inventory", {**obj, "unit_price": (price + price * 3 // 100) / 100, "updated_at": stamp})
            elif resource == "customers":
                new = {**obj, "notes": "Marketing opt-in", "updated_at": stamp}
                store.put("customers", new)
                self.emit("customer.updated", "customers", new)
            else:
                new = {**obj, "notes": ((obj["notes"] or "") + " [reviewed]").strip(), "updated_at": stamp}
                store.put("work_orders", new)
                self.emit("workorder.updated", "work_orders", new)

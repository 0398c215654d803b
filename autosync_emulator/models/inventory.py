"""Inventory: stock, prices and location; a part falling under its reorder point fires low_stock."""
from __future__ import annotations

from typing import Any

from ..money import dollars
from .validation import field_error, only_fields, opt_str, req_amount, req_int


class InventoryMixin:
    # -------------------------------------------------------------- inventory
    INVENTORY_FIELDS = {"quantity_on_hand", "adjustment", "reorder_point", "unit_cost", "unit_price", "location"}

    def update_inventory(self, shop_id: int, pid: int, body: Any) -> dict:
        body = only_fields(body, self.INVENTORY_FIELDS)
        old = self.owned("inventory", shop_id, pid)
        changes: dict[str, Any] = {}
        if "quantity_on_hand" in body and "adjustment" in body:
            raise field_error("adjustment", "Send quantity_on_hand or adjustment, not both.")
        if "quantity_on_hand" in body:
            changes["quantity_on_hand"] = req_int(body, "quantity_on_hand", 0, 10**7)
        if "adjustment" in body:
            qty = old["quantity_on_hand"] + req_int(body, "adjustment", -10**7, 10**7)
            if qty < 0:
                raise field_error("adjustment", "The adjustment would make the stock negative.")
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

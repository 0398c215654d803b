"""Shops are read-only; what business rules need of one is its context (rates, staff, parts)."""
from __future__ import annotations

from ..records import ShopContext


class ShopsMixin:
    contexts: dict[int, ShopContext]

    def ctx(self, shop_id: int) -> ShopContext:
        return self.contexts[shop_id]

    def shop_ids(self) -> list[int]:
        return sorted(self.contexts)

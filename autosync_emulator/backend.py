"""Business rules over the store: generation of the world, API writes, and the changes
that activity makes. No HTTP here; the routes and the activity generator call these."""
from __future__ import annotations

import time

from . import world
from .store import Store
from .world import Ids, ShopContext, iso, parse_iso


class Backend:
    def __init__(self, store: Store, seed: int, shops: int, work_orders: int, start: str):
        self.store = store
        self.seed = seed
        self.n_shops = shops
        self.n_work_orders = work_orders
        self.start = parse_iso(start) if isinstance(start, str) else int(start)
        self.ids = Ids()
        self.contexts: dict[int, ShopContext] = {}
        self.build_seconds = 0.0

    def generate(self) -> None:
        began = time.perf_counter()
        store = self.store
        with store.lock:
            store.set_clock(self.start)
            contexts = world.generate_world(store.bulk_add, self.ids, self.seed, self.n_shops,
                                            self.n_work_orders, self.start)
            self.contexts = {ctx.shop_id: ctx for ctx in contexts}
            store.finish_bulk()
        self.build_seconds = time.perf_counter() - began

    @property
    def clock(self) -> int:
        return self.store.clock

    def now_iso(self) -> str:
        return iso(self.store.clock)

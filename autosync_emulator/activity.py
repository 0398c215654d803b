"""Time and activity (placeholder until the activity generator lands)."""
from __future__ import annotations


class Activity:
    def __init__(self, core):
        self.core = core

    def advance(self, seconds: float) -> dict:
        store = self.core.store
        with store.lock:
            store.set_clock(store.clock + int(seconds))
        return {"clock": self.core.backend.now_iso(), "events": 0}

    def start(self, **options):
        raise ValueError("background activity is not available yet")

    def stop(self):
        pass

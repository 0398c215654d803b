"""Counts of requests served, by route template and status, and by rate window (for tests and
benchmarks: how many requests each fixed rate window met, served or refused with a 429)."""
from __future__ import annotations

import threading


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._total = 0
            self._by_route: dict[str, dict[str, int]] = {}
            self._rate_limited = 0
            # window end (X-RateLimit-Reset) -> {"served": n, "rate_limited": n}, rate-limited routes only
            self._by_window: dict[int, dict[str, int]] = {}

    def record(self, route: str, status: int | str, window: int | None = None) -> None:
        with self._lock:
            if window is not None:
                counts = self._by_window.setdefault(window, {"served": 0, "rate_limited": 0})
                counts["rate_limited" if status == 429 else "served"] += 1
            self._total += 1
            counts = self._by_route.setdefault(route, {})
            key = str(status)
            counts[key] = counts.get(key, 0) + 1
            if status == 429:
                self._rate_limited += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"total": self._total,
                    "by_route": {route: dict(counts) for route, counts in sorted(self._by_route.items())},
                    "rate_limited": self._rate_limited,
                    "by_window": {str(end): dict(counts) for end, counts in sorted(self._by_window.items())}}

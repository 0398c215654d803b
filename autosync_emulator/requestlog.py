"""Counts of requests served, by route template and status (for tests and benchmarks)."""
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

    def record(self, route: str, status: int | str) -> None:
        with self._lock:
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
                    "rate_limited": self._rate_limited}

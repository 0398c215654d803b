"""A real fixed-window rate limit per API key or OAuth client, on wall time (an injectable clock).

Windows are aligned to multiples of the window length in epoch seconds (one-minute
windows start on the minute), so `X-RateLimit-Reset` is the epoch second the window ends.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

UNLIMITED_HEADER = 1_000_000  # what Limit/Remaining say when limiting is off (never 0: a client would wait)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float = 60, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.limit = int(limit)
        self.window_seconds = float(window_seconds)
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def configure(self, limit: int | None = None, window_seconds: float | None = None) -> None:
        with self._lock:
            if limit is not None:
                self.limit = int(limit)
            if window_seconds is not None:
                if window_seconds <= 0:
                    raise ValueError("rate_window_seconds must be > 0")
                self.window_seconds = float(window_seconds)
            self._windows.clear()

    def _window(self, now: float) -> tuple[float, float]:
        start = math.floor(now / self.window_seconds) * self.window_seconds
        return start, start + self.window_seconds

    def hit(self, identity: str, now: float | None = None) -> Decision:
        now = self.clock() if now is None else now
        with self._lock:
            start, end = self._window(now)
            if self.limit <= 0:
                return Decision(True, UNLIMITED_HEADER, UNLIMITED_HEADER, math.ceil(end), 0)
            w_start, used = self._windows.get(identity, (start, 0))
            if w_start != start:
                used = 0
            if used >= self.limit:
                self._windows[identity] = (start, used)
                return Decision(False, self.limit, 0, math.ceil(end), max(1, math.ceil(end - now)))
            used += 1
            self._windows[identity] = (start, used)
            return Decision(True, self.limit, self.limit - used, math.ceil(end), 0)

    def peek(self, identity: str | None, now: float | None = None) -> Decision:
        now = self.clock() if now is None else now
        with self._lock:
            start, end = self._window(now)
            if self.limit <= 0:
                return Decision(True, UNLIMITED_HEADER, UNLIMITED_HEADER, math.ceil(end), 0)
            used = 0
            if identity is not None:
                w_start, n = self._windows.get(identity, (start, 0))
                used = n if w_start == start else 0
            return Decision(used < self.limit, self.limit, max(0, self.limit - used), math.ceil(end),
                            max(1, math.ceil(end - now)))

"""Counters of what the receiver did, served as JSON on GET /metrics.

Why not prometheus_client: these are a dozen integers read by an operator or a test; a
dependency and its text format would add nothing here.
"""
from __future__ import annotations

import threading
from collections import Counter


class ReceiverMetrics:
    """Thread-safe counters: requests by outcome, refusals by reason, body-read extremes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()  # stored, duplicate
        self.refused: Counter[str] = Counter()  # error code -> count (every 4xx and 503)
        self.largest_body_read_on_refusal = 0  # bytes read of a body refused as too large
        self.largest_chunk = 0  # largest single read from the server (one ASGI message)

    def count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1

    def refuse(self, code: str) -> None:
        with self._lock:
            self.refused[code] += 1

    def body_refused_after(self, bytes_read: int) -> None:
        with self._lock:
            self.largest_body_read_on_refusal = max(self.largest_body_read_on_refusal, bytes_read)

    def chunk(self, size: int) -> None:
        if size > self.largest_chunk:  # racy max is fine: only ever grows, read for reports
            self.largest_chunk = size

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "outcomes": dict(self.outcomes),
                "refused": dict(self.refused),
                "refused_total": sum(self.refused.values()),
                "largest_body_read_on_refusal": self.largest_body_read_on_refusal,
                "largest_chunk": self.largest_chunk,
            }

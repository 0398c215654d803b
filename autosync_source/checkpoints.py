"""Checkpoints: a long sync commits what it has read every so often, so a kill loses at most one.

A first sync on the real API is long (about 36,000 requests for five years of a busy shop: two
hours at the sandbox's 300 per minute, six at live's 100), and cursors commit only with a
completed dlt load. So a run reads for at most `minutes` (or `requests` requests), then every
shop reader stops at the row it has just handled and its cursor moves exactly that far: the
listing is ascending by `updated_at`, so every row before that point has its detail and
children loaded in the same package (cursors.py). The run then ends normally and dlt commits
the rows and the cursors together: one committed load = one checkpoint. The caller runs again
until `complete` (`run_in_checkpoints`); each run starts where the last committed one stopped
and says so.

Which listings are left is committed with each checkpoint (source state `checkpoint`), so the
next run, in this process or after a kill, reads only those: a listing finished in an earlier
checkpoint of the same sync is not listed again (its changes since wait for the next sync).

Why not dlt's own machinery: dlt commits state only at the end of a load, and a resource cannot
commit part of its state mid-extract; ending the run and starting another is the one way to
get a committed cursor. The extra cost per checkpoint is one list page per (shop, resource)
that was in progress (its listing restarts at the cursor).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

logger = logging.getLogger("autosync_source")

# Ten minutes: long enough that the fixed cost of a checkpoint (a dlt load, about a second, plus
# one list page per listing in progress) is noise, short enough that a kill loses little (3,000
# requests at the sandbox's 300/min, 1,000 at live's 100).
DEFAULT_CHECKPOINT_MINUTES = 10.0


@dataclass
class Checkpoint:
    """The budget of one run (one dlt load) and what the run left unfinished.

    `minutes` bounds reading time from the first request check; `requests` (0: no bound) bounds
    the requests sent. Shared by every resource and shop thread of one source instance."""

    minutes: float = DEFAULT_CHECKPOINT_MINUTES
    requests: int = 0
    clock: Callable[[], float] = time.monotonic
    stopped: Dict[Tuple[str, Any], Optional[str]] = field(default_factory=dict)  # (resource, shop) -> position
    # listings stopped part-way (the rest were not started): each costs one list page to restart
    restarts: int = 0
    failed: Dict[Tuple[str, Any], str] = field(default_factory=dict)  # (resource, shop) -> reason
    _started_at: Optional[float] = None
    _requests_at_start: int = 0
    _request_count: Optional[Callable[[], int]] = None
    _reached: bool = False
    handled_any: bool = False  # a row was handled in this run: it made progress
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, request_count: Callable[[], int]) -> None:
        """Start the clock (once): called when the first resource starts reading."""
        with self._lock:
            if self._started_at is None:
                self._started_at = self.clock()
                self._request_count = request_count
                self._requests_at_start = request_count()

    def reached(self) -> bool:
        """True once the budget is spent; from then on every reader stops at its next row."""
        if self._reached:
            return True
        if self._started_at is None or not self.handled_any:
            # Until one row is handled, never stop: every run moves at least one cursor, so a
            # budget smaller than the run's fixed cost (the shops listing) still converges.
            return False
        if self.minutes and self.minutes > 0 and self.clock() - self._started_at >= self.minutes * 60:
            self._reached = True
        elif self.requests and self._request_count is not None and self._request_count() - self._requests_at_start >= self.requests:
            self._reached = True
        if self._reached:
            logger.info("checkpoint: budget spent (%s); readers stop at their next row and this load commits", self.describe())
        return self._reached

    def describe(self) -> str:
        parts = []
        if self.minutes and self.minutes > 0:
            parts.append(f"{self.minutes:g} min")
        if self.requests:
            parts.append(f"{self.requests} requests")
        return " or ".join(parts) or "unbounded"

    def note_stopped(self, resource: str, shop_id: Any, position: Optional[str], started: bool = True) -> None:
        with self._lock:
            self.stopped[(resource, shop_id)] = position
            self.restarts += bool(started)

    def stopped_shops(self, resource: str) -> List[Any]:
        with self._lock:
            return sorted(shop for (name, shop) in self.stopped if name == resource)

    def note_failed(self, resource: str, shop_id: Any, reason: str) -> None:
        with self._lock:
            self.failed[(resource, shop_id)] = reason

    def requests_spent(self) -> int:
        if self._request_count is None:
            return 0
        return self._request_count() - self._requests_at_start

    @property
    def complete(self) -> bool:
        """Every listing of this run reached its end (failed shops aside: they retry next run)."""
        return not self.stopped

    def outcome(self) -> Dict[str, Any]:
        """What the run left unfinished, as plain data (a worker process hands it to the engine)."""
        with self._lock:
            return {"stopped": dict(self.stopped), "restarts": self.restarts, "failed": dict(self.failed),
                    "handled_any": self.handled_any, "requests_spent": self.requests_spent()}

    def absorb(self, outcome: Dict[str, Any]) -> None:
        """Take the `outcome` of this checkpoint's run in a worker process as this one's."""
        spent = int(outcome["requests_spent"])
        with self._lock:
            self.stopped, self.restarts, self.failed = dict(outcome["stopped"]), int(outcome["restarts"]), dict(outcome["failed"])
            self.handled_any = bool(outcome["handled_any"])
            self._requests_at_start, self._request_count = 0, lambda: spent

    def as_dict(self) -> Dict[str, Any]:
        return {
            "complete": self.complete,
            "stopped": [{"resource": r, "shop": s, "at": at} for (r, s), at in sorted(self.stopped.items(), key=str)],
            "failed_shops": [{"resource": r, "shop": s, "error": e} for (r, s), e in sorted(self.failed.items(), key=str)],
        }


def run_in_checkpoints(
    run_once: Callable[[Checkpoint], Any],
    minutes: float = DEFAULT_CHECKPOINT_MINUTES,
    requests: int = 0,
    max_runs: Optional[int] = None,
) -> List[Tuple[Checkpoint, Any]]:
    """Call `run_once(checkpoint)` (build the source with it, run the pipeline) until a run
    completes; each returns after its load committed. Returns every (checkpoint, result)."""
    results: List[Tuple[Checkpoint, Any]] = []
    while True:
        checkpoint = Checkpoint(minutes=minutes, requests=requests)
        results.append((checkpoint, run_once(checkpoint)))
        if checkpoint.complete:
            return results
        logger.info("checkpoint %d committed (%d requests); %d listings continue in the next load",
                    len(results), checkpoint.requests_spent(), len(checkpoint.stopped))
        if max_runs is not None and len(results) >= max_runs:
            return results

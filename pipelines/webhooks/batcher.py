"""Debounce deliveries into syncs, run one at a time on a background thread."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

logger = logging.getLogger("pipelines.webhooks")

OnEvents = Callable[[set[str], set[int]], None]


class SyncTriggerBatcher:
    """Collects the (resources, shops) that deliveries touch and hands them to `on_events` from
    one background thread, after `debounce_seconds` without a new delivery (or `max_delay_seconds`
    after the first one, so a steady stream still syncs).

    Why not in the request: a sync takes seconds to minutes and the sender times out and retries.
    Why one thread: two connector runs on one pipeline would fight over its state and the
    destination; deliveries that arrive during a run form the next batch.
    Bounded by construction: what is pending is a set of resource names and shop ids, never a
    queue of deliveries, so a flood of events costs one more sync, not memory.
    A failed `on_events` is logged, not retried: the events stay in `webhook_events` and the next
    incremental sync (scheduled or triggered) reads from its own cursor, so nothing is lost.
    """

    def __init__(self, on_events: OnEvents, debounce_seconds: float = 2.0, max_delay_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.on_events = on_events
        # The clock is injectable so tests step time instead of sleeping through it (wake() makes
        # the worker look at a clock that moved without a real wait).
        self.clock = clock
        self.debounce_seconds = debounce_seconds
        self.max_delay_seconds = max(max_delay_seconds, debounce_seconds)
        self._cond = threading.Condition()
        self._resources: set[str] = set()
        self._shop_ids: set[int] = set()
        self._first_at = 0.0
        self._last_at = 0.0
        self._submitted = 0  # submissions so far
        self._done = 0  # submissions whose batch on_events has returned for
        self._hurry = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.syncs_started = 0
        self.syncs_failed = 0
        self.running = False

    def start(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="autosync-webhook-sync", daemon=True)
                self._thread.start()

    def submit(self, resources: Iterable[str], shop_ids: Iterable[int]) -> None:
        resources, shop_ids = set(resources), set(shop_ids)
        if not resources:
            return
        self.start()
        with self._cond:
            now = self.clock()
            if not self._resources:
                self._first_at = now
            self._last_at = now
            self._resources |= resources
            self._shop_ids |= shop_ids
            self._submitted += 1
            self._cond.notify_all()

    def wake(self) -> None:
        """Have the worker look at the clock again now (an injected clock moved)."""
        with self._cond:
            self._cond.notify_all()

    def idle(self) -> bool:
        """Nothing pending and no sync running."""
        with self._cond:
            return self._done >= self._submitted and not self.running

    def flush(self, timeout: float | None = None) -> bool:
        """Run what is pending now (skip the debounce) and wait until on_events has returned."""
        with self._cond:
            target = self._submitted
            if self._done >= target:
                return True
            self._hurry = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Run the pending batch, if any, then end the worker thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._resources or self._stopping)
                if not self._resources:
                    return  # stopping with nothing pending
                while not (self._stopping or self._hurry):
                    due = min(self._last_at + self.debounce_seconds, self._first_at + self.max_delay_seconds)
                    remaining = due - self.clock()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                resources, shop_ids, covered = self._resources, self._shop_ids, self._submitted
                self._resources, self._shop_ids, self._hurry = set(), set(), False
                self.running = True
                self.syncs_started += 1
            try:
                logger.info("webhooks: syncing %s for shops %s", sorted(resources), sorted(shop_ids))
                self.on_events(resources, shop_ids)
            except (Exception, SystemExit):
                # SystemExit too: a CLI-style main() (argparse) exits, and that would end this
                # thread silently, leaving every later batch unsynced.
                self.syncs_failed += 1
                logger.exception("webhooks: the triggered sync failed; the next sync will catch up")
            with self._cond:
                self.running = False
                self._done = max(self._done, covered)
                self._cond.notify_all()

"""A bounded queue of deliveries waiting to be stored, written in batches by one thread.

Why batches: opening the warehouse and committing costs far more than a row (on a DuckDB file,
open + insert + close is tens of milliseconds), so one statement per delivery caps the receiver
at a few dozen deliveries a second. The writer takes whatever is waiting (up to `max_batch`)
and stores it in one atomic statement; each request still waits for its own row to be
committed before it answers 200, so an acknowledged delivery is never lost.
Why bounded: when the warehouse is slower than the deliveries, the queue would grow without
end; past `max_pending` a delivery is answered 503 + Retry-After at once (AutoSync retries
a failed delivery), which holds memory flat.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future

from pipelines.webhooks.envelope import WebhookEvent
from pipelines.webhooks.store import WebhookEventStore

logger = logging.getLogger("pipelines.webhooks")
_STOP = object()


class QueueFull(Exception):
    """More deliveries are waiting to be stored than the writer accepts."""


class EventWriter:
    def __init__(self, store: WebhookEventStore, max_pending: int = 1000, max_batch: int = 500,
                 linger_seconds: float = 0.2, max_hold_seconds: float = 2.0):
        if max_pending < 1 or max_batch < 1:
            raise ValueError("max_pending and max_batch must be at least 1")
        self.store = store
        self.max_batch = max_batch
        # While deliveries keep coming (none later than `linger_seconds` after the last batch)
        # the warehouse connection stays open, but never longer than `max_hold_seconds` at a
        # time, so a connector in another process still gets the DuckDB file between holds.
        self.linger_seconds = linger_seconds
        self.max_hold_seconds = max_hold_seconds
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0  # statements run (for /metrics)
        self.largest_batch = 0

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="autosync-webhook-writer", daemon=True)
                self._thread.start()

    def pending(self) -> int:
        return self._queue.qsize()

    def submit(self, event: WebhookEvent) -> "Future[bool]":
        """Queue the event; the future resolves to True if it was new, False for a replay, or
        to the store's exception. Raises QueueFull at once when the queue is full."""
        self.start()
        future: Future[bool] = Future()
        try:
            self._queue.put_nowait((event, future))
        except queue.Full:
            raise QueueFull from None
        return future

    def stop(self, timeout: float | None = 30.0) -> None:
        """Store what is queued, then end the thread."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._queue.put(_STOP)  # behind everything already queued
        thread.join(timeout)

    def _run(self) -> None:
        item = self._queue.get()
        while item is not _STOP:
            item = self._hold_and_write(item)

    def _take_batch(self, first: tuple) -> tuple[list[tuple], bool]:
        """`first` and what else is waiting, up to max_batch; True if the stop marker came."""
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _hold_and_write(self, item: tuple) -> object:
        """Write batches on one held connection while they keep coming. Returns the next item
        to handle: the stop marker, or the first delivery of the next hold."""
        hold = self.store.held()
        try:
            hold.__enter__()
        except Exception as exc:  # cannot even connect: fail this delivery (503), go on
            item[1].set_exception(exc)
            return self._queue.get()
        began = time.monotonic()
        stopping = False
        try:
            while True:
                batch, stopping = self._take_batch(item)
                self._write(batch)
                if stopping or time.monotonic() - began > self.max_hold_seconds:
                    break
                try:
                    item = self._queue.get(timeout=self.linger_seconds)
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
        finally:
            try:
                hold.__exit__(None, None, None)
            except Exception:  # a failed close must not end the writer thread
                logger.exception("webhooks: closing the warehouse connection failed")
        return _STOP if stopping else self._queue.get()

    def _write(self, batch: list[tuple[WebhookEvent, Future]]) -> None:
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        try:
            new_ids = self.store.insert_many(event for event, _ in batch)
        except Exception as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        seen: set[str] = set()
        for event, future in batch:
            # Two deliveries of one id in the same batch: the first is the new one.
            future.set_result(event.event_id in new_ids and event.event_id not in seen)
            seen.add(event.event_id)

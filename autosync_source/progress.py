"""What a running sync tells its user: how far, how much is left, when it will end, and why it
is waiting. A sync bound by the rate budget runs for hours; without this a slow sync and a hung
one look the same.

Lines go to the `autosync_source.progress` logger (stderr in the CLI), at most one every
`interval` seconds plus one each time the rate budget makes every thread wait:

    estimate: about 36,000 requests for 3 shops, about 2 h at this key's 300/min
    progress: 1/3 shops done, 1,204 requests done, about 34,800 left, ETA 1 h 56 min; work_orders
              3/250 pages, 1,180/25,000 details (shop 1: 3/250 pages); ...

The engine makes one Progress for its whole run (every shop's listings, `run_shops`, `shop_finished`)
and hands it to each shop's source; a source run alone makes its own.
    waiting for the rate budget, resets in 23 s

`mode`: "log" (those lines), "json" (one JSON object per line, same facts), "quiet" (nothing).

Why not dlt's progress collectors: they count items and resources, not pages of a total the API
reports, detail calls still needed, or the request budget, which is what bounds this sync.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from autosync_source.settings import PAGE_SIZE

logger = logging.getLogger("autosync_source.progress")

MODES = ("log", "json", "quiet")
DEFAULT_INTERVAL_SECONDS = 15.0


@dataclass
class ListProgress:
    """One (resource, shop) listing."""

    rows_total: Optional[int] = None  # rows the API reported for the listing (first page's total)
    pages_done: int = 0
    details_needed: int = 0  # rows listed so far (or estimated) whose list row is a summary
    details_done: int = 0
    state: str = "waiting"  # waiting | reading | done | stopped | failed

    @property
    def pages_total(self) -> Optional[int]:
        if self.rows_total is None:
            return None
        return max(1, math.ceil(self.rows_total / PAGE_SIZE), self.pages_done)

    def requests_left(self) -> int:
        if self.state in ("done", "stopped", "failed"):
            return 0
        pages = self.pages_total if self.pages_total is not None else 1
        return max(0, pages - self.pages_done) + max(0, self.details_needed - self.details_done)


class Progress:
    def __init__(
        self,
        mode: str = "log",
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"progress must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.interval = interval
        _plain_json_lines(mode == "json")
        self._clock = clock
        self._lock = threading.Lock()
        self._lists: Dict[Tuple[str, Any], ListProgress] = {}
        self._detail_share: Dict[str, float] = {}  # resource -> share of list rows needing a detail
        self._started = clock()
        self._last_line = clock()
        self._requests: Callable[[], int] = lambda: 0
        self._limit: Callable[[], Optional[Tuple[int, float]]] = lambda: None
        self._last_wait_line = -1e9
        # The whole run's plan, when the engine made it: the estimate is done (the source does
        # not estimate again) and `read_ahead` holds the pages it read (estimate.FirstPages).
        self.estimated = False
        self.read_ahead: Any = None
        self._shops_total: Optional[int] = None
        self._shops_done = 0

    # -- wiring ----------------------------------------------------------------------------
    def attach(self, requests: Callable[[], int], limit: Callable[[], Optional[Tuple[int, float]]]) -> None:
        """Where to read requests sent so far and the key's limit (requests, window seconds)."""
        self._requests, self._limit = requests, limit

    def run_shops(self, total: int) -> None:
        """The run syncs `total` shops (the engine): the lines count the shops done."""
        with self._lock:
            self._shops_total, self._shops_done = int(total), 0

    def shop_finished(self) -> None:
        """One shop of the run is done (loaded, or failed and skipped)."""
        with self._lock:
            self._shops_done += 1
        self._maybe_report()

    @property
    def quiet(self) -> bool:
        return self.mode == "quiet"

    # -- events (any thread) ---------------------------------------------------------------
    def planned(self, resource: str, shop_id: Any, rows_total: Optional[int], detail_share: float) -> None:
        with self._lock:
            entry = self._lists.setdefault((resource, shop_id), ListProgress())
            if rows_total is not None and entry.rows_total is None:
                entry.rows_total = rows_total
                entry.details_needed = max(entry.details_needed, round(rows_total * detail_share))
            if detail_share:
                self._detail_share[resource] = detail_share

    def shop_started(self, resource: str, shop_id: Any) -> None:
        with self._lock:
            self._lists.setdefault((resource, shop_id), ListProgress()).state = "reading"

    def list_page(self, resource: str, shop_id: Any, total: Optional[int], rows: int, needing_details: int) -> None:
        with self._lock:
            entry = self._lists.setdefault((resource, shop_id), ListProgress())
            if entry.pages_done == 0 and total is not None:
                entry.rows_total = total
                # the page's rows needing a detail, extrapolated to the whole listing
                share = needing_details / rows if rows else self._detail_share.get(resource, 0.0)
                entry.details_needed = max(entry.details_done, round(total * share))
            entry.pages_done += 1
        self._maybe_report()

    def detail(self, resource: str, shop_id: Any) -> None:
        with self._lock:
            entry = self._lists.setdefault((resource, shop_id), ListProgress())
            entry.details_done += 1
            entry.details_needed = max(entry.details_needed, entry.details_done)
        self._maybe_report()

    def detail_not_needed(self, resource: str, shop_id: Any) -> None:
        """A summary row already loaded unchanged (in the lag window): no detail call for it."""
        with self._lock:
            entry = self._lists.setdefault((resource, shop_id), ListProgress())
            entry.details_needed = max(entry.details_done, entry.details_needed - 1)

    def shop_done(self, resource: str, shop_id: Any) -> None:
        self._finish(resource, shop_id, "done")

    def shop_stopped(self, resource: str, shop_id: Any) -> None:
        self._finish(resource, shop_id, "stopped")

    def shop_failed(self, resource: str, shop_id: Any) -> None:
        self._finish(resource, shop_id, "failed")

    def _finish(self, resource: str, shop_id: Any, state: str) -> None:
        with self._lock:
            self._lists.setdefault((resource, shop_id), ListProgress()).state = state
        self._maybe_report()

    def waiting_for_budget(self, seconds: float) -> None:
        """Every thread waits for the next rate window (called by the rate budget)."""
        now = self._clock()
        if self.quiet or seconds < 1 or now - self._last_wait_line < max(seconds, 5.0):
            return
        self._last_wait_line = now
        self._emit("waiting", f"waiting for the rate budget, resets in {seconds:.0f} s", {"resets_in_seconds": round(seconds, 1)})

    # -- lines ---------------------------------------------------------------------------
    def estimate(self, sampled: int, total_lists: int) -> Dict[str, Any]:
        """The first line: the whole sync's requests and duration, from one page per list."""
        left = self.requests_left()
        figures = {"requests": left, "lists_sampled": sampled, "lists": total_lists, "rate": self._rate_text()}
        seconds = self._seconds_for(left)
        figures["seconds"] = None if seconds is None else round(seconds)
        sample = "" if sampled >= total_lists else f", from one page of {sampled} of {total_lists} lists"
        duration = f", about {_duration(seconds)} at {self._rate_text()}" if seconds is not None else ""
        shops = ""
        if self._shops_total is not None:
            figures["shops"] = self._shops_total
            shops = f" for {_count(self._shops_total)} shop{'s' if self._shops_total != 1 else ''}"
        self.estimated = True
        first = getattr(self, "first_sync_into", None)  # set by the engine when the target holds no cursor yet
        if first:
            figures["first_sync_into"] = first
            self._emit("estimate", f"first sync into {first}: reading the full history, about {_count(left)} requests"
                                   f"{shops}{duration}{sample}", figures)
        else:
            self._emit("estimate", f"estimate: about {_count(left)} requests{shops}{duration}{sample}", figures)
        return figures

    def requests_left(self) -> int:
        with self._lock:
            return sum(entry.requests_left() for entry in self._lists.values())

    def report(self) -> Dict[str, Any]:
        """A progress line now; its figures."""
        done = self._requests()
        with self._lock:
            by_resource: Dict[str, Dict[str, Any]] = {}
            active = []
            for (resource, shop_id), entry in self._lists.items():
                agg = by_resource.setdefault(resource, {
                    "pages_done": 0, "pages_total": 0, "details_done": 0, "details_needed": 0,
                    "shops_done": 0, "shops": 0, "failed": 0,
                })
                agg["pages_done"] += entry.pages_done
                agg["pages_total"] += entry.pages_total if entry.pages_total is not None else max(1, entry.pages_done)
                agg["details_done"] += entry.details_done
                agg["details_needed"] += entry.details_needed
                agg["shops"] += 1
                agg["shops_done"] += entry.state == "done"
                agg["failed"] += entry.state == "failed"
                if entry.state == "reading":
                    active.append((resource, shop_id, entry))
            left = sum(entry.requests_left() for entry in self._lists.values())
        seconds = self._seconds_for(left, observed=done)
        parts = []
        for resource, agg in by_resource.items():
            text = f"{resource} {agg['pages_done']}/{agg['pages_total']} pages"
            if agg["details_needed"]:
                text += f", {agg['details_done']}/{agg['details_needed']} details"
            if agg["shops"] > 1:
                text += f", {agg['shops_done']}/{agg['shops']} shops"
            if agg["failed"]:
                text += f", {agg['failed']} failed"
            parts.append(text)
        for resource, shop_id, entry in active[:8]:
            total = entry.pages_total if entry.pages_total is not None else "?"
            detail = f", {entry.details_done}/{entry.details_needed} details" if entry.details_needed else ""
            parts.append(f"[{resource} shop {shop_id}: {entry.pages_done}/{total} pages{detail}]")
        eta = f", ETA {_duration(seconds)}" if seconds is not None else ""
        figures = {
            "requests_done": done, "requests_left": left,
            "eta_seconds": None if seconds is None else round(seconds), "resources": by_resource,
        }
        shops = ""
        if self._shops_total is not None:
            figures.update(shops_done=self._shops_done, shops=self._shops_total)
            shops = f"{_count(self._shops_done)}/{_count(self._shops_total)} shops done, "
        self._emit("progress", f"progress: {shops}{_count(done)} requests done, about {_count(left)} left{eta}; "
                   + "; ".join(parts), figures)
        return figures

    def _maybe_report(self) -> None:
        if self.quiet:
            return
        now = self._clock()
        with self._lock:
            if now - self._last_line < self.interval:
                return
            self._last_line = now
        self.report()

    def _emit(self, kind: str, text: str, figures: Dict[str, Any]) -> None:
        if self.mode == "log":
            logger.info("%s", text)
        elif self.mode == "json":
            logger.info("%s", json.dumps({"event": kind, **figures}, default=str))

    def _rate_per_second(self, observed: int = 0) -> Optional[float]:
        elapsed = self._clock() - self._started
        limit = self._limit()
        if observed >= 50 and elapsed > 5:
            measured = observed / elapsed
            if limit is not None:
                return min(measured, limit[0] / limit[1]) if measured > 0 else limit[0] / limit[1]
            return measured
        if limit is not None:
            return limit[0] / limit[1]
        return None

    def _seconds_for(self, requests: int, observed: int = 0) -> Optional[float]:
        rate = self._rate_per_second(observed)
        return requests / rate if rate else None

    def _rate_text(self) -> str:
        limit = self._limit()
        if limit is None:
            return "an unthrottled key"
        per_minute = limit[0] * 60 / limit[1]
        return f"this key's {per_minute:,.0f}/min"


class _BareStderrHandler(logging.Handler):
    """The message alone, on whatever sys.stderr is now."""

    def emit(self, record: logging.LogRecord) -> None:
        import sys

        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def _plain_json_lines(on: bool) -> None:
    """In json mode each progress line is a JSON object on stderr (no log prefix), so a program
    can parse stderr line by line; the CLI's --json gives the other loggers the same format."""
    ours = [handler for handler in logger.handlers if isinstance(handler, _BareStderrHandler)]
    if on and not ours:
        from autosync_source.logs import JsonLogFormatter

        handler = _BareStderrHandler()
        handler.setFormatter(JsonLogFormatter())  # ts, level, logger beside the event's figures
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    elif not on and ours:
        for handler in ours:
            logger.removeHandler(handler)
        logger.propagate = True


def _count(n: int) -> str:
    return f"{n:,}"


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(int(seconds // 60), 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{seconds / 86400:.1f} days"

"""One request budget per credential, shared by every thread and shop of a process.

The API limits requests per key (or per OAuth client) in fixed one-minute windows and says
where it stands in `X-RateLimit-Limit/Remaining/Reset` on every answer. A run that owns its
key therefore never needs to meet a 429: it spends what `Remaining` allows, counting the
requests it has in flight (their answers have not come back yet), and when the window is
spent it waits for `Reset`. A 429 (someone else used the key) blocks every thread for
`Retry-After`.

Why not a library: tenacity retries after the fact and dlt's retrying session sleeps per
thread; neither shares one budget between threads or reads these headers before sending.
"""
from __future__ import annotations

import hashlib
import threading
import time
from typing import Callable, Dict, Mapping, Optional

# Keep a little margin after the server's Reset: our clock and the server's differ slightly.
RESET_MARGIN_SECONDS = 0.25
# Before the first answer the limit is unknown: let only this many requests probe it.
PROBE_CONCURRENCY = 1


class RateBudget:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        reset_margin: float = RESET_MARGIN_SECONDS,
    ) -> None:
        self._clock = clock
        self._reset_margin = reset_margin
        self._cond = threading.Condition()
        self._limit: Optional[int] = None
        self._remaining: Optional[int] = None
        self._reset_at: Optional[float] = None
        self._blocked_until = 0.0
        self._in_flight = 0
        # The window's length is not in the headers; the contract says one minute, and two
        # consecutive Reset values correct it (the emulator's windows can be shorter).
        self.window_seconds = 60.0
        self._last_reset: Optional[float] = None
        # Told when every thread starts waiting for the next window (progress.py says so).
        self.on_wait: Optional[Callable[[float], None]] = None

    def acquire(self) -> None:
        """Block until one more request fits in the window, then count it as in flight."""
        waiting = False
        with self._cond:
            while True:
                delay = self._delay(self._clock())
                if delay <= 0:
                    break
                if not waiting:
                    waiting = True  # tell on_wait once per wait, not on every wake-up
                    if self.on_wait is not None and self._reset_at is not None and delay >= 1.0:
                        self.on_wait(delay)
                self._cond.wait(timeout=min(delay, 1.0))
            self._in_flight += 1

    def _delay(self, now: float) -> float:
        if now < self._blocked_until:
            return self._blocked_until - now
        if self._remaining is None:
            return 0.0 if self._in_flight < PROBE_CONCURRENCY else 0.05
        if self._reset_at is not None and now >= self._reset_at + self._reset_margin:
            # A new window started: the whole limit is available again (the next answer
            # corrects this if another client of the same key already spent some).
            self._remaining = self._limit if self._limit is not None else self._remaining
            self._reset_at = None
        if self._remaining - self._in_flight > 0:
            return 0.0
        if self._reset_at is None:
            # Spent, and no reset known yet: wait for an answer in flight to tell us.
            return 0.05
        return self._reset_at + self._reset_margin - now

    def release(self, headers: Optional[Mapping[str, str]]) -> None:
        """The request is answered (or failed): update the window from the answer's headers."""
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            if headers is not None:
                self._observe(headers)
            elif self._remaining is not None:
                # No answer (dropped connection): the server may have counted it; assume so.
                self._remaining = max(0, self._remaining - 1)
            self._cond.notify_all()

    def _observe(self, headers: Mapping[str, str]) -> None:
        limit = _int_header(headers, "X-RateLimit-Limit")
        remaining = _int_header(headers, "X-RateLimit-Remaining")
        reset = _int_header(headers, "X-RateLimit-Reset")
        if limit is None or remaining is None or limit <= 0:
            # No limit announced (or a limit of 0 or less): nothing to pace by. The emulator's
            # "unlimited" is not this case: it announces Limit = Remaining = 1,000,000 with a
            # Reset, which is paced like any limit and never reached.
            self._limit, self._remaining, self._reset_at = None, 1 << 30, None
            return
        self._limit = limit
        if reset is not None and (self._reset_at is None or reset > self._reset_at):
            # First answer of a newer window: trust its count.
            if self._last_reset is not None:
                gap = reset - self._last_reset
                if 0 < gap <= 3600 and gap < self.window_seconds * 1.5:
                    self.window_seconds = float(gap)
            self._last_reset = float(reset)
            self._reset_at, self._remaining = float(reset), remaining
        elif reset is not None and reset < self._reset_at:
            return  # a late answer from the previous window tells nothing about this one
        else:
            # Same window: answers can arrive out of order, the smallest count is the truest.
            self._remaining = remaining if self._remaining is None else min(self._remaining, remaining)

    def limit(self) -> Optional[tuple]:
        """(requests per window, window seconds) as the API announced, or None (unlimited)."""
        with self._cond:
            if self._limit is None:
                return None
            return self._limit, self.window_seconds

    def block_for(self, seconds: float) -> None:
        """A 429: nobody sends anything until Retry-After has passed."""
        with self._cond:
            self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))
            # Retry-After is the authority, not our count: once it has passed, one request
            # probes the window again and its answer says how much is left.
            self._remaining = None
            self._cond.notify_all()


def _int_header(headers: Mapping[str, str], name: str) -> Optional[int]:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


_BUDGETS: Dict[str, RateBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(credential: str) -> RateBudget:
    """The process-wide budget of a credential (an API key or an OAuth client id)."""
    fingerprint = hashlib.sha256(credential.encode()).hexdigest()
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(fingerprint)
        if budget is None:
            budget = _BUDGETS[fingerprint] = RateBudget()
        return budget

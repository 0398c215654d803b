"""One request budget per credential, shared by every thread and shop of a process, and paced
so that several processes on one key (Dagster runs, Airflow workers) share it with few 429s.

The API limits requests per key (or per OAuth client) in fixed windows (one minute in the
contract; the emulator can make them shorter) and says where it stands in
`X-RateLimit-Limit/Remaining/Reset` on every answer: `Reset` is the epoch second the current
window ends, so it also names the window an answer belongs to.

Alone on its key, a process spends what `Remaining` allows, counting the requests it has in
flight (their answers have not come back yet), and when the window is spent it waits for
`Reset`: it never meets a 429 and is never slowed down.

Beside other processes on the same key it cannot see their requests in flight, and greedy
spending would make them all send the window's last few requests at once. So each process
reads from the headers how crowded the key is: of what the window has spent, how much was not
its own ("crowd": the other clients, counted as clients as busy as this one; 0 when alone).
With a crowd it paces: it spends what is left over the time left, one request every
(Reset - now) / left, and between two of its own answers it assumes the others do the same,
so what is left shrinks like ((Reset - now) / (Reset - seen)) ** crowd. When every process paces
so, the window is spent in full at its end while its last requests are seconds apart, much more
than an answer's latency, and seldom meet. Nothing is shared but the key: it works for
processes on different machines as well as on one, with no lock file or server.

A 429 (a process starting in a spent window, whose first request is the only way to learn it,
or a clock that is off) blocks every thread of the process for `Retry-After`, then one request
probes the window again: honoured, never a failure.

Why not a library: tenacity retries after the fact and dlt's retrying session sleeps per
thread; neither shares one budget between threads or reads these headers before sending.
"""
from __future__ import annotations

import hashlib
import math
import threading
import time
import bisect
from typing import Callable, Dict, List, Mapping, Optional

# Keep a little margin after the server's Reset: our clock and the server's differ slightly.
RESET_MARGIN_SECONDS = 0.25
# Before the first answer the limit is unknown: let only this many requests probe it.
PROBE_CONCURRENCY = 1
# How long a thread sleeps when it waits for an answer in flight to say more.
POLL_SECONDS = 0.05


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
        self._remaining: Optional[int] = None  # the smallest Remaining this window's answers told
        self._seen_at = 0.0  # when that answer came
        self._reset_at: Optional[float] = None  # the current window's end (None: not known yet)
        self._assumed = False  # the window is one we have no answer from yet (its end is a guess)
        self._blocked_until = 0.0
        self._in_flight = 0
        self._last_sent = -math.inf
        self._sends: List[float] = []  # when our recent requests went, oldest first
        # The window's length is not in the headers; the contract says one minute, and two
        # consecutive Reset values correct it (the emulator's windows can be shorter).
        self.window_seconds = 60.0
        self._last_reset: Optional[float] = None  # the newest Reset any answer carried
        self._answered = 0  # our answers in this window
        # Other clients of the key as busy as this process (0 when it is alone on the key)
        self._crowd = 0.0
        self._crowd_before = 0.0  # half the crowd the last window ended with
        # Told when every thread starts waiting for the next window (progress.py says so).
        self.on_wait: Optional[Callable[[float], None]] = None

    def acquire(self) -> float:
        """Block until one more request fits in the window, then count it as in flight; the
        time it goes (give it back to `release`)."""
        waiting = False
        with self._cond:
            while True:
                now = self._clock()
                delay = self._delay(now)
                if delay <= 0:
                    break
                if not waiting:
                    waiting = True  # tell on_wait once per wait, not on every wake-up
                    if self.on_wait is not None and self._spent(now) and delay >= 1.0:
                        self.on_wait(delay)
                self._cond.wait(timeout=min(delay, 1.0))
            return self._take()

    def try_acquire(self) -> Optional[float]:
        """`acquire` without blocking: the time the request goes (counted in flight) if it may
        go now, else None (counting nothing); `delay()` says how long to wait."""
        with self._cond:
            if self._delay(self._clock()) > 0:
                return None
            return self._take()

    def delay(self) -> float:
        """Seconds at most until a request may go (an answer coming back may shorten it)."""
        with self._cond:
            return max(0.0, self._delay(self._clock()))

    def _take(self) -> float:
        self._in_flight += 1
        self._last_sent = self._clock()
        self._sends.append(self._last_sent)
        return self._last_sent

    def _left(self, now: float) -> float:
        """What this window has left for us now: the last answer's count, less our requests in
        flight, less what the other clients of the key spent since. They pace as we do, so
        they spend in proportion to what is left over the time left: alone, what is left
        over time T - t lasts to the window's end; with `crowd` others as busy as we are, it
        shrinks by ((T - now) / (T - seen)) ** crowd between the answer and now."""
        assert self._remaining is not None
        left = float(self._remaining)
        if self._crowd > 0 and self._reset_at is not None:
            to_go, then = self._reset_at - now, self._reset_at - self._seen_at
            if then > 0:
                left *= (max(0.0, to_go) / then) ** (self._crowd / (self._crowd + 1.0))
        return left - self._in_flight

    def _spent(self, now: float) -> bool:
        return (self._remaining is not None and self._reset_at is not None
                and self._left(now) < 1 and now < self._reset_at + self._reset_margin)

    def _delay(self, now: float) -> float:
        if now < self._blocked_until:
            return self._blocked_until - now
        if self._remaining is None:
            return 0.0 if self._in_flight < PROBE_CONCURRENCY else POLL_SECONDS
        if self._reset_at is not None and now >= self._reset_at + self._reset_margin:
            self._next_window()
        if self._assumed and self._crowd > 0:
            # A window we have no answer from yet, on a key shared with others: one request
            # learns how much of it they already spent before we spend more.
            return 0.0 if self._in_flight < PROBE_CONCURRENCY else POLL_SECONDS
        left = self._left(now)
        # Shared, keep half a request in hand: "left" is an estimate, and sending on a
        # rounding error risks a 429 for a request that the next answer may well allow.
        if left < (1.0 if self._crowd <= 0 else 1.5):
            if self._reset_at is None:
                # Spent, and no reset known yet: wait for an answer in flight to tell us.
                return POLL_SECONDS
            # Spent (or, by the others' pace, spent by now): wait for the window's end, or
            # for an answer in flight (release wakes us) to tell better.
            return self._reset_at + self._reset_margin - now
        if self._crowd <= 0 or self._reset_at is None:
            return 0.0  # alone on the key: our own count is exact, spend it
        # The window's last requests: spread over the time left, so that other processes on
        # the key, doing the same, see each other's spending before they send their own.
        spacing = (self._crowd + 1.0) * max(0.0, self._reset_at - now) / left
        return max(0.0, self._last_sent + spacing - now)

    def _next_window(self) -> None:
        # A new window started (by our clock): the whole limit is available again, as far as we
        # know; its first answer tells how much really is (others may have spent some). Its end
        # is the last one plus a window; an answer carrying another Reset corrects that too.
        assert self._reset_at is not None
        self._remaining = self._limit if self._limit is not None else self._remaining
        self._seen_at = self._reset_at
        self._reset_at += self.window_seconds
        self._assumed = True
        self._answered = 0
        self._forget_crowd()

    def _forget_crowd(self) -> None:
        self._crowd_before = self._crowd / 2 if self._crowd >= 0.2 else 0.0

    def release(self, headers: Optional[Mapping[str, str]], sent: Optional[float] = None) -> None:
        """The request is answered (or failed): update the window from the answer's headers.
        `sent` (what `acquire` returned) tells which of our requests the server had counted
        before this one."""
        with self._cond:
            now = self._clock()
            in_flight_then = self._in_flight
            self._in_flight = max(0, self._in_flight - 1)
            if headers is not None:
                self._observe(headers, in_flight_then, now, sent)
            elif self._remaining is not None:
                # No answer (dropped connection): the server may have counted it; assume so.
                self._remaining = max(0, self._remaining - 1)
            self._cond.notify_all()

    def _observe(self, headers: Mapping[str, str], in_flight_then: int, now: float,
                 sent: Optional[float]) -> None:
        limit = _int_header(headers, "X-RateLimit-Limit")
        remaining = _int_header(headers, "X-RateLimit-Remaining")
        reset = _int_header(headers, "X-RateLimit-Reset")
        if limit is None or remaining is None or limit <= 0:
            # No limit announced (or a limit of 0 or less): nothing to pace by. The emulator's
            # "unlimited" is not this case: it announces Limit = Remaining = 1,000,000 with a
            # Reset, which is paced like any limit and never reached.
            self._limit, self._remaining, self._reset_at, self._assumed = None, 1 << 30, None, False
            self._crowd = 0.0
            return
        self._limit = limit
        if reset is None:
            self._remaining = remaining if self._remaining is None else min(self._remaining, remaining)
            self._seen_at = now
            return
        if self._last_reset is not None and reset < self._last_reset:
            return  # a late answer from an earlier window tells nothing about this one
        if self._last_reset is None or reset > self._last_reset:
            # First answer of a newer window: trust its count.
            if self._last_reset is not None:
                gap = reset - self._last_reset
                if 0 < gap <= 3600 and gap < self.window_seconds * 1.5:
                    self.window_seconds = float(gap)
            if self._reset_at is not None and not self._assumed:  # we had not seen the last window end
                self._forget_crowd()
            self._last_reset = float(reset)
            self._reset_at, self._remaining, self._assumed = float(reset), remaining, False
            self._answered = 0
        elif self._assumed or self._reset_at is None:
            # The window we saw end (by our clock) is still the server's: it is late by a
            # little; its count is the truth until the next Reset.
            self._reset_at, self._remaining, self._assumed = float(reset), remaining, False
        elif self._remaining is None or remaining < self._remaining:
            self._remaining = remaining
        else:
            # Same window, an answer sent before the freshest one we have: it tells nothing
            # new (answers can arrive out of order, the smallest count is the truest).
            self._answered += 1
            return
        self._seen_at = now
        self._answered += 1
        # The crowd: of what this window had spent when the server counted this request, ours
        # were at most the requests we sent in the window up to this one (those sent later
        # mostly reached it later); without the send time, our answers plus this request's
        # companions still in flight. The rest is other clients'.
        start = float(reset) - self.window_seconds
        first = bisect.bisect_left(self._sends, start - self.window_seconds)
        del self._sends[:first]  # older than the last window: never asked about again
        if sent is not None:
            ours_at_most = bisect.bisect_right(self._sends, sent) - bisect.bisect_left(self._sends, start)
        else:
            ours_at_most = self._answered + max(0, in_flight_then - 1)
        ours_at_most = max(1, ours_at_most)
        others = max(0, (limit - remaining) - ours_at_most)
        # Remembered for a window or two: a client that met a 429 and waits for the next window
        # spends nothing meanwhile, yet it is there.
        self._crowd = max(others / ours_at_most, self._crowd_before)

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

"""A discrete-event simulation of several processes pacing one key: each process has its own
`RateBudget` (autosync_source/ratelimit.py) and a few workers; the server is the emulator's own
fixed-window `RateLimiter`; time is simulated, so a minute of traffic takes a moment and the
same seed gives the same run."""
from __future__ import annotations

import heapq
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List

from autosync_emulator.ratelimit import RateLimiter
from autosync_source.ratelimit import RateBudget


@dataclass
class SimResult:
    sent: int = 0
    rate_limited: int = 0
    served_by_window: Counter = field(default_factory=Counter)  # window end -> requests served
    arrived_by_window: Counter = field(default_factory=Counter)  # served + refused
    per_process: Dict[int, int] = field(default_factory=dict)


def simulate(processes: int, workers: int, limit: int, window: float, seconds: float, seed: int = 1,
             latency=(0.01, 0.15), start_spread: float = 5.0, t0: float = 1_000_020.0) -> SimResult:
    rng = random.Random(seed)
    now = [t0]
    server = RateLimiter(limit, window, clock=lambda: now[0])
    budgets = [RateBudget(clock=lambda: now[0]) for _ in range(processes)]
    result = SimResult(per_process={p: 0 for p in range(processes)})
    events: List = []
    seq = [0]
    end = t0 + seconds

    def at(when, what, *args):
        seq[0] += 1
        heapq.heappush(events, (when, seq[0], what, args))

    waiting: Dict[int, set] = {p: set() for p in range(processes)}
    pending: Dict[tuple, int] = {}  # (p, w) -> seq of its scheduled wake-up (older ones are void)

    def wake(p, w):
        pending.pop((p, w), None)
        waiting[p].discard(w)
        if now[0] >= end:
            return
        sent = budgets[p].try_acquire()
        if sent is None:
            delay = budgets[p].delay() or 0.01
            waiting[p].add(w)
            seq[0] += 1
            pending[(p, w)] = seq[0]
            heapq.heappush(events, (now[0] + min(delay, 1.0), seq[0], "wake", (p, w)))
            return
        result.sent += 1
        result.per_process[p] += 1
        up, down = rng.uniform(*latency) / 2, rng.uniform(*latency) / 2
        at(now[0] + up, "arrive", p, w, down, sent)

    def arrive(p, w, down, sent):
        decision = server.hit("key")
        result.arrived_by_window[decision.reset] += 1
        if decision.allowed:
            result.served_by_window[decision.reset] += 1
        else:
            result.rate_limited += 1
        headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining),
                   "X-RateLimit-Reset": str(decision.reset)}
        at(now[0] + down, "answer", p, w, headers, decision.allowed, decision.retry_after, sent)

    def answer(p, w, headers, allowed, retry_after, sent):
        budgets[p].release(headers, sent)
        if not allowed:
            budgets[p].block_for(retry_after)
        # a release wakes the process's waiting threads (the Condition's notify_all)
        for other in list(waiting[p]):
            wake(p, other)
        wake(p, w)

    for p in range(processes):
        start = t0 + rng.uniform(0, start_spread)
        for w in range(workers):
            at(start, "wake", p, w)
    while events:
        when, number, what, args = heapq.heappop(events)
        if what == "wake" and pending.get(tuple(args)) not in (None, number):
            continue  # superseded by an earlier wake-up
        now[0] = when
        {"wake": wake, "arrive": arrive, "answer": answer}[what](*args)
    return result

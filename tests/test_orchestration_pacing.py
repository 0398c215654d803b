"""Several processes on one API key share its rate budget, paced from the server's
X-RateLimit-Remaining / X-RateLimit-Reset alone (autosync_source/ratelimit.py).

Fast: a simulation of processes pacing one key against the emulator's own fixed-window limiter
(tests/pacing_sim.py): few 429s, the windows spent nearly in full.
Slow: 12 Dagster shop partitions, 4 runs at a time (Dagster's run queue), into Postgres, on one
rate-limited key of the emulator: tables equal to the truth, each shop's cursors its own, 429s at
most 1% of requests, and no rate window met more requests than its limit plus those in flight.
"""
from __future__ import annotations

import pytest

from autosync_emulator import Emulator
from emulator_helpers import Client, FakeClock
from pacing_sim import simulate


@pytest.mark.parametrize("processes,workers,limit,window", [(4, 4, 40, 10), (2, 4, 40, 10), (4, 2, 100, 20)])
def test_processes_pacing_one_key_meet_few_429s_and_spend_the_windows(processes, workers, limit, window):
    result = simulate(processes, workers, limit, window, seconds=120, seed=3)
    assert result.rate_limited <= 0.01 * result.sent, (result.rate_limited, result.sent)
    windows = sorted(result.served_by_window)[1:-1]  # the first and the last are partial
    assert len(windows) >= 4
    for end in windows:
        # every process always has work: a window left unspent is budget lost
        assert result.served_by_window[end] >= 0.85 * limit, (end, result.served_by_window[end])
        assert result.arrived_by_window[end] <= limit + processes * workers
    assert all(sent > 0 for sent in result.per_process.values()), result.per_process


def test_one_process_alone_is_not_paced_and_spends_every_window():
    # alone on the key it is never paced: a small sync is not slowed down by the pacing
    result = simulate(1, 4, 40, 10, seconds=60, seed=1)
    assert result.rate_limited == 0
    assert all(result.served_by_window[end] == 40 for end in sorted(result.served_by_window)[1:-1])


def test_the_request_log_counts_each_rate_window():
    clock = FakeClock()  # at the start of a 2-second window
    with Emulator(seed=5, shops=1, work_orders=5, rate_limit=3, rate_window_seconds=2, wall_clock=clock) as emu:
        client = Client(emu)
        codes = [client.get("/shops").status_code for _ in range(4)]
        clock.advance(2)
        codes.append(client.get("/shops").status_code)
        assert codes == [200, 200, 200, 429, 200]
        first, second = int(clock.now), int(clock.now) + 2  # each window by its X-RateLimit-Reset
        assert emu.request_log()["by_window"] == {str(first): {"served": 3, "rate_limited": 1},
                                                  str(second): {"served": 1, "rate_limited": 0}}

"""OAuth client credentials (token cached, renewed before expiry, never shown) and the
one-budget-per-credential rate limiting."""
from __future__ import annotations

import logging
import threading
import time

import pytest

from autosync_emulator import Emulator
from autosync_source.auth import ApiKeyAuth, ClientCredentialsAuth
from autosync_source.ratelimit import RateBudget
from source_helpers import assert_raw_equals_truth, duckdb_pipeline, sync


def test_oauth_sync_equals_truth_with_one_token(tmp_path):
    with Emulator(seed=21, shops=2, work_orders=20) as emu:
        pipeline = duckdb_pipeline(tmp_path)
        _, stats = sync(pipeline, emu, client_id=emu.oauth_client_id, client_secret=emu.oauth_client_secret)
        assert_raw_equals_truth(pipeline, emu.truth())
        token_requests = emu.request_log()["by_route"].get("POST /v1/oauth/token", {})
        assert token_requests == {"200": 1} and stats.tokens_fetched == 1


def test_a_run_longer_than_the_token_life_renews_it_before_expiry(tmp_path, caplog):
    # 2-second tokens; every list request takes 0.15 s more: the run lasts several token lives
    with Emulator(seed=22, shops=2, work_orders=15, token_ttl_seconds=2) as emu:
        emu.set_faults([{"path": "/v1/shops/*/*", "method": "GET", "behaviour": "slow", "delay": 0.15}])
        pipeline = duckdb_pipeline(tmp_path)
        caplog.set_level(logging.DEBUG)
        started = time.monotonic()
        _, stats = sync(pipeline, emu, client_id=emu.oauth_client_id, client_secret=emu.oauth_client_secret, max_workers=2)
        elapsed = time.monotonic() - started
        assert elapsed > 4, "the run must outlive the token for this test to mean anything"
        log = emu.request_log()
        tokens = log["by_route"]["POST /v1/oauth/token"]["200"]
        assert tokens >= 2 and stats.tokens_fetched == tokens
        unauthorized = sum(counts.get("401", 0) for counts in log["by_route"].values())
        assert unauthorized == 0, "a token must be renewed before it expires, not after a 401"
        assert_raw_equals_truth(pipeline, emu.truth())
        # never logged, never in repr
        assert emu.oauth_client_secret not in caplog.text
        assert "at_" not in caplog.text  # the emulator's access tokens start with at_


def test_credentials_never_show_in_repr():
    key = "sk_live_" + "a1b2c3d4" * 4
    assert key not in repr(ApiKeyAuth(token=key)) and key not in str(ApiKeyAuth(token=key))
    oauth = ClientCredentialsAuth(client_id="client-123456789", client_secret="s3cr3t-value-xyz")
    assert "s3cr3t" not in repr(oauth) and "client-123456789" not in repr(oauth)


def test_wrong_oauth_secret_is_a_clear_message(tmp_path):
    with Emulator(seed=23, shops=1, work_orders=5) as emu:
        pipeline = duckdb_pipeline(tmp_path)
        with pytest.raises(Exception) as failure:
            sync(pipeline, emu, client_id=emu.oauth_client_id, client_secret="not-the-secret-at-all")
        from pipelines.engine import autosync_error_in

        message = str(autosync_error_in(failure.value))
        assert "OAuth token endpoint refused" in message and "not-the-secret" not in message


def test_a_rate_limited_key_never_meets_a_429(tmp_path):
    # 40 requests per 2-second window; the sync needs about 90: it must wait, never be refused
    with Emulator(seed=24, shops=2, work_orders=25, rate_limit=40, rate_window_seconds=2) as emu:
        pipeline = duckdb_pipeline(tmp_path)
        started = time.monotonic()
        _, stats = sync(pipeline, emu, max_workers=4)
        assert stats.requests > 80
        assert stats.rate_limited == 0
        assert emu.request_log()["rate_limited"] == 0
        assert time.monotonic() - started >= 2  # it did have to wait for a window
        assert_raw_equals_truth(pipeline, emu.truth())


def test_two_runs_on_one_key_share_one_budget(tmp_path):
    with Emulator(seed=25, shops=2, work_orders=8, rate_limit=30, rate_window_seconds=2) as emu:
        errors = []

        def run(name):
            try:
                sync(duckdb_pipeline(tmp_path / name, name=name), emu, max_workers=3)
            except Exception as failure:  # reported below
                errors.append(failure)

        threads = [threading.Thread(target=run, args=(f"p{i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert emu.request_log()["rate_limited"] == 0


def test_budget_waits_for_the_window_reset_when_spent():
    now = [1000.0]
    budget = RateBudget(clock=lambda: now[0], reset_margin=0.0)
    budget.acquire()
    budget.release({"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "1010"})
    budget.acquire()  # the last one of the window
    budget.release({"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1010"})
    acquired = threading.Event()
    waiter = threading.Thread(target=lambda: (budget.acquire(), acquired.set()))
    waiter.start()
    assert not acquired.wait(0.3), "a spent window must block"
    now[0] = 1010.5
    assert acquired.wait(3), "the next window must release it"
    waiter.join()


def test_budget_counts_requests_in_flight():
    budget = RateBudget(clock=lambda: 1000.0)
    budget.acquire()
    # alone on the key (the window spent only our request): the rest goes without pacing
    budget.release({"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "1060"})
    budget.acquire()
    budget.acquire()  # two in flight, none answered: the window's last two
    blocked = threading.Event()
    thread = threading.Thread(target=lambda: (budget.acquire(), blocked.set()), daemon=True)
    thread.start()
    assert not blocked.wait(0.3)
    budget.release(None)
    budget.release(None)
    assert not blocked.wait(0.3), "answers without headers do not refill a spent window"

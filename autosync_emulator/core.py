"""One emulator instance: the store and every component around it, plus its settings.

`app.py` and `control.py` serve a core over HTTP; `server.Emulator` runs one in a thread.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from .activity import Activity
from .auth import Auth
from .faults import FaultRules, ListHooks
from .webhooks import Webhooks
from .models import Backend
from .requestlog import RequestLog
from .ratelimit import RateLimiter
from .store import RESOURCES, Store
from .timefmt import DEFAULT_START, iso, parse_iso

ENVIRONMENT_RATE_LIMITS = {"sandbox": 300, "live": 100}

# API variants: behaviours some deployments of the API show (see the README, "API variants");
# the defaults are the documented behaviour
DEFAULT_SETTINGS: dict[str, Any] = {
    "updated_after_inclusive": False,
    "ignore_updated_after": [],
    "refuse_sort_updated_at": False,
    "legacy_pagination": False,
    "legacy_error_codes": False,
    "embed_children": False,
    "late_commit_seconds": 0,
    "token_ttl_seconds": 3600,
    "rate_limit": 0,
    "rate_window_seconds": 60,
    # emulator-only knobs (not API variants): webhook retry pacing
    "webhook_retry_base_seconds": 1.0,
    "webhook_timeout_seconds": 5.0,
}


def _validate_setting(name: str, value: Any) -> Any:
    if name not in DEFAULT_SETTINGS:
        raise ValueError(f"unknown setting {name!r}; known: {sorted(DEFAULT_SETTINGS)}")
    if name in ("updated_after_inclusive", "refuse_sort_updated_at", "legacy_pagination",
                "legacy_error_codes", "embed_children"):
        if not isinstance(value, bool):
            raise ValueError(f"setting {name} must be true or false")
        return value
    if name == "ignore_updated_after":
        if not isinstance(value, (list, tuple)) or any(v not in RESOURCES for v in value):
            raise ValueError(f"ignore_updated_after must be a list of resource names from {list(RESOURCES)}")
        return list(value)
    if name in ("rate_window_seconds", "webhook_retry_base_seconds", "webhook_timeout_seconds"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{name} must be a number > 0")
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"setting {name} must be an integer >= 0")
    if name == "token_ttl_seconds" and value == 0:
        raise ValueError("token_ttl_seconds must be > 0")
    return value


def _check_start(start: str) -> None:
    try:
        if not isinstance(start, str) or iso(parse_iso(start)) != start:
            raise ValueError
    except (ValueError, IndexError, OverflowError):
        raise ValueError(f"start must be a UTC timestamp like {DEFAULT_START}, not {start!r}") from None


class EmulatorCore:
    def __init__(self, seed: int = 42, shops: int = 3, work_orders: int = 50, environment: str = "sandbox",
                 rate_limit: int = 0, rate_window_seconds: float = 60, start: str = DEFAULT_START,
                 wall_clock: Callable[[], float] = time.time, **settings: Any) -> None:
        """`wall_clock` (epoch seconds) drives what runs on real time: rate windows and token
        lifetimes. Tests inject a fake one instead of waiting; the emulator clock is separate."""
        if shops < 1 or work_orders < 1:
            raise ValueError("shops and work_orders must be >= 1")
        _check_start(start)
        self.seed = seed
        self.shops = shops
        self.work_orders = work_orders
        self.environment = environment
        self.start = start
        self.settings: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in DEFAULT_SETTINGS.items()}
        self.settings_lock = threading.Lock()
        self.wall_clock = wall_clock
        self.auth = Auth(seed, environment, DEFAULT_SETTINGS["token_ttl_seconds"], clock=wall_clock)
        self.ratelimiter = RateLimiter(rate_limit, rate_window_seconds, clock=wall_clock)
        self.request_log = RequestLog()
        self.store = Store()
        self.backend = Backend(self.store, seed, shops, work_orders, start)
        self.faults = FaultRules(seed)
        self.list_hooks = ListHooks()
        self.webhooks = Webhooks(now_iso=lambda: self.backend.now_iso())
        self.activity = Activity(self.store, self.backend, seed)
        self.configure(rate_limit=rate_limit, rate_window_seconds=rate_window_seconds, **settings)
        self.backend.generate()
        self._attach(self.backend)
        self.api_key = self.auth.create_api_key()
        self.oauth_client_id, self.oauth_client_secret = self.auth.create_oauth_client()

    def configure(self, **settings: Any) -> dict[str, Any]:
        checked = {name: _validate_setting(name, value) for name, value in settings.items()}
        with self.settings_lock:
            self.settings.update(checked)
            if "rate_limit" in checked or "rate_window_seconds" in checked:
                self.ratelimiter.configure(self.settings["rate_limit"], self.settings["rate_window_seconds"])
            self.webhooks.retry_base_seconds = self.settings["webhook_retry_base_seconds"]
            self.webhooks.timeout_seconds = self.settings["webhook_timeout_seconds"]
            if "token_ttl_seconds" in checked:
                self.auth.token_ttl_seconds = self.settings["token_ttl_seconds"]
            if "late_commit_seconds" in checked:
                with self.store.lock:
                    self.store.set_late_commit(self.settings["late_commit_seconds"])
            return dict(self.settings)

    def reset(self, seed: int | None = None, shops: int | None = None, work_orders: int | None = None,
              start: str | None = None) -> None:
        """Rebuild the world (same parameters unless given); credentials and settings stay."""
        for name, value, hi in (("seed", seed, 2**63), ("shops", shops, 1000), ("work_orders", work_orders, 1_000_000)):
            lowest = 0 if name == "seed" else 1
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= hi):
                raise ValueError(f"{name} must be an integer in [{0 if name == 'seed' else 1}, {hi}]")
        if start is not None:
            _check_start(start)
        self.seed = self.seed if seed is None else seed
        self.shops = self.shops if shops is None else shops
        self.work_orders = self.work_orders if work_orders is None else work_orders
        self.start = self.start if start is None else start
        self.activity.stop()
        store = Store()
        store.set_late_commit(self.settings["late_commit_seconds"])
        backend = Backend(store, self.seed, self.shops, self.work_orders, self.start)
        backend.generate()
        self._attach(backend)
        with self.store.lock:
            self.store, self.backend = store, backend
        self.activity = Activity(store, backend, self.seed)

    def _attach(self, backend: Backend) -> None:
        backend.event_sink = self.webhooks.enqueue
        backend.wants_event = self.webhooks.wants

    MAX_ADVANCE_SECONDS = 400 * 86400

    def advance(self, seconds: float) -> dict:
        """Move the emulator clock and generate the activity of that span."""
        if not 0 <= seconds <= self.MAX_ADVANCE_SECONDS:
            raise ValueError(f"advance between 0 and {self.MAX_ADVANCE_SECONDS // 86400} days at a time")
        return self.activity.advance(seconds)

    def start_background_activity(self, **options: Any) -> None:
        self.activity.start(**options)

    def stop_background_activity(self) -> None:
        self.activity.stop()

    def close(self) -> None:
        self.activity.stop()
        self.webhooks.close()

    def truth_bytes(self) -> bytes:
        with self.store.lock:
            return self.store.truth_bytes()



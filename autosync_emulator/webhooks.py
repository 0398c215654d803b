"""Webhook subscriptions and their deliveries.

A delivery is `POST url` with body `{"id": "evt_…", "event", "created_at", "shop_id",
"data": <object as GET returns it>}` and `X-AutoSync-Signature` = lowercase hex
HMAC-SHA256 of the raw body with the subscription's secret. A failed attempt (non-2xx,
connection error, timeout) is retried up to `max_retries` times with exponential backoff,
from one background thread that never touches the store. Hard deletes fire nothing.
"""
from __future__ import annotations

import collections
import hashlib
import heapq
import hmac
import secrets
import threading
import time
from typing import Any, Callable
from urllib.parse import urlsplit

import orjson
import requests

from .errors import ApiError

EVENTS = ("workorder.created", "workorder.updated", "workorder.completed", "workorder.invoiced",
          "payment.received", "payment.refunded", "customer.created", "customer.updated",
          "appointment.created", "inspection.completed", "inspection.approved", "inventory.low_stock")


SIGNATURE_HEADER = "X-AutoSync-Signature"


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks:
    def __init__(self, now_iso: Callable[[], str], max_retries: int = 5, retry_base_seconds: float = 1.0,
                 timeout_seconds: float = 5.0):
        self.now_iso = now_iso  # the emulator clock, stamped on subscriptions and deliveries
        self.max_retries = max_retries
        self.retry_base_seconds = retry_base_seconds
        self.timeout_seconds = timeout_seconds
        self._lock = threading.Condition()
        self._subs: dict[int, dict] = {}
        self._next_id = 0
        self._queue: list[tuple[float, int, dict]] = []
        self._seq = 0
        self._log: collections.deque = collections.deque(maxlen=20000)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._in_flight = 0

    # -------------------------------------------------------------- subscriptions (the API)
    @staticmethod
    def public(sub: dict) -> dict:
        return {k: sub[k] for k in ("id", "url", "events", "active", "created_at", "updated_at")}

    def create(self, principal, body: Any) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "The request body must be a JSON object.")
        unknown = sorted(set(body) - {"url", "events", "secret", "active"})
        if unknown:
            raise ApiError(422, "validation_error", f"Unknown field '{unknown[0]}'.", unknown[0])
        url = body.get("url")
        try:
            parts = urlsplit(url) if isinstance(url, str) and len(url) <= 2000 else None
        except ValueError:  # e.g. "http://[": an unbalanced IPv6 bracket
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ApiError(422, "validation_error", "The 'url' field must be an http(s) URL.", "url")
        events = body.get("events")
        if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
            raise ApiError(422, "validation_error", f"The 'events' field must be a non-empty list of: {', '.join(EVENTS)}.", "events")
        secret = body.get("secret")
        if secret is not None and (not isinstance(secret, str) or not 8 <= len(secret) <= 200):
            raise ApiError(422, "validation_error", "The 'secret' field must be a string of 8-200 characters.", "secret")
        active = body.get("active", True)
        if not isinstance(active, bool):
            raise ApiError(422, "validation_error", "The 'active' field must be true or false.", "active")
        generated = secret is None
        secret = secret or "whsec_" + secrets.token_hex(16)
        stamp = self.now_iso()
        with self._lock:
            self._next_id += 1
            sub = {"id": self._next_id, "url": url, "events": list(dict.fromkeys(events)), "active": active,
                   "created_at": stamp, "updated_at": stamp, "secret": secret,
                   "owner": principal.identity, "shops": principal.shops}
            self._subs[sub["id"]] = sub
        out = self.public(sub)
        if generated:
            out["secret"] = secret  # shown once, on creation; write-only afterwards
        return out

    def list_for(self, principal) -> list[dict]:
        with self._lock:
            return [self.public(s) for s in self._subs.values() if s["owner"] == principal.identity]

    def get_for(self, principal, wid: int) -> dict:
        with self._lock:
            sub = self._subs.get(wid)
            if sub is None or sub["owner"] != principal.identity:
                raise ApiError(404, "not_found", f"Webhook {wid} not found.")
            return self.public(sub)

    def delete_for(self, principal, wid: int) -> None:
        with self._lock:
            sub = self._subs.get(wid)
            if sub is None or sub["owner"] != principal.identity:
                raise ApiError(404, "not_found", f"Webhook {wid} not found.")
            del self._subs[wid]

    # -------------------------------------------------------------- events (from the backend)
    def wants(self, event: str, shop_id: int) -> bool:
        if not self._subs:
            return False
        with self._lock:
            return any(self._matches(s, event, shop_id) for s in self._subs.values())

    @staticmethod
    def _matches(sub: dict, event: str, shop_id: int) -> bool:
        return sub["active"] and event in sub["events"] and (sub["shops"] is None or shop_id in sub["shops"])

    def enqueue(self, event: str, shop_id: int, data: dict, event_id: str) -> None:
        body = orjson.dumps({"id": event_id, "event": event, "created_at": self.now_iso(),
                             "shop_id": shop_id, "data": data})
        with self._lock:
            for sub in self._subs.values():
                if self._matches(sub, event, shop_id):
                    self._seq += 1
                    delivery = {"event_id": event_id, "event": event, "webhook_id": sub["id"], "url": sub["url"],
                                "body": body, "signature": sign(sub["secret"], body), "attempt": 1}
                    heapq.heappush(self._queue, (time.monotonic(), self._seq, delivery))
            self._ensure_worker()
            self._lock.notify_all()

    # -------------------------------------------------------------- delivery
    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._closed = False
            self._thread = threading.Thread(target=self._run, name="autosync-emulator-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        session = requests.Session()
        while True:
            with self._lock:
                while not self._closed and (not self._queue or self._queue[0][0] > time.monotonic()):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._lock.wait(timeout=wait)
                if self._closed:
                    return
                _due, _seq, delivery = heapq.heappop(self._queue)
                self._in_flight += 1
            try:
                outcome = self._attempt(session, delivery)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._lock.notify_all()
            with self._lock:
                self._log.append({"event_id": delivery["event_id"], "event": delivery["event"],
                                  "webhook_id": delivery["webhook_id"], "url": delivery["url"],
                                  "attempt": delivery["attempt"], "outcome": outcome})
                ok = isinstance(outcome, int) and 200 <= outcome < 300
                if not ok and delivery["attempt"] <= self.max_retries:
                    backoff = self.retry_base_seconds * 2 ** (delivery["attempt"] - 1)
                    self._seq += 1
                    heapq.heappush(self._queue, (time.monotonic() + backoff, self._seq,
                                                 {**delivery, "attempt": delivery["attempt"] + 1}))
                    self._lock.notify_all()

    def _attempt(self, session: requests.Session, delivery: dict) -> int | str:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: delivery["signature"],
                   "X-AutoSync-Event": delivery["event"], "X-AutoSync-Delivery": delivery["event_id"],
                   "User-Agent": "AutoSync-Webhooks/1.0 (emulator)"}
        try:
            r = session.post(delivery["url"], data=delivery["body"], headers=headers, timeout=self.timeout_seconds)
            return r.status_code
        except requests.Timeout:
            return "timeout"
        except requests.RequestException as exc:
            return f"error: {type(exc).__name__}"

    def deliveries(self) -> list[dict]:
        with self._lock:
            return list(self._log)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is due now or in flight (tests); retries scheduled later don't count."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight or (self._queue and self._queue[0][0] <= time.monotonic()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(timeout=min(left, 0.05))
            return True

    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + self._in_flight

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._thread is not None:
            # a delivery in flight ends by its own timeout; the daemon thread need not be awaited
            self._thread.join(timeout=1)
        self._thread = None

"""Faults as data: an ordered list of rules consulted by one middleware (LocalStack style).

A rule (JSON):
  {"method": "GET",                 # or "*" (default)
   "path": "/v1/shops/*/workorders", # fnmatch glob on the path, "*" (default) matches all
   "behaviour": "error",             # error | rate_limit | slow | timeout | drop | truncate | malformed
   "status": 503,                    # for error (default 500)
   "probability": 1.0,               # chance a matching request is hit (seeded: replayable)
   "count": null,                    # fire at most this many times (null: unlimited)
   "delay": 0.0,                     # seconds: added latency (slow, and before any behaviour);
                                     #   for timeout how long to hang before dropping (default 30)
   "retry_after": null}              # Retry-After header (seconds) for error / rate_limit
The first rule that matches and fires decides; others are not consulted. Rolls come from
one `random.Random` seeded by (seed, "faults"), reset whenever the rules are replaced.
"""
from __future__ import annotations

import asyncio
import fnmatch
import threading
from typing import Any, Callable

from .errors import ApiError
from .seeding import rng_for

BEHAVIOURS = ("error", "rate_limit", "slow", "timeout", "drop", "truncate", "malformed")
RULE_FIELDS = {"method", "path", "behaviour", "status", "probability", "count", "delay", "retry_after"}
MALFORMED_BODY = b'{"success":true,"data":[{"id":1,"name":"x",}'


def validate_rule(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise ValueError("a fault rule must be a JSON object")
    unknown = set(raw) - RULE_FIELDS
    if unknown:
        raise ValueError(f"unknown fault rule fields {sorted(unknown)}; known: {sorted(RULE_FIELDS)}")
    rule = {"method": str(raw.get("method", "*")).upper(), "path": str(raw.get("path", "*")),
            "behaviour": raw.get("behaviour", "error"), "status": raw.get("status"),
            "probability": raw.get("probability", 1.0), "count": raw.get("count"),
            "delay": raw.get("delay", 0.0), "retry_after": raw.get("retry_after")}
    if rule["behaviour"] not in BEHAVIOURS:
        raise ValueError(f"behaviour must be one of {BEHAVIOURS}")
    if rule["behaviour"] == "error":
        status = rule["status"] if rule["status"] is not None else 500
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        rule["status"] = status
    prob = rule["probability"]
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
        raise ValueError("probability must be a number in [0, 1]")
    count = rule["count"]
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise ValueError("count must be a non-negative integer or null")
    delay = rule["delay"]
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0 or delay > 600:
        raise ValueError("delay must be a number of seconds in [0, 600]")
    retry = rule["retry_after"]
    if retry is not None and (isinstance(retry, bool) or not isinstance(retry, int) or retry < 0):
        raise ValueError("retry_after must be a non-negative integer or null")
    return rule


class FaultRules:
    def __init__(self, seed: int):
        self.seed = seed
        self._lock = threading.Lock()
        self._rules: list[dict] = []
        self._fired: list[int] = []
        self._rng = rng_for(seed, "faults")

    def set(self, rules: list) -> list[dict]:
        if not isinstance(rules, list):
            raise ValueError("fault rules must be a JSON list")
        checked = [validate_rule(r) for r in rules]
        with self._lock:
            self._rules = checked
            self._fired = [0] * len(checked)
            self._rng = rng_for(self.seed, "faults")
        return checked

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [{**rule, "fired": fired} for rule, fired in zip(self._rules, self._fired)]

    def pick(self, method: str, path: str) -> dict | None:
        if not self._rules:
            return None
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule["method"] != "*" and rule["method"] != method:
                    continue
                if not fnmatch.fnmatchcase(path, rule["path"]):
                    continue
                if rule["count"] is not None and self._fired[i] >= rule["count"]:
                    continue
                if rule["probability"] < 1 and self._rng.random() >= rule["probability"]:
                    continue
                self._fired[i] += 1
                return rule
        return None


def _abort(ctx: dict) -> None:
    """Close the client connection without a response (uvicorn's transport, when reachable)."""
    if not ctx.get("dropped") and "on_drop" in ctx:
        ctx["on_drop"]()
    ctx["dropped"] = True
    raw_send = ctx.get("raw_send")
    owner = getattr(raw_send, "__self__", None)
    transport = getattr(owner, "transport", None)
    if transport is not None:
        transport.abort()
        return
    raise ConnectionAbortedError("fault rule dropped the connection")


class FaultMiddleware:
    def __init__(self, app, core_ref: Callable):
        self.app = app
        self.core_ref = core_ref

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        rule = self.core_ref().faults.pick(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        ctx = scope["autosync"]
        ctx["fault"] = rule["behaviour"]
        behaviour = rule["behaviour"]
        if behaviour == "timeout":
            await asyncio.sleep(rule["delay"] or 30.0)
            _abort(ctx)
            return
        if rule["delay"]:
            await asyncio.sleep(rule["delay"])
        if behaviour == "drop":
            _abort(ctx)
            return
        if behaviour == "error":
            if rule["retry_after"] is not None:
                ctx["retry_after_header"] = rule["retry_after"]
            raise ApiError(rule["status"], None, f"Injected fault: HTTP {rule['status']}.")
        if behaviour == "rate_limit":
            ctx["retry_after"] = rule["retry_after"] if rule["retry_after"] is not None else 1
            raise ApiError(429, "rate_limited", "Rate limit exceeded.")
        if behaviour in ("truncate", "malformed"):
            await self.app(scope, receive, _rewrite_body(send, behaviour))
            return
        await self.app(scope, receive, send)  # slow: the delay was the fault


def _rewrite_body(send, behaviour: str):
    """Buffer the response and replace its body with a cut or broken JSON document."""
    held: dict = {}
    chunks: list[bytes] = []

    async def wrapped(message):
        if message["type"] == "http.response.start":
            held["start"] = message
            return
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            body = body[: max(1, len(body) // 2)] if behaviour == "truncate" else MALFORMED_BODY
            start = held["start"]
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return wrapped

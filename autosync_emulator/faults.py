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


# -- writes just before a list page is computed -------------------------------------------------
# A race between a client paging a list and writes to that list, triggered on the server at an
# exact point instead of on a timer: a hook names a listing (path glob) and which of its
# requests (the n-th matching list request, 1-based, or every one) and runs its writes under the
# store lock right before that page is computed. Tests that must hold under any CPU load use it.
#
# In process (tests): `Emulator.before_list(path, fn, request=None)`; `fn(core, info)` runs under
# the store lock with info = {"path", "request" (n-th matching request), "page", "query"}.
# Over HTTP (PUT /_emulator/list-hooks) the writes are data:
#   {"path": "/v1/shops/1/customers", "request": 2,          # null: before every matching request
#    "writes": [{"op": "delete", "resource": "customers", "id": 7},
#               {"op": "touch", "resource": "customers", "id": 3},   # updated_at = the clock
#               {"op": "create", "resource": "customers", "shop_id": 1},
#               {"op": "advance", "seconds": 1}]}                    # the clock moves on
HOOK_FIELDS = {"path", "request", "writes"}
WRITE_OPS = ("delete", "touch", "create", "advance")


def validate_hook(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise ValueError("a list hook must be a JSON object")
    unknown = set(raw) - HOOK_FIELDS
    if unknown:
        raise ValueError(f"unknown list hook fields {sorted(unknown)}; known: {sorted(HOOK_FIELDS)}")
    path, request, writes = raw.get("path", "*"), raw.get("request"), raw.get("writes", [])
    if not isinstance(path, str):
        raise ValueError("path must be a string (an fnmatch glob)")
    if request is not None and (isinstance(request, bool) or not isinstance(request, int) or request < 1):
        raise ValueError("request must be a positive integer or null (every request)")
    if not isinstance(writes, list):
        raise ValueError("writes must be a list")
    for write in writes:
        if not isinstance(write, dict) or write.get("op") not in WRITE_OPS:
            raise ValueError(f"each write is an object whose op is one of {WRITE_OPS}")
        if write["op"] == "advance":
            seconds = write.get("seconds", 1)
            if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= 86400:
                raise ValueError("advance takes whole seconds in [0, 86400]")
        elif write["op"] == "create":
            if write.get("resource") != "customers" or isinstance(write.get("shop_id"), bool) \
                    or not isinstance(write.get("shop_id"), int):
                raise ValueError("create makes a customer: {'op': 'create', 'resource': 'customers', 'shop_id': n}")
        elif not isinstance(write.get("resource"), str) or isinstance(write.get("id"), bool) \
                or not isinstance(write.get("id"), int):
            raise ValueError(f"{write['op']} needs a resource name and an integer id")
    return {"path": path, "request": request, "writes": writes}


class ListHooks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[dict] = []  # {"path", "request", "fn", "spec"}
        self._seen: dict[str, int] = {}  # path glob -> list requests matched so far

    def add(self, path: str, fn: Callable[[Any, dict], None], request: int | None = None, spec: dict | None = None) -> None:
        with self._lock:
            self._hooks.append({"path": path, "request": request, "fn": fn, "spec": spec})
            self._seen.setdefault(path, 0)

    def set(self, hooks: list, apply_writes: Callable[[Any, list], None]) -> list[dict]:
        """Replace every hook by data hooks (the control plane); counting starts again."""
        if not isinstance(hooks, list):
            raise ValueError("list hooks must be a JSON list")
        checked = [validate_hook(raw) for raw in hooks]
        with self._lock:
            self._hooks, self._seen = [], {}
        for spec in checked:
            self.add(spec["path"], lambda core, info, writes=spec["writes"]: apply_writes(core, writes), spec["request"], spec)
        return checked

    def clear(self) -> None:
        with self._lock:
            self._hooks, self._seen = [], {}

    @property
    def active(self) -> bool:
        return bool(self._hooks)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [{**(hook["spec"] or {"path": hook["path"], "request": hook["request"], "writes": "(in process)"}),
                     "matched": self._seen.get(hook["path"], 0)} for hook in self._hooks]

    def before_page(self, core: Any, path: str, page: int, query: Any) -> None:
        """Called by the list handlers under the store lock, before the page is computed."""
        with self._lock:
            due = []
            for glob in list(self._seen):
                if fnmatch.fnmatchcase(path, glob):
                    self._seen[glob] += 1
            for hook in self._hooks:
                if fnmatch.fnmatchcase(path, hook["path"]):
                    n = self._seen[hook["path"]]
                    if hook["request"] is None or hook["request"] == n:
                        due.append((hook["fn"], n))
        for fn, n in due:
            fn(core, {"path": path, "request": n, "page": page, "query": query})


def apply_writes(core: Any, writes: list) -> None:
    """Run data writes (validated by validate_hook) against the core's backend; the caller holds the store lock."""
    import random

    backend, store = core.backend, core.store
    for write in writes:
        op = write["op"]
        if op == "advance":
            store.set_clock(store.clock + int(write.get("seconds", 1)))
        elif op == "create":
            backend.new_customer(write["shop_id"], random.Random(store.clock * 7919 + write["shop_id"]), with_vehicles=False)
        elif op == "delete":
            store.delete(write["resource"], write["id"])
        else:  # touch: a new version at the clock's second
            obj = store.latest(write["resource"], write["id"])
            if obj is not None:
                store.put(write["resource"], {**obj, "updated_at": backend.now_iso()})

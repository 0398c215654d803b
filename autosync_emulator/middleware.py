"""The ASGI middleware around the routes (plain ASGI: Starlette's BaseHTTPMiddleware costs too
much per request for the 500 pages/s target).

Outermost to innermost: `EdgeMiddleware` (request id, rate-limit headers, request log, errors
as the envelope) -> fault rules (faults.py) -> `GateMiddleware` (auth, rate limit) -> routes.
"""
from __future__ import annotations

import logging
import secrets
from typing import Callable

from .auth import AuthError
from .errors import ApiError, envelope
from .ratelimit import UNLIMITED_HEADER
from .routes import PUBLIC_PATHS

JSON = "application/json"


class GateMiddleware:
    """Authentication and the per-credential rate limit for /v1 requests."""

    def __init__(self, app, core_ref: Callable):
        self.app = app
        self.core_ref = core_ref

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/") or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        core = self.core_ref()
        ctx = scope["autosync"]
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            who = core.auth.authenticate(authorization)
        except AuthError as exc:
            raise ApiError(exc.status, exc.code, exc.message, exc.field) from None
        ctx["principal"] = who
        ctx["identity"] = who.identity
        decision = core.ratelimiter.hit(who.identity)
        ctx["rate"] = decision
        if not decision.allowed:
            ctx["retry_after"] = decision.retry_after
            raise ApiError(429, "rate_limited",
                           f"Rate limit of {decision.limit} requests per window exceeded; retry in {decision.retry_after} s.")
        await self.app(scope, receive, send)


def route_template(path: str) -> str:
    """`/v1/shops/12/workorders/5` -> `/v1/shops/{shop_id}/workorders/{id}` for the request log."""
    parts = path.split("/")
    out = []
    for i, part in enumerate(parts):
        if part.isdigit():
            out.append("{shop_id}" if i > 0 and parts[i - 1] == "shops" else "{id}")
        elif i > 0 and parts[i - 1] == "decode":
            out.append("{vin}")
        else:
            out.append(part)
    return "/".join(out)


class EdgeMiddleware:
    """Request id, X-RateLimit-* on every response, the error envelope, the request log."""

    def __init__(self, app, core_ref: Callable):
        self.app = app
        self.core_ref = core_ref

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        core = self.core_ref()
        request_id = "req_" + secrets.token_hex(8)
        route = f"{scope['method']} {route_template(scope['path'])}"
        logged = not scope["path"].startswith("/_emulator")
        ctx = {"request_id": request_id, "raw_send": send,
               # a fault that drops the connection counts it before the client can see the drop
               "on_drop": (lambda: core.request_log.record(route, "dropped")) if logged else (lambda: None)}
        scope["autosync"] = ctx
        state = {"status": 0, "started": False}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                state["started"] = True
                state["status"] = message["status"]
                # counted before the client can read the answer: a test (or a benchmark) that
                # resets or reads the log right after a response never races its own request
                if logged:
                    # the window the rate limiter counted it in (none for requests it never saw)
                    window = ctx["rate"].reset if ctx.get("rate") is not None and ctx["rate"].limit < UNLIMITED_HEADER else None
                    core.request_log.record(route, message["status"], window)
                decision = ctx.get("rate") or core.ratelimiter.peek(ctx.get("identity"))
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-ratelimit-limit", str(decision.limit).encode()))
                headers.append((b"x-ratelimit-remaining", str(decision.remaining).encode()))
                headers.append((b"x-ratelimit-reset", str(decision.reset).encode()))
                if "retry_after_header" in ctx:
                    headers.append((b"retry-after", str(ctx["retry_after_header"]).encode()))
                elif message["status"] == 429:
                    retry = ctx.get("retry_after") or decision.retry_after or 1
                    if not any(h[0].lower() == b"retry-after" for h in headers):
                        headers.append((b"retry-after", str(retry).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ApiError as exc:
            if state["started"]:
                raise
            await self._error(send_with_headers, core, exc.status, exc.code, exc.message, exc.field, request_id)
        except Exception:  # a bug: still answer with the envelope, never a bare traceback
            if state["started"]:
                raise
            logging.getLogger("autosync_emulator").exception("unhandled error")
            await self._error(send_with_headers, core, 500, "server_error", "Internal server error.", None, request_id)

    async def _error(self, send, core, status, code, message, field, request_id):
        body = envelope(status, code, message, request_id, field, core.settings["legacy_error_codes"])
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


"""The ASGI app: refuse early, read the body as a bounded stream, verify, store, answer.

Order of checks, cheapest first, so a stranger costs as little as possible: the signature
header's shape (before any body byte is read), the declared length, the body read up to the cap
within the body timeout, the HMAC, the envelope, then a place in the bounded write queue.
Every refusal has a JSON body that says what is wrong and is counted on GET /metrics.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipelines.webhooks.batcher import OnEvents, SyncTriggerBatcher
from pipelines.webhooks.envelope import (
    SIGNATURE_HEADER,
    InvalidEnvelope,
    UnknownEvent,
    WebhookEvent,
    signature_is_valid,
    signature_is_well_formed,
)
from pipelines.webhooks.limits import ReceiverLimits
from pipelines.webhooks.metrics import ReceiverMetrics
from pipelines.webhooks.store import WebhookEventStore
from pipelines.webhooks.writer import EventWriter, QueueFull

logger = logging.getLogger("pipelines.webhooks")
DEFAULT_PATH = "/webhooks/autosync"


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, reason: str | None = None, close: bool = False):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.reason = reason or code  # the /metrics counter: finer than the error code
        self.close = close  # the rest of the request is not read: end the connection


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"success": False, "error": {"code": code, "message": message, "status": status}},
        status_code=status, headers=headers,
    )


async def _read_body(request: Request, limits: ReceiverLimits, metrics: ReceiverMetrics) -> bytes:
    """The body, read message by message; refused once past the cap or the deadline.

    Not `await request.body()`: that reads a chunked body whole before anything can check its
    size. Here at most cap + one server read (uvicorn pauses the socket at 64 KiB buffered) is
    ever held.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.body_timeout_seconds
    body = bytearray()
    read = 0
    while True:
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise asyncio.TimeoutError
            message = await asyncio.wait_for(request.receive(), remaining)
        except asyncio.TimeoutError:
            raise _Refusal(408, "request_timeout",
                           f"the body did not arrive within {limits.body_timeout_seconds:g} s", close=True) from None
        if message["type"] == "http.disconnect":
            raise _Refusal(400, "client_disconnected", "the client went away before the body ended")
        chunk = message.get("body", b"")
        read += len(chunk)
        metrics.chunk(len(chunk))
        if read > limits.max_body_bytes:
            metrics.body_refused_after(read)
            raise _Refusal(413, "payload_too_large", f"body over {limits.max_body_bytes} bytes", close=True)
        body += chunk
        if not message.get("more_body", False):
            return bytes(body)


def _check_signature_header(request: Request) -> str:
    values = request.headers.getlist(SIGNATURE_HEADER)
    if not values or not values[0]:
        raise _Refusal(403, "invalid_signature", f"missing {SIGNATURE_HEADER}", reason="missing_signature")
    if len(values) > 1:
        raise _Refusal(400, "invalid_request", f"{SIGNATURE_HEADER} sent {len(values)} times; send it once",
                       reason="repeated_signature")
    if not signature_is_well_formed(values[0]):
        raise _Refusal(403, "invalid_signature",
                       f"{SIGNATURE_HEADER} must be 64 lowercase hex characters (HMAC-SHA256 of the body)",
                       reason="malformed_signature")
    return values[0]


def _check_declared_length(request: Request, limits: ReceiverLimits) -> None:
    declared = request.headers.getlist("content-length")
    if not declared:
        return  # chunked (or no body): the stream read enforces the cap
    if len(declared) > 1 or not declared[0].isascii() or not declared[0].isdigit():
        raise _Refusal(400, "invalid_request", "Content-Length must be one non-negative integer", close=True)
    if int(declared[0]) > limits.max_body_bytes:
        raise _Refusal(413, "payload_too_large", f"body over {limits.max_body_bytes} bytes", close=True)


def create_app(
    secret: str,
    store: WebhookEventStore,
    on_events: OnEvents | None = None,
    debounce_seconds: float = 2.0,
    max_delay_seconds: float = 30.0,
    path: str = DEFAULT_PATH,
    limits: ReceiverLimits | None = None,
    metrics: ReceiverMetrics | None = None,
) -> Starlette:
    """The receiver. POST deliveries to `path`; `GET /healthz` answers 200 for load balancers,
    `GET /metrics` the counters (JSON).

    `on_events(resources, shop_ids)` runs in a background thread after a quiet period; None
    stores events without triggering anything.
    """
    if not secret:
        raise ValueError("the webhook secret is empty: set it to the secret given to POST /v1/webhooks")
    limits = limits or ReceiverLimits()
    metrics = metrics or ReceiverMetrics()
    batcher = SyncTriggerBatcher(on_events, debounce_seconds, max_delay_seconds) if on_events else None
    writer = EventWriter(store, max_pending=limits.max_pending_writes)
    retry_after = {"Retry-After": str(limits.retry_after_seconds)}

    def refuse(refusal: _Refusal, request: Request) -> JSONResponse:
        metrics.refuse(refusal.reason)
        if refusal.status in (403, 413):
            # Never log the secret or the signature; who sent what is enough to investigate.
            client = request.client.host if request.client else "?"
            logger.warning("webhooks: refused a delivery from %s: %s", client, refusal.reason)
        headers = {"Connection": "close"} if refusal.close else None
        return _error(refusal.status, refusal.code, refusal.message, headers)

    async def receive(request: Request) -> JSONResponse:
        try:
            provided = _check_signature_header(request)
            _check_declared_length(request, limits)
            raw_body = await _read_body(request, limits, metrics)
            if not signature_is_valid(secret, raw_body, provided):
                raise _Refusal(403, "invalid_signature", f"invalid {SIGNATURE_HEADER}")
            try:
                event = WebhookEvent.from_body(raw_body)
            except UnknownEvent as exc:
                raise _Refusal(422, "unknown_event", str(exc)) from None
            except InvalidEnvelope as exc:
                raise _Refusal(400, "invalid_request", f"not an AutoSync event envelope: {exc}") from None
            try:
                stored = writer.submit(event)
            except QueueFull:
                metrics.refuse("overloaded")
                return _error(503, "overloaded", "too many deliveries waiting to be stored; retry later",
                              retry_after)
        except _Refusal as refusal:
            return refuse(refusal, request)
        try:
            is_new = await asyncio.wrap_future(stored)
        except Exception as exc:
            # 503 makes the sender retry later; answering 200 would lose the event.
            metrics.refuse("storage_unavailable")
            logger.error("webhooks: could not store %s: %s", event.event_id, type(exc).__name__)
            return _error(503, "storage_unavailable", "the event could not be stored; retry later", retry_after)
        if not is_new:
            metrics.count("duplicate")
            logger.info("webhooks: duplicate delivery of %s ignored", event.event_id)
            return JSONResponse({"success": True, "id": event.event_id, "duplicate": True})
        metrics.count("stored")
        logger.info("webhooks: stored %s %s shop %s", event.event_id, event.event, event.shop_id)
        if batcher is not None:
            batcher.submit(event.touched_resources, {event.shop_id})
        return JSONResponse({"success": True, "id": event.event_id, "duplicate": False})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def metrics_endpoint(request: Request) -> JSONResponse:
        snapshot = metrics.snapshot()
        snapshot["pending_writes"] = writer.pending()
        snapshot["write_batches"] = writer.batches
        snapshot["largest_write_batch"] = writer.largest_batch
        if batcher is not None:
            snapshot["syncs"] = {"started": batcher.syncs_started, "failed": batcher.syncs_failed,
                                 "idle": batcher.idle()}
        return JSONResponse(snapshot)

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        metrics.refuse(code)
        return _error(exc.status_code, code, f"{request.method} {request.url.path[:100]}: {exc.detail}")

    @asynccontextmanager
    async def lifespan(app: Starlette):
        writer.start()
        if batcher is not None:
            batcher.start()
        try:
            yield
        finally:
            await run_in_threadpool(writer.stop)
            if batcher is not None:
                await run_in_threadpool(batcher.stop)
            await run_in_threadpool(store.close)

    app = Starlette(
        routes=[
            Route(path, receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        exception_handlers={404: http_error, 405: http_error},
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.batcher = batcher
    app.state.writer = writer
    app.state.metrics = metrics
    app.state.limits = limits
    return app

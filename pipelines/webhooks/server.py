"""uvicorn, with the bounds uvicorn itself lacks: a header timeout and a header size cap.

uvicorn has a connection limit (`limit_concurrency`: 503 past it) and a keep-alive timeout, but
nothing bounds how long a client may take to send its headers, or how large they may grow
(httptools accepts any size): a client sending one byte a second holds its connection forever.
The protocol subclass below adds both; the body timeout and size cap live in the app, which
reads the body as a stream.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pipelines.webhooks.limits import ReceiverLimits
from pipelines.webhooks.metrics import ReceiverMetrics


def _plain_response(status_line: bytes, message: str) -> bytes:
    body = message.encode("ascii")
    return (status_line + b"content-type: text/plain; charset=utf-8\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


def _over_capacity_app(retry_after_seconds: int):
    body = json.dumps({"success": False, "error": {
        "code": "over_capacity", "status": 503,
        "message": "too many connections at once; retry later"}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"retry-after", str(retry_after_seconds).encode()), (b"connection", b"close")]

    async def over_capacity(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return over_capacity


def guarded_protocol(limits: ReceiverLimits, metrics: ReceiverMetrics) -> type[HttpToolsProtocol]:
    """An HttpToolsProtocol class bound to these limits and counters (uvicorn takes a class)."""
    over_capacity = _over_capacity_app(limits.retry_after_seconds)

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0
        _headers_too_large = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()  # a client that connects and sends nothing is cut off too

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._headers_too_large and not self.transport.is_closing():
                metrics.refuse("headers_too_large")
                self._cancel_header_timer()
                self.transport.write(_plain_response(
                    b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
                    f"request line and headers over {limits.max_header_bytes} bytes"))
                self.transport.close()

        # parser callbacks -------------------------------------------------------------
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_bytes = 0
            self._headers_too_large = False
            self._arm_header_timer()

        def on_url(self, url: bytes) -> None:
            self._add_header_bytes(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._add_header_bytes(len(name) + len(value))
            if not self._headers_too_large:
                super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._cancel_header_timer()
            if self._headers_too_large:
                return  # answered 431 by data_received; the app never sees this request
            if self.limit_concurrency is not None and (
                len(self.connections) >= self.limit_concurrency or len(self.tasks) >= self.limit_concurrency
            ):
                # uvicorn would answer its own 503 without Retry-After; answer ours instead.
                metrics.refuse("over_capacity")
                app, limit = self.app, self.limit_concurrency
                self.app, self.limit_concurrency = over_capacity, None
                try:
                    super().on_headers_complete()
                finally:
                    self.app, self.limit_concurrency = app, limit
                return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._headers_too_large:  # no request cycle was started for it
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self._headers_too_large:
                super().on_message_complete()

        # helpers ----------------------------------------------------------------------
        def _add_header_bytes(self, size: int) -> None:
            self._header_bytes += size
            if self._header_bytes > limits.max_header_bytes:
                self._headers_too_large = True

        def _arm_header_timer(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(limits.header_timeout_seconds, self._header_timeout)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            metrics.refuse("header_timeout")
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_plain_response(
                    b"HTTP/1.1 408 Request Timeout\r\n",
                    f"headers not received within {limits.header_timeout_seconds:g} s"))
            self.transport.close()

    return GuardedHttpToolsProtocol


def uvicorn_config(app: Any, host: str, port: int, limits: ReceiverLimits, metrics: ReceiverMetrics,
                   log_level: str = "info", **kwargs: Any):
    import uvicorn

    return uvicorn.Config(
        app, host=host, port=port,
        http=guarded_protocol(limits, metrics),
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive_seconds,
        server_header=False,
        log_level=log_level,
        lifespan="on",
        **kwargs,
    )

"""The receiver's bounds, one at a time and quickly: streamed body cap (chunked too), header size
and time, body time, the write queue, the refusal counters, and the sync in a child process."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager

import pytest
from starlette.testclient import TestClient

from pipelines.webhooks import (
    ReceiverLimits,
    ReceiverMetrics,
    SyncOptions,
    WebhookEvent,
    create_app,
    duckdb_store,
    sync_touched,
)
from pipelines.webhooks.server import uvicorn_config
from server_helpers import serve_in_thread

SECRET = "whsec_limits_" + "l" * 24
PATH = "/webhooks/autosync"


def sign(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def envelope(event_id: str) -> bytes:
    return json.dumps({"id": event_id, "event": "customer.updated", "created_at": "2025-03-01T10:00:00Z",
                       "shop_id": 1, "data": {"id": 5, "updated_at": "2025-03-01T10:00:00Z"}}).encode()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return duckdb_store(str(tmp_path_factory.mktemp("limits") / "warehouse.duckdb"))


def test_webhooks_chunked_body_over_cap_is_413_after_cap_plus_one_read(store):
    limits = ReceiverLimits(max_body_bytes=10_000)
    app = create_app(SECRET, store, None, limits=limits)
    produced = []

    def chunks():  # no Content-Length: sent chunked; 100 x 4 KiB = 400 KiB if read to the end
        for _ in range(100):
            produced.append(4096)
            yield b"x" * 4096

    with TestClient(app) as client:
        response = client.post(PATH, content=chunks(), headers={"X-AutoSync-Signature": sign(b"x")})
        assert response.status_code == 413
        assert response.headers["connection"] == "close"
        snapshot = client.get("/metrics").json()
    assert snapshot["refused"]["payload_too_large"] == 1
    assert 10_000 < snapshot["largest_body_read_on_refusal"] <= 10_000 + snapshot["largest_chunk"]


def test_webhooks_declared_length_over_cap_is_refused_unread(store):
    app = create_app(SECRET, store, None, limits=ReceiverLimits(max_body_bytes=100))
    body = envelope("evt_declared") + b" " * 200
    with TestClient(app) as client:
        assert client.post(PATH, content=body, headers={"X-AutoSync-Signature": sign(body)}).status_code == 413
        assert client.get("/metrics").json()["largest_body_read_on_refusal"] == 0  # not a byte read


def test_webhooks_repeated_or_malformed_signature_refused_before_the_body(store):
    body = envelope("evt_rep")
    with TestClient(create_app(SECRET, store, None)) as client:
        twice = client.post(PATH, content=body, headers=[("X-AutoSync-Signature", sign(body))] * 2)
        assert twice.status_code == 400 and "sent 2 times" in twice.json()["error"]["message"]
        short = client.post(PATH, content=body, headers={"X-AutoSync-Signature": sign(body)[:-1]})
        assert short.status_code == 403 and "64 lowercase hex" in short.json()["error"]["message"]
        assert client.get("/nowhere").status_code == 404
        assert client.get(PATH).status_code == 405
        refused = client.get("/metrics").json()["refused"]
    assert refused == {"repeated_signature": 1, "malformed_signature": 1, "not_found": 1, "method_not_allowed": 1}
    assert body.decode() not in str(store.event_ids())


def test_webhooks_full_write_queue_is_503_with_retry_after(store, monkeypatch):
    limits = ReceiverLimits(max_pending_writes=1, retry_after_seconds=7)
    app = create_app(SECRET, store, None, limits=limits)
    release = threading.Event()
    real_insert_many = store.insert_many

    def slow_insert_many(events):
        release.wait(10)
        return real_insert_many(events)

    monkeypatch.setattr(store, "insert_many", slow_insert_many)
    with TestClient(app) as client:
        results = {}
        # One delivery is being written (held), one waits in the queue: the third finds it full.
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, client.post(
            PATH, content=envelope(f"evt_q{i}"), headers={"X-AutoSync-Signature": sign(envelope(f"evt_q{i}"))})))
            for i in range(2)]
        for thread in threads:
            thread.start()
            time.sleep(0.3)
        deadline = time.monotonic() + 10
        while app.state.writer.pending() < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        third = client.post(PATH, content=envelope("evt_q2"), headers={"X-AutoSync-Signature": sign(envelope("evt_q2"))})
        release.set()
        for thread in threads:
            thread.join(10)
    assert third.status_code == 503 and third.headers["Retry-After"] == "7"
    assert third.json()["error"]["code"] == "overloaded"
    assert {results[0].status_code, results[1].status_code} == {200}


@contextmanager
def guarded_server(store, limits):
    metrics = ReceiverMetrics()
    app = create_app(SECRET, store, None, limits=limits, metrics=metrics)
    with serve_in_thread(lambda port: uvicorn_config(app, "127.0.0.1", port, limits, metrics, log_level="warning")) as port:
        yield port, metrics


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = conn.recv(4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_webhooks_slow_headers_slow_body_and_huge_headers_are_cut_off(store):
    limits = ReceiverLimits(header_timeout_seconds=0.5, body_timeout_seconds=0.5, max_header_bytes=2048)
    with guarded_server(store, limits) as (port, metrics):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow_head:
            slow_head.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n")  # and nothing more
            assert _read_all(slow_head).startswith(b"HTTP/1.1 408")
        body = envelope("evt_slow")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow_body:
            slow_body.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                              f"X-AutoSync-Signature: {sign(body)}\r\n\r\n".encode() + body[:10])
            answer = _read_all(slow_body)
            assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
        with socket.create_connection(("127.0.0.1", port), timeout=10) as huge:
            huge.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 4000 + b"\r\n\r\n")
            assert _read_all(huge).startswith(b"HTTP/1.1 431")
        refused = metrics.snapshot()["refused"]
    assert refused["header_timeout"] == 1 and refused["request_timeout"] == 1 and refused["headers_too_large"] == 1
    assert "evt_slow" not in store.event_ids()


def test_webhooks_sync_in_child_process_reports_its_failure(tmp_path):
    from pipelines.engine import SyncFailed

    from pipelines.engine import Target

    # A destination the engine refuses: the child exits 2, and the receiver's thread gets an error.
    with pytest.raises(SyncFailed, match="exit 2"):
        sync_touched({"customers"}, {1}, SyncOptions(Target(destination="no_such_warehouse"), in_child_process=True))


def test_webhooks_writer_answers_each_delivery_of_a_batch(store):
    from pipelines.webhooks import EventWriter

    writer = EventWriter(store, max_pending=10)
    first = WebhookEvent.from_body(envelope("evt_w1"))
    futures: list[Future] = [writer.submit(event) for event in (first, first, WebhookEvent.from_body(envelope("evt_w2")))]
    writer.stop(timeout=30)
    assert [future.result(timeout=30) for future in futures] == [True, False, True]


def test_webhooks_connections_over_the_limit_get_503_with_retry_after(store):
    limits = ReceiverLimits(max_connections=2, header_timeout_seconds=5)
    with guarded_server(store, limits) as (port, metrics):
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        try:
            time.sleep(0.2)  # both accepted: the limit is reached
            with socket.create_connection(("127.0.0.1", port), timeout=10) as third:
                third.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = _read_all(third)
        finally:
            for conn in idle:
                conn.close()
    assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: 5" in answer.lower()
    assert metrics.snapshot()["refused"]["over_capacity"] == 1

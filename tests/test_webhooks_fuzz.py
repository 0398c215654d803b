"""Property-based fuzz of what strangers can send the receiver: no 5xx, no crash, and nothing
stored that was not a validly signed AutoSync envelope.

Two layers: the app in-process (any body, any signature header, repeated headers, odd extra
headers), and raw bytes for the request line and headers against a real uvicorn with the
receiver's protocol (header size cap and timeouts), where the HTTP parser itself is exposed.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from pipelines.webhooks import ReceiverLimits, ReceiverMetrics, WebhookEvent, create_app, duckdb_store
from pipelines.webhooks.envelope import InvalidEnvelope
from pipelines.webhooks.server import uvicorn_config
from server_helpers import serve_in_thread

SECRET = "whsec_fuzz_" + "z" * 24
PATH = "/webhooks/autosync"
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def sign(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
timestamps = st.sampled_from(["2025-03-01T10:00:00Z", "2025-03-01T10:00:00", "0001-01-01T00:00:00+05:00",
                              "yesterday", "", "9999-12-31T23:59:59-01:00"])
envelopes = st.fixed_dictionaries({
    "id": st.one_of(st.text(max_size=300), json_values),
    "event": st.one_of(st.sampled_from(["workorder.updated", "payment.received", "vehicle.updated", "x", "."]),
                       st.text(max_size=30), json_values),
    "created_at": st.one_of(timestamps, json_values),
    "shop_id": st.one_of(st.integers(min_value=-(2**70), max_value=2**70), json_values),
    "data": st.one_of(st.fixed_dictionaries({"id": json_values, "updated_at": st.one_of(timestamps, json_values)}),
                      json_values),
})
bodies = st.one_of(
    st.binary(max_size=300),
    envelopes.map(lambda e: json.dumps(e).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    envelopes.map(lambda e: json.dumps(e).encode("utf-16")),
)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
signatures = st.sampled_from(["valid", "none", "empty", "upper", "twice", "random", "latin1"])


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    store = duckdb_store(str(tmp_path_factory.mktemp("fuzz") / "warehouse.duckdb"))
    app = create_app(SECRET, store, lambda resources, shops: None, debounce_seconds=60)
    stored_ids: set[str] = set()
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client, store, stored_ids
    # Exactly the ids of the accepted deliveries are in the table, each once.
    assert sorted(store.event_ids()) == sorted(stored_ids)


def _is_valid_delivery(body: bytes) -> bool:
    try:
        WebhookEvent.from_body(body)
    except InvalidEnvelope:
        return False
    return True


@FUZZ
@given(body=bodies, signature=signatures, random_sig=header_text,
       extra=st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True), header_text), max_size=4))
def test_webhooks_fuzz_no_5xx_and_only_valid_signed_envelopes_stored(fuzz_app, body, signature, random_sig, extra):
    client, store, stored_ids = fuzz_app
    headers = [(name, value) for name, value in extra if name.lower() not in ("content-length", "transfer-encoding", "host")]
    if signature == "valid":
        headers.append(("X-AutoSync-Signature", sign(body)))
    elif signature == "empty":
        headers.append(("X-AutoSync-Signature", ""))
    elif signature == "upper":
        headers.append(("X-AutoSync-Signature", sign(body).upper()))
    elif signature == "twice":
        headers += [("X-AutoSync-Signature", sign(body))] * 2
    elif signature == "random":
        headers.append(("X-AutoSync-Signature", random_sig))
    elif signature == "latin1":
        headers.append(("X-AutoSync-Signature", "é".encode("latin-1") * 64))
    # Counted by the app rather than read from the table per example: opening the DuckDB file
    # twice per example would make this fuzz take minutes. The table is checked at the end.
    metrics = client.app.state.metrics
    before = metrics.snapshot()["outcomes"].get("stored", 0)
    response = client.post(PATH, content=body, headers=headers)
    assert response.status_code < 500, response.text
    accepted = response.status_code == 200
    if accepted:
        assert signature == "valid" and _is_valid_delivery(body)
        stored_ids.add(json.loads(body)["id"])
    else:
        assert 400 <= response.status_code < 500
        assert response.json()["success"] is False and response.json()["error"]["message"]
        assert metrics.snapshot()["outcomes"].get("stored", 0) == before
    if signature == "valid" and _is_valid_delivery(body):
        assert accepted, response.text


@contextmanager
def _guarded_server(tmp_path):
    # Short timeouts: a fuzzed head that never ends waits for the header timeout.
    limits = ReceiverLimits(header_timeout_seconds=0.3, body_timeout_seconds=0.3, max_header_bytes=4096)
    metrics = ReceiverMetrics()
    store = duckdb_store(str(tmp_path / "raw.duckdb"))
    app = create_app(SECRET, store, None, limits=limits, metrics=metrics)
    with serve_in_thread(lambda port: uvicorn_config(app, "127.0.0.1", port, limits, metrics, log_level="warning")) as port:
        yield port, store


def _exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            conn.sendall(raw)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close first (431, 400): its answer, if any, is below
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
    return b"".join(chunks)


header_bytes = st.binary(max_size=60) | st.sampled_from([b"\x00", b"\r", b"\n", b":", b" ", b"\xff", b"\r\n\r\n"])
request_heads = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda method, target, lines, body: method + b" " + target + b" HTTP/1.1\r\nHost: x\r\n"
              + b"".join(n + b": " + v + b"\r\n" for n, v in lines) + b"\r\n" + body,
              st.sampled_from([b"POST", b"GET", b"PUT", b"P\x00ST", b""]),
              st.sampled_from([PATH.encode(), b"/", b"*", b"/healthz", PATH.encode() + b"?x=\xff"]),
              st.lists(st.tuples(st.sampled_from([b"X-AutoSync-Signature", b"Content-Length", b"Transfer-Encoding",
                                                  b"Expect", b"Connection", b"X-A"]), header_bytes), max_size=6),
              st.binary(max_size=100)),
    st.just(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 8000 + b"\r\n\r\n"),
)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=request_heads)
def test_webhooks_fuzz_raw_request_bytes_never_5xx(raw, tmp_path_factory):
    port, store = _RAW_SERVER["port"], _RAW_SERVER["store"]
    answer = _exchange(port, raw)
    if answer.startswith(b"HTTP/1.1 "):
        status = int(answer.split()[1])
        assert status < 500, answer[:300]
    assert store.count() == 0  # no request here carries a valid signature


_RAW_SERVER: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _raw_server(tmp_path_factory):
    with _guarded_server(tmp_path_factory.mktemp("raw")) as (port, store):
        _RAW_SERVER.update(port=port, store=store)
        yield
        # Still serving after every fuzzed request.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert conn.recv(100).startswith(b"HTTP/1.1 200")

"""The receiver behind a real uvicorn socket; with the emulator, its real deliveries end to end."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from pipelines.webhooks import DuckDBWebhookEventStore, create_app

SECRET = "whsec_e2e_" + "s" * 24
PATH = "/webhooks/autosync"


@contextmanager
def serve(app):
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port in a thread; yield its root URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, resources, shop_ids):
        self.calls.append((set(resources), set(shop_ids)))


def test_webhooks_over_a_real_socket(tmp_path):
    store = DuckDBWebhookEventStore(str(tmp_path / "warehouse.duckdb"))
    recorder = Recorder()
    app = create_app(SECRET, store, recorder, debounce_seconds=0.05)
    body = json.dumps({"id": "evt_sock", "event": "appointment.created", "created_at": "2025-03-01T10:00:00Z",
                       "shop_id": 5, "data": {"id": 3, "updated_at": "2025-03-01T10:00:00Z"}}).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    with serve(app) as root_url:
        with httpx.Client(base_url=root_url, timeout=10) as http:
            assert http.post(PATH, content=body, headers={"X-AutoSync-Signature": signature}).status_code == 200
            assert http.post(PATH, content=body, headers={"X-AutoSync-Signature": signature}).json()["duplicate"]
            assert http.post(PATH, content=body, headers={"X-AutoSync-Signature": "0" * 64}).status_code == 403
        assert app.state.batcher.flush(timeout=10)
    assert store.event_ids() == ["evt_sock"]
    assert recorder.calls == [({"appointments"}, {5})]

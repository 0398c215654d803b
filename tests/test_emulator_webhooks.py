"""Webhook subscriptions and signed deliveries, with retries."""
from __future__ import annotations

import hashlib
import hmac
import http.server
import threading

import orjson
import pytest

from autosync_emulator import Emulator
from emulator_helpers import Client, assert_error_envelope, wait_until


class Receiver:
    """A local HTTP endpoint that records deliveries and fails the first `fail_first` of them."""

    def __init__(self, fail_first: int = 0):
        self.received: list[tuple[dict, bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    receiver.received.append((dict(self.headers), body))
                    failing = len(receiver.received) <= receiver.fail_first
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [orjson.loads(body) for _headers, body in list(self.received)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def emu():
    with Emulator(seed=8, shops=2, work_orders=20, webhook_retry_base_seconds=0.05) as e:
        yield e


def settled(emu) -> None:
    """Wait until the emulator has nothing left to deliver (no due, scheduled or in-flight
    attempt): only then are exact counts of deliveries meaningful."""
    wait_until(lambda: emu.core.webhooks.pending() == 0, what="webhook deliveries to settle")


def test_subscription_crud(emu):
    c = Client(emu)
    r = c.post("/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["customer.created"], "secret": "whsec_test_secret"})
    assert r.status_code == 201, r.text
    hook = r.json()["data"]
    assert "secret" not in hook and hook["active"] is True
    generated = c.post("/webhooks", json={"url": "https://example.com/h", "events": ["payment.received"]}).json()["data"]
    assert generated["secret"].startswith("whsec_")  # shown once
    listed = c.get("/webhooks").json()
    assert {w["id"] for w in listed["data"]} == {hook["id"], generated["id"]}
    assert all("secret" not in w for w in listed["data"])
    assert c.get(f"/webhooks/{hook['id']}").json()["data"] == hook
    assert c.delete(f"/webhooks/{hook['id']}").status_code == 204
    assert_error_envelope(c.get(f"/webhooks/{hook['id']}"), 404, "not_found")
    for bad, field in (({"url": "ftp://x", "events": ["customer.created"]}, "url"),
                       ({"url": "http://x.com", "events": []}, "events"),
                       ({"url": "http://x.com", "events": ["nope"]}, "events"),
                       ({"url": "http://x.com", "events": ["customer.created"], "secret": "short"}, "secret")):
        assert assert_error_envelope(c.post("/webhooks", json=bad), 422)["field"] == field
    # another credential does not see these subscriptions
    assert Client(emu, emu.create_api_key()).get("/webhooks").json()["data"] == []


def test_deliveries_are_signed_and_carry_the_object(emu):
    receiver = Receiver()
    try:
        c = Client(emu)
        secret = "whsec_signing_secret"
        c.post("/webhooks", json={"url": receiver.url, "events": ["customer.created", "customer.updated"], "secret": secret})
        cust = c.post("/shops/1/customers", json={"first_name": "Ada", "last_name": "Lovelace"}).json()["data"]
        c.patch(f"/shops/1/customers/{cust['id']}", json={"notes": "hello"})
        c.delete(f"/shops/1/customers/{cust['id']}")  # hard delete: no webhook
        settled(emu)
        assert len(receiver.received) == 2
        events = []
        for headers, body in receiver.received:
            expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            assert headers["X-AutoSync-Signature"] == expected
            events.append(orjson.loads(body))
        assert [e["event"] for e in events] == ["customer.created", "customer.updated"]
        assert events[0]["data"] == cust and events[0]["shop_id"] == 1 and events[0]["id"].startswith("evt_")
        assert events[1]["data"]["notes"] == "hello"
        assert events[0]["created_at"] == emu.clock
    finally:
        receiver.close()


def test_failed_deliveries_are_retried(emu):
    receiver = Receiver(fail_first=2)
    try:
        c = Client(emu)
        c.post("/webhooks", json={"url": receiver.url, "events": ["customer.created"], "secret": "whsec_retry_secret"})
        c.post("/shops/1/customers", json={"first_name": "Re", "last_name": "Try"})
        settled(emu)
        assert len(receiver.received) == 3
        assert len({orjson.loads(b)["id"] for _h, b in receiver.received}) == 1  # same event id each time
        log = [d for d in emu.webhook_deliveries() if d["event"] == "customer.created"]
        assert [d["outcome"] for d in log][:3] == [500, 500, 204]
        assert [d["attempt"] for d in log][:3] == [1, 2, 3]
    finally:
        receiver.close()


def test_unreachable_endpoint_gives_up_after_five_retries(emu):
    c = Client(emu)
    c.post("/webhooks", json={"url": "http://127.0.0.1:9/nothing", "events": ["customer.created"], "secret": "whsec_gives_up"})
    c.post("/shops/1/customers", json={"first_name": "No", "last_name": "One"})
    settled(emu)
    attempts = emu.webhook_deliveries()
    assert [d["attempt"] for d in attempts] == [1, 2, 3, 4, 5, 6]
    assert all(str(d["outcome"]).startswith("error") for d in attempts)


def test_activity_fires_webhooks_for_its_events(emu):
    receiver = Receiver()
    try:
        c = Client(emu)
        c.post("/webhooks", json={"url": receiver.url, "secret": "whsec_activity",
                                  "events": ["workorder.created", "workorder.updated", "workorder.completed",
                                             "workorder.invoiced", "payment.received", "customer.created",
                                             "appointment.created", "inspection.completed", "inventory.low_stock"]})
        emu.advance(hours=12)
        settled(emu)
        kinds = {e["event"] for e in receiver.events()}
        assert {"workorder.created", "workorder.updated", "customer.created", "payment.received"} <= kinds
        sample = next(orjson.loads(b) for _h, b in receiver.received if orjson.loads(b)["event"] == "workorder.created")
        assert "jobs" in sample["data"] and "payments" in sample["data"]
    finally:
        receiver.close()


def test_api_writes_fire_the_documented_events(emu):
    receiver = Receiver()
    try:
        c = Client(emu)
        from autosync_emulator.webhooks import EVENTS
        everything = c.post("/webhooks", json={"url": receiver.url, "events": list(EVENTS), "secret": "whsec_all_events"}).json()["data"]
        truth = emu.truth()
        part = next(p for p in truth["objects"]["inventory"] if p["shop_id"] == 1)
        c.patch(f"/shops/1/inventory/{part['id']}", json={"quantity_on_hand": part["reorder_point"] + 5})
        c.patch(f"/shops/1/inventory/{part['id']}", json={"quantity_on_hand": 0, "reorder_point": 3})
        cust = c.post("/shops/1/customers", json={"first_name": "Eve", "last_name": "Nts"}).json()["data"]
        veh = c.post("/shops/1/vehicles", json={"customer_id": cust["id"], "year": 2020, "make": "Ford", "model": "Escape"}).json()["data"]
        wo = c.post("/shops/1/workorders", json={"customer_id": cust["id"], "vehicle_id": veh["id"],
                                                 "jobs": [{"name": "Diag", "line_items": [{"type": "labor", "hours": 1}]}]}).json()["data"]
        for status in ("in_progress", "completed", "invoiced"):
            c.patch(f"/shops/1/workorders/{wo['id']}/status", json={"status": status})
        pay = c.post("/shops/1/payments", json={"work_order_id": wo["id"], "amount": 10, "method": "cash"}).json()["data"]
        c.post(f"/shops/1/payments/{pay['id']}/refunds", json={"amount": 1})
        c.post("/shops/1/appointments", json={"customer_id": cust["id"], "starts_at": "2025-07-01T09:00:00Z"})
        expected = {"inventory.low_stock", "customer.created", "workorder.created", "workorder.updated",
                    "workorder.completed", "workorder.invoiced", "payment.received", "payment.refunded", "appointment.created"}
        settled(emu)
        assert expected <= {e["event"] for e in receiver.events()}
        low = [orjson.loads(b) for _h, b in receiver.received if orjson.loads(b)["event"] == "inventory.low_stock"]
        assert len(low) == 1 and low[0]["data"]["quantity_on_hand"] == 0
        c.delete(f"/webhooks/{everything['id']}")
        c.post("/webhooks", json={"url": receiver.url, "events": ["inspection.completed", "inspection.approved"],
                                  "secret": "whsec_inspections"})
        emu.advance(hours=24)  # the activity sends and answers inspections
        settled(emu)
        assert {"inspection.completed", "inspection.approved"} <= {e["event"] for e in receiver.events()}
    finally:
        receiver.close()

"""Contract tests of the emulator's writes: every write endpoint, its validation and rules."""
from __future__ import annotations

import pytest
import requests

from autosync_emulator import Emulator
from emulator_helpers import Client, assert_error_envelope, cents, check_world


@pytest.fixture
def emu():
    """An emulator per test (no test sees another's writes); its world stays consistent after them."""
    with Emulator(seed=21, shops=2, work_orders=30) as e:
        yield e
        check_world(e.truth())


@pytest.fixture
def client(emu):
    return Client(emu)


def make_customer(client, shop=1, **extra):
    r = client.post(f"/shops/{shop}/customers", json={"first_name": "Mike", "last_name": "Rodriguez", **extra})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def make_vehicle(client, customer_id, shop=1, **extra):
    r = client.post(f"/shops/{shop}/vehicles", json={"customer_id": customer_id, "year": 2019, "make": "Honda",
                                                     "model": "Civic", **extra})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def part_id(emu, shop=1):
    return next(p["id"] for p in emu.truth()["objects"]["inventory"] if p["shop_id"] == shop)


def make_work_order(client, emu, shop=1):
    cust = make_customer(client, shop)
    veh = make_vehicle(client, cust["id"], shop)
    r = client.post(f"/shops/{shop}/workorders", json={
        "customer_id": cust["id"], "vehicle_id": veh["id"], "notes": "test",
        "jobs": [{"name": "Brakes", "line_items": [
            {"type": "labor", "hours": 1.25, "rate": 99.99},
            {"type": "part", "part_id": part_id(emu, shop), "quantity": 2},
            {"type": "fee", "description": "Shop supplies", "unit_price": 4.95, "taxable": False}]}]})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def test_customer_create_patch_delete(client, emu):
    cust = make_customer(client, email="mike@example.com", phone="(555) 123-4567", is_business=True,
                         company_name="Mike's Fleet", address={"street": "1 Main", "city": "Akron", "state": "OH", "zip": "44301"})
    assert cust["created_at"] == cust["updated_at"] == emu.clock
    assert client.get(f"/shops/1/customers/{cust['id']}").json()["data"] == cust
    emu.advance(seconds=5)
    r = client.patch(f"/shops/1/customers/{cust['id']}", json={"notes": "VIP"})
    assert r.status_code == 200
    patched = r.json()["data"]
    assert patched["notes"] == "VIP" and patched["updated_at"] > cust["updated_at"] and patched["first_name"] == "Mike"
    assert client.delete(f"/shops/1/customers/{cust['id']}").status_code == 204
    assert_error_envelope(client.get(f"/shops/1/customers/{cust['id']}"), 404, "not_found")
    assert cust["id"] in emu.truth()["deleted"]["customers"]
    assert_error_envelope(client.delete(f"/shops/1/customers/{cust['id']}"), 404, "not_found")


@pytest.mark.parametrize("body,field", [
    ({"last_name": "x"}, "first_name"), ({"first_name": "", "last_name": "x"}, "first_name"),
    ({"first_name": "a", "last_name": "b", "email": "not-an-email"}, "email"),
    ({"first_name": "a", "last_name": "b", "is_business": "yes"}, "is_business"),
    ({"first_name": "a", "last_name": "b", "address": "here"}, "address"),
    ({"first_name": "a", "last_name": "b", "favourite": 1}, "favourite"),
])
def test_customer_validation(client, body, field):
    err = assert_error_envelope(client.post("/shops/1/customers", json=body), 422, "validation_error")
    assert err["field"] == field


def test_bad_json_bodies_are_400(client):
    assert_error_envelope(client.post("/shops/1/customers", data="{nope", headers={"Content-Type": "application/json"}),
                          400, "invalid_request")
    assert_error_envelope(client.post("/shops/1/customers", json=[1, 2]), 400, "invalid_request")
    assert_error_envelope(client.post("/shops/1/customers"), 400, "invalid_request")


def test_customer_with_vehicles_cannot_be_deleted(client):
    cust = make_customer(client)
    make_vehicle(client, cust["id"])
    assert_error_envelope(client.delete(f"/shops/1/customers/{cust['id']}"), 409, "conflict")


def test_vehicle_create_patch_and_vin_rules(client, emu):
    cust = make_customer(client)
    vin = "1HGCM82633A004352"
    veh = make_vehicle(client, cust["id"], vin=vin, mileage=1000)
    assert veh["vin"] == vin
    assert_error_envelope(client.post("/shops/1/vehicles", json={"customer_id": cust["id"], "year": 2019, "make": "Honda",
                                                                 "model": "Civic", "vin": vin}), 409, "conflict")
    err = assert_error_envelope(client.post("/shops/1/vehicles", json={"customer_id": cust["id"], "year": 2019, "make": "H",
                                                                       "model": "C", "vin": "1HGCM82633A004353"}), 422)
    assert err["field"] == "vin"
    err = assert_error_envelope(client.post("/shops/1/vehicles", json={"customer_id": 10**9, "year": 2019, "make": "H", "model": "C"}), 422)
    assert err["field"] == "customer_id"
    r = client.patch(f"/shops/1/vehicles/{veh['id']}", json={"mileage": 2000})
    assert r.status_code == 200 and r.json()["data"]["mileage"] == 2000
    assert_error_envelope(client.patch("/shops/1/vehicles/999999", json={"mileage": 1}), 404)


def test_work_order_lifecycle_and_money(client, emu):
    wo = make_work_order(client, emu)
    assert wo["status"] == "draft" and wo["started_at"] is None
    lines = wo["jobs"][0]["line_items"]
    assert cents(lines[0]["total"]) == 12499  # 1.25 h x 99.99 = 124.9875 -> 124.99
    assert cents(wo["subtotal"]) == sum(cents(line["total"]) for line in lines)
    r = client.post(f"/shops/1/workorders/{wo['id']}/jobs", json={"name": "Wipers", "line_items": [{"type": "labor", "hours": 0.2}]})
    assert r.status_code == 201 and r.json()["data"]["status"] == "pending"
    assert_error_envelope(client.patch(f"/shops/1/workorders/{wo['id']}/status", json={"status": "invoiced"}), 409, "conflict")
    err = assert_error_envelope(client.patch(f"/shops/1/workorders/{wo['id']}/status", json={"status": "done"}), 422)
    assert err["field"] == "status"
    assert_error_envelope(client.post("/shops/1/payments", json={"work_order_id": wo["id"], "amount": 1, "method": "cash"}), 409)
    for status in ("in_progress", "waiting_parts", "in_progress", "completed", "invoiced"):
        emu.advance(seconds=60)
        r = client.patch(f"/shops/1/workorders/{wo['id']}/status", json={"status": status})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["status"] == status
    final = client.get(f"/shops/1/workorders/{wo['id']}").json()["data"]
    assert final["started_at"] < final["completed_at"] < final["invoiced_at"]
    assert all(j["status"] == "completed" for j in final["jobs"])
    assert_error_envelope(client.post(f"/shops/1/workorders/{wo['id']}/jobs", json={"name": "late"}), 409, "conflict")
    r = client.patch(f"/shops/1/work-orders/{wo['id']}", json={"notes": "picked up"})
    assert r.status_code == 200 and r.json()["data"]["notes"] == "picked up"


def test_payments_partial_refund_and_limits(client, emu):
    wo = make_work_order(client, emu)
    client.patch(f"/shops/1/workorders/{wo['id']}/status", json={"status": "in_progress"})
    total = client.get(f"/shops/1/workorders/{wo['id']}").json()["data"]["total"]
    r = client.post("/shops/1/payments",
                    json={"work_order_id": wo["id"], "amount": 20, "method": "card", "card_number": "4242424242424242"})
    assert r.status_code == 201, r.text
    pay = r.json()["data"]
    assert pay["status"] == "succeeded" and pay["last4"] == "4242" and pay["refunds"] == []
    declined = client.post("/shops/1/payments", json={"work_order_id": wo["id"], "amount": 5, "method": "card",
                                                      "card_number": "4000000000000002"}).json()["data"]
    assert declined["status"] == "failed"
    pending = client.post("/shops/1/payments", json={"work_order_id": wo["id"], "amount": 5, "method": "text_to_pay"}).json()["data"]
    assert pending["status"] == "pending"
    after = client.get(f"/shops/1/workorders/{wo['id']}").json()["data"]
    assert cents(after["amount_paid"]) == 2000 and cents(after["balance_due"]) == cents(total) - 2000
    err = assert_error_envelope(client.post("/shops/1/payments", json={"work_order_id": wo["id"], "amount": total, "method": "cash"}), 422)
    assert err["field"] == "amount"
    emu.advance(seconds=30)
    r = client.post(f"/shops/1/payments/{pay['id']}/refunds", json={"amount": 7.5, "reason": "goodwill"})
    assert r.status_code == 201
    refunded = client.get(f"/shops/1/payments/{pay['id']}").json()["data"]
    assert cents(refunded["refunded_amount"]) == 750 and len(refunded["refunds"]) == 1
    assert refunded["updated_at"] > pay["updated_at"]
    assert_error_envelope(client.post(f"/shops/1/payments/{pay['id']}/refunds", json={"amount": 100}), 422)
    assert_error_envelope(client.post(f"/shops/1/payments/{declined['id']}/refunds", json={"amount": 1}), 409, "conflict")
    wo_now = client.get(f"/shops/1/workorders/{wo['id']}").json()["data"]
    assert cents(wo_now["amount_paid"]) == 1250
    assert [p["id"] for p in wo_now["payments"]] == [pay["id"], declined["id"], pending["id"]]
    for body, field in (({"work_order_id": wo["id"], "amount": 1, "method": "bitcoin"}, "method"),
                        ({"work_order_id": wo["id"], "amount": 0.001, "method": "cash"}, "amount"),
                        ({"work_order_id": wo["id"], "amount": -5, "method": "cash"}, "amount"),
                        ({"amount": 1, "method": "cash"}, "work_order_id")):
        assert assert_error_envelope(client.post("/shops/1/payments", json=body), 422)["field"] == field


def test_appointments_and_inventory(client, emu):
    cust = make_customer(client)
    veh = make_vehicle(client, cust["id"])
    r = client.post("/shops/1/appointments", json={"customer_id": cust["id"], "vehicle_id": veh["id"],
                                                   "starts_at": "2025-07-01T09:00:00Z", "title": "Oil change"})
    assert r.status_code == 201, r.text
    appt = r.json()["data"]
    assert appt["status"] == "scheduled" and appt["ends_at"] == "2025-07-01T10:00:00Z"
    err = assert_error_envelope(client.post("/shops/1/appointments", json={"customer_id": cust["id"], "starts_at": "soon"}), 422)
    assert err["field"] == "starts_at"
    err = assert_error_envelope(client.post("/shops/1/appointments", json={
        "customer_id": cust["id"], "starts_at": "2025-07-01T09:00:00Z", "ends_at": "2025-07-01T08:00:00Z"}), 422)
    assert err["field"] == "ends_at"
    pid = part_id(emu)
    r = client.patch(f"/shops/1/inventory/{pid}", json={"quantity_on_hand": 3, "reorder_point": 5})
    assert r.status_code == 200 and r.json()["data"]["quantity_on_hand"] == 3
    r = client.patch(f"/shops/1/inventory/{pid}", json={"adjustment": 4})
    assert r.json()["data"]["quantity_on_hand"] == 7
    assert assert_error_envelope(client.patch(f"/shops/1/inventory/{pid}", json={"adjustment": -100}), 422)["field"] == "adjustment"


def test_writes_need_write_scopes(emu):
    cid, secret = emu.create_oauth_client()
    token = requests.post(emu.base_url + "/oauth/token", data={"grant_type": "client_credentials", "scope": "customers:read payments:read"},
                          auth=(cid, secret)).json()["access_token"]
    c = Client(emu, token)
    for method, path, scope in (("POST", "/shops/1/customers", "customers:write"), ("POST", "/shops/1/vehicles", "vehicles:write"),
                                ("POST", "/shops/1/workorders", "workorders:write"), ("POST", "/shops/1/payments", "payments:charge"),
                                ("PATCH", "/shops/1/inventory/1", "inventory:write"), ("POST", "/webhooks", "webhooks:manage")):
        err = assert_error_envelope(c.request(method, path, json={}), 403, "insufficient_scope")
        assert scope in err["message"]


def test_unsupported_write_is_405_envelope(client):
    assert_error_envelope(client.post("/shops/1/employees", json={}), 405, "invalid_request")
    assert_error_envelope(client.delete("/shops/1/workorders/1"), 405, "invalid_request")
    assert_error_envelope(client.request("PUT", "/shops/1/customers/1", json={}), 405)


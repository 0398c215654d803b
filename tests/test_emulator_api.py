"""Contract tests of the emulator's read API: every resource, paging, sorting, filters, auth."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import pytest
import requests

from autosync_emulator import Emulator
from emulator_helpers import Client, FakeClock, assert_error_envelope

COLLECTIONS = {"customers": "customers", "vehicles": "vehicles", "workorders": "work_orders",
               "payments": "payments", "inspections": "inspections", "appointments": "appointments",
               "inventory": "inventory", "employees": "employees"}


@pytest.fixture(scope="module")
def emu():
    with Emulator(seed=7, shops=2, work_orders=60) as e:
        yield e


@pytest.fixture(scope="module")
def truth(emu):
    return emu.truth()


@pytest.fixture(scope="module")
def client(emu):
    return Client(emu)


def by_shop(truth, resource, shop_id):
    return [o for o in truth["objects"][resource] if o["shop_id"] == shop_id]


def test_shops_list_and_get(client, truth):
    r = client.get("/shops")
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True
    assert sorted(s["id"] for s in body["data"]) == [s["id"] for s in truth["objects"]["shops"]]
    shop = truth["objects"]["shops"][0]
    got = client.get(f"/shops/{shop['id']}").json()["data"]
    assert got == shop
    assert set(got["settings"]) == {"tax_rate", "labor_rate"}
    assert_error_envelope(client.get("/shops/999"), 404, "not_found")


@pytest.mark.parametrize("path,resource", sorted(COLLECTIONS.items()))
def test_every_resource_lists_and_gets_what_truth_holds(client, truth, path, resource):
    for shop in truth["objects"]["shops"]:
        expected = by_shop(truth, resource, shop["id"])
        rows = client.list_all(f"/shops/{shop['id']}/{path}", sort="id", order="asc")
        assert [r["id"] for r in rows] == [o["id"] for o in expected]
        first = expected[0]
        detail = client.get(f"/shops/{shop['id']}/{path}/{first['id']}").json()["data"]
        assert detail == first
        # a list row is the detail minus the embedded children
        row = rows[0]
        assert {k: v for k, v in first.items() if k not in ("jobs", "payments", "items")} == row
    # an object is reachable only under its own shop
    first_of_shop1 = by_shop(truth, resource, 1)[0]
    assert_error_envelope(client.get(f"/shops/2/{path}/{first_of_shop1['id']}"), 404, "not_found")


def test_work_order_detail_embeds_jobs_line_items_and_payments(client, truth):
    wo = next(w for w in truth["objects"]["work_orders"] if w["payments"] and w["jobs"])
    detail = client.get(f"/shops/{wo['shop_id']}/workorders/{wo['id']}").json()["data"]
    assert detail["jobs"][0]["line_items"]
    pay_ids = [p["id"] for p in truth["objects"]["payments"] if p["work_order_id"] == wo["id"]]
    assert [p["id"] for p in detail["payments"]] == pay_ids
    assert all("refunds" in p for p in detail["payments"])
    row = client.get(f"/shops/{wo['shop_id']}/workorders", params={"per_page": 100}).json()["data"][0]
    assert "jobs" not in row and "payments" not in row


@pytest.mark.parametrize("alias", ["work-orders", "work_orders"])
def test_work_order_aliases(client, truth, alias):
    shop_id = truth["objects"]["shops"][0]["id"]
    a = client.get(f"/shops/{shop_id}/{alias}", params={"per_page": 7}).json()
    b = client.get(f"/shops/{shop_id}/workorders", params={"per_page": 7}).json()
    assert a == b
    wo_id = b["data"][0]["id"]
    assert client.get(f"/shops/{shop_id}/{alias}/{wo_id}").json() == client.get(f"/shops/{shop_id}/workorders/{wo_id}").json()


def test_pagination_envelope_and_clamp(client, truth):
    shop_id = 1
    total = len(by_shop(truth, "work_orders", shop_id))
    body = client.get(f"/shops/{shop_id}/workorders", params={"per_page": 7, "page": 2}).json()
    assert body["pagination"] == {"page": 2, "per_page": 7, "total": total, "pages": -(-total // 7), "has_more": True}
    last = client.get(f"/shops/{shop_id}/workorders", params={"per_page": 7, "page": -(-total // 7)}).json()
    assert last["pagination"]["has_more"] is False and len(last["data"]) == total - 7 * (total // 7) or len(last["data"]) == 7
    beyond = client.get(f"/shops/{shop_id}/workorders", params={"per_page": 7, "page": 999}).json()
    assert beyond["data"] == [] and beyond["pagination"]["has_more"] is False
    clamped = client.get(f"/shops/{shop_id}/customers", params={"per_page": 1000}).json()
    assert clamped["pagination"]["per_page"] == 100
    default = client.get(f"/shops/{shop_id}/customers").json()
    assert default["pagination"]["per_page"] == 25 and default["pagination"]["page"] == 1


@pytest.mark.parametrize("sort", ["created_at", "updated_at", "id"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorting(client, truth, sort, order):
    expected = by_shop(truth, "work_orders", 1)
    key = (lambda o: o["id"]) if sort == "id" else (lambda o: (o[sort], o["id"]))
    expected = sorted(expected, key=key, reverse=order == "desc")
    rows = client.list_all("/shops/1/workorders", sort=sort, order=order)
    assert [r["id"] for r in rows] == [o["id"] for o in expected]


def test_default_sort_is_created_at_desc(client, truth):
    rows = client.get("/shops/1/customers", params={"per_page": 100}).json()["data"]
    keys = [(r["created_at"], r["id"]) for r in rows]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("field", ["created_after", "updated_after"])
@pytest.mark.parametrize("sort", ["created_at", "updated_at", "id"])
def test_time_filters_are_strict(client, truth, field, sort):
    column = field.replace("_after", "_at")
    objs = by_shop(truth, "work_orders", 1)
    pivot = sorted(o[column] for o in objs)[len(objs) // 2]
    expected = sorted(o["id"] for o in objs if o[column] > pivot)
    rows = client.list_all("/shops/1/workorders", **{field: pivot, "sort": sort})
    assert sorted(r["id"] for r in rows) == expected
    assert all(r[column] != pivot for r in rows)


def test_time_filter_accepts_offsets_and_fractions(client, truth):
    objs = by_shop(truth, "customers", 1)
    pivot = sorted(o["updated_at"] for o in objs)[len(objs) // 3]
    base = client.list_all("/shops/1/customers", updated_after=pivot)
    offset = client.list_all("/shops/1/customers", updated_after=pivot.replace("Z", "+00:00"))
    assert [r["id"] for r in base] == [r["id"] for r in offset]
    fraction = client.list_all("/shops/1/customers", updated_after=pivot.replace("Z", ".5Z"))
    assert [r["id"] for r in fraction] == [r["id"] for r in base]


@pytest.mark.parametrize("path,resource,field", [
    ("workorders", "work_orders", "status"), ("workorders", "work_orders", "customer_id"),
    ("workorders", "work_orders", "vehicle_id"), ("workorders", "work_orders", "technician_id"),
    ("vehicles", "vehicles", "customer_id"), ("vehicles", "vehicles", "make"),
    ("payments", "payments", "work_order_id"), ("inspections", "inspections", "work_order_id"),
    ("inspections", "inspections", "status"), ("customers", "customers", "is_business"),
])
def test_equality_filters(client, truth, path, resource, field):
    objs = by_shop(truth, resource, 1)
    for value in sorted({o[field] for o in objs}, key=str)[:4]:
        param = str(value).lower() if isinstance(value, bool) else value
        rows = client.list_all(f"/shops/1/{path}", **{field: param})
        assert sorted(r["id"] for r in rows) == sorted(o["id"] for o in objs if o[field] == value)


def test_vin_and_search_filters(client, truth):
    vehicle = by_shop(truth, "vehicles", 1)[3]
    rows = client.list_all("/shops/1/vehicles", vin=vehicle["vin"])
    assert [r["id"] for r in rows] == [vehicle["id"]]
    customer = by_shop(truth, "customers", 1)[5]
    rows = client.list_all("/shops/1/customers", search=customer["last_name"].upper())
    assert customer["id"] in [r["id"] for r in rows]
    assert all(customer["last_name"].lower() in (r["last_name"] + (r["company_name"] or "") + (r["email"] or "")).lower()
               or customer["last_name"].lower() in r["first_name"].lower() for r in rows)


def test_all_work_order_statuses_exist(truth):
    assert {w["status"] for w in truth["objects"]["work_orders"]} == {
        "draft", "in_progress", "waiting_parts", "completed", "invoiced"}


@pytest.mark.parametrize("params,field", [
    ({"page": "x"}, "page"), ({"page": "0"}, "page"), ({"per_page": "0"}, "per_page"),
    ({"per_page": "-3"}, "per_page"), ({"sort": "name"}, "sort"), ({"order": "up"}, "order"),
    ({"updated_after": "yesterday"}, "updated_after"), ({"created_after": "2024-13-45"}, "created_after"),
    ({"status": "done"}, "status"), ({"customer_id": "abc"}, "customer_id"),
])
def test_bad_parameters_are_422_with_field(client, params, field):
    err = assert_error_envelope(client.get("/shops/1/workorders", params=params), 422, "validation_error")
    assert err["field"] == field


def test_unknown_routes_are_404_envelopes(client):
    for path in ("/nothing", "/shops/1/nothing", "/shops/abc/customers", "/shops/1/customers/abc"):
        assert_error_envelope(client.get(path), 404, "not_found")
    r = requests.get(client.emu.root_url + "/elsewhere")
    assert_error_envelope(r, 404, "not_found")


def test_rate_limit_and_request_id_headers_on_every_response(client):
    for r in (client.get("/shops"), client.get("/shops/1/nope"), Client(client.emu, "bad").get("/shops"),
              client.get("/shops/1/workorders", params={"page": "x"})):
        for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-Request-Id"):
            assert header in r.headers, (r.status_code, header)
        assert int(r.headers["X-RateLimit-Reset"]) > time.time() - 1


def test_api_keys(emu):
    assert emu.api_key.startswith("sk_sandbox_")
    assert_error_envelope(Client(emu, "").get("/shops"), 401, "unauthorized")
    assert_error_envelope(Client(emu, "sk_sandbox_nope").get("/shops"), 401, "unauthorized")
    live = emu.create_api_key(environment="live")
    err = assert_error_envelope(Client(emu, live).get("/shops"), 401, "unauthorized")
    assert "live" in err["message"] and "sandbox" in err["message"]
    limited = Client(emu, emu.create_api_key(shops=[2]))
    assert [s["id"] for s in limited.get("/shops").json()["data"]] == [2]
    assert_error_envelope(limited.get("/shops/1/customers"), 404, "not_found")
    assert limited.get("/shops/2/customers").status_code == 200


def test_live_emulator_refuses_sandbox_keys():
    with Emulator(seed=1, shops=1, work_orders=3, environment="live") as live:
        assert live.api_key.startswith("sk_live_")
        assert Client(live).get("/shops").status_code == 200
        sandbox_key = live.create_api_key(environment="sandbox")
        err = assert_error_envelope(Client(live, sandbox_key).get("/shops"), 401, "unauthorized")
        assert "sandbox" in err["message"]


def oauth_token(emu, client_id, secret, scope=None, **extra):
    data = {"grant_type": "client_credentials", **extra}
    if scope is not None:
        data["scope"] = scope
    return requests.post(emu.base_url + "/oauth/token", data=data, auth=(client_id, secret), timeout=10)


def test_oauth_client_credentials_and_scopes(emu):
    r = oauth_token(emu, emu.oauth_client_id, emu.oauth_client_secret, "shops:read customers:read")
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 3600
    assert tok["scope"] == "shops:read customers:read"
    c = Client(emu, tok["access_token"])
    assert c.get("/shops").status_code == 200
    assert c.get("/shops/1/customers").status_code == 200
    for path, scope in (("/shops/1/workorders", "workorders:read"), ("/shops/1/inspections", "workorders:read"),
                        ("/shops/1/appointments", "workorders:read"), ("/shops/1/payments", "payments:read"),
                        ("/shops/1/inventory", "inventory:read"), ("/shops/1/employees", "employees:read"),
                        ("/shops/1/vehicles", "vehicles:read")):
        err = assert_error_envelope(c.get(path), 403, "insufficient_scope")
        assert scope in err["message"]
    # no scope asked: every scope granted to the client
    full = oauth_token(emu, emu.oauth_client_id, emu.oauth_client_secret).json()
    assert "payments:read" in full["scope"].split()
    # Basic header built by hand, as the docs show
    basic = base64.b64encode(f"{emu.oauth_client_id}:{emu.oauth_client_secret}".encode()).decode()
    r = requests.post(emu.base_url + "/oauth/token", data="grant_type=client_credentials&scope=shops:read",
                      headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200


def test_oauth_errors(emu):
    assert_error_envelope(oauth_token(emu, emu.oauth_client_id, "wrong"), 401, "unauthorized")
    assert_error_envelope(oauth_token(emu, "nobody", "x"), 401, "unauthorized")
    assert_error_envelope(requests.post(emu.base_url + "/oauth/token", data={"grant_type": "client_credentials"}),
                          401, "unauthorized")
    err = assert_error_envelope(oauth_token(emu, emu.oauth_client_id, emu.oauth_client_secret, grant_type="password"),
                                400, "invalid_request")
    assert err["field"] == "grant_type"
    narrow_id, narrow_secret = emu.create_oauth_client(scopes=["shops:read"])
    err = assert_error_envelope(oauth_token(emu, narrow_id, narrow_secret, "customers:read"), 400, "invalid_request")
    assert "customers:read" in err["message"]
    assert_error_envelope(Client(emu, "at_forged").get("/shops"), 401, "unauthorized")


def test_oauth_client_limited_to_shops(emu):
    cid, secret = emu.create_oauth_client(shops=[1])
    token = oauth_token(emu, cid, secret).json()["access_token"]
    c = Client(emu, token)
    assert [s["id"] for s in c.get("/shops").json()["data"]] == [1]
    assert_error_envelope(c.get("/shops/2/workorders"), 404)


def test_tokens_expire():
    clock = FakeClock()
    with Emulator(seed=3, shops=1, work_orders=3, token_ttl_seconds=1, wall_clock=clock) as e:
        tok = oauth_token(e, e.oauth_client_id, e.oauth_client_secret).json()
        assert tok["expires_in"] == 1
        c = Client(e, tok["access_token"])
        clock.advance(0.9)
        assert c.get("/shops").status_code == 200
        clock.advance(0.1)
        err = assert_error_envelope(c.get("/shops"), 401, "unauthorized")
        assert "expired" in err["message"]


def test_vin_decode(client, truth):
    vehicle = truth["objects"]["vehicles"][0]
    r = client.get(f"/vehicles/decode/{vehicle['vin']}")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["vin"], data["make"], data["model"], data["year"]) == (vehicle["vin"], vehicle["make"], vehicle["model"], vehicle["year"])
    assert set(data) == {"vin", "year", "make", "model", "trim", "engine", "drive_type", "body_style"}
    bad = vehicle["vin"][:8] + ("0" if vehicle["vin"][8] != "0" else "1") + vehicle["vin"][9:]
    assert_error_envelope(client.get(f"/vehicles/decode/{bad}"), 422, "validation_error")
    assert_error_envelope(client.get("/vehicles/decode/SHORT"), 422, "validation_error")


def test_request_log_counts_by_route_and_status(emu, client):
    emu.reset_request_log()
    client.get("/shops/1/workorders")
    client.get("/shops/1/workorders")
    client.get("/shops/1/workorders/1")
    client.get("/shops/1/workorders", params={"page": "x"})
    requests.get(emu.root_url + "/_emulator/truth")
    log = emu.request_log()
    assert log["total"] == 4
    assert log["by_route"]["GET /v1/shops/{shop_id}/workorders"] == {"200": 2, "422": 1}
    assert log["by_route"]["GET /v1/shops/{shop_id}/workorders/{id}"] == {"200": 1}
    assert log["rate_limited"] == 0
    over_http = requests.get(emu.root_url + "/_emulator/requests").json()
    assert over_http == log


def test_control_plane_over_http():
    with Emulator(seed=11, shops=1, work_orders=20) as e:
        root = e.root_url + "/_emulator"
        truth = requests.get(root + "/truth").json()
        assert truth == e.truth()
        assert truth["clock"] == "2025-06-01T12:00:00Z"
        assert set(truth["deleted"]) == set(truth["objects"])
        r = requests.post(root + "/advance", json={"hours": 2})
        assert r.status_code == 200 and r.json()["clock"] == "2025-06-01T14:00:00Z"
        assert requests.get(root + "/clock").json() == {"clock": "2025-06-01T14:00:00Z"}
        assert_error_envelope(requests.post(root + "/advance", json={"hours": -1}), 422)
        settings = requests.patch(root + "/settings", json={"legacy_pagination": True}).json()
        assert settings["legacy_pagination"] is True
        assert_error_envelope(requests.patch(root + "/settings", json={"nope": 1}), 422)
        key = requests.post(root + "/api-keys", json={"shops": [1]}).json()["api_key"]
        assert Client(e, key).get("/shops").status_code == 200
        cid = requests.post(root + "/oauth-clients", json={"scopes": ["shops:read"]}).json()
        assert oauth_token(e, cid["client_id"], cid["client_secret"]).json()["scope"] == "shops:read"
        r = requests.post(root + "/reset", json={"seed": 11})
        assert r.status_code == 200
        assert requests.get(root + "/truth").json()["clock"] == "2025-06-01T12:00:00Z"
        assert Client(e).get("/shops").status_code == 200  # credentials survive a reset


def test_cli_prints_credentials_then_serves(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "autosync_emulator", "--port", "0", "--seed", "5", "--shops", "1",
                             "--work-orders", "10", "--environment", "live", "--rate-limit", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = json.loads(proc.stdout.readline())
        assert set(first) == {"base_url", "api_key", "oauth_client_id", "oauth_client_secret"}
        assert first["api_key"].startswith("sk_live_")
        r = requests.get(first["base_url"] + "/shops", headers={"Authorization": f"Bearer {first['api_key']}"}, timeout=10)
        assert r.status_code == 200
        assert r.headers["X-RateLimit-Limit"] == "50"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_rejects_bad_arguments():
    r = subprocess.run([sys.executable, "-m", "autosync_emulator", "--shops", "0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "error" in r.stderr and "Traceback" not in r.stderr


def test_control_plane_rejects_bad_parameters(emu):
    root = emu.root_url + "/_emulator"
    assert_error_envelope(requests.post(root + "/reset", json={"shops": 0}), 422)
    assert_error_envelope(requests.post(root + "/reset", json={"start": "2025-13-01T00:00:00Z"}), 422)
    assert_error_envelope(requests.post(root + "/reset", json={"colour": "red"}), 422)
    assert_error_envelope(requests.post(root + "/advance", json={"hours": 24 * 500}), 422)
    assert_error_envelope(requests.post(root + "/advance", data="nope"), 400)
    assert_error_envelope(requests.get(root + "/nothing"), 404, "not_found")


def test_cli_rejects_a_bad_start():
    r = subprocess.run([sys.executable, "-m", "autosync_emulator", "--start", "yesterday"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "start must be" in r.stderr and "Traceback" not in r.stderr

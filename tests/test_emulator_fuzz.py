"""Hostile and malformed requests: never a 500 (no fault rule is set), always the envelope.
Also checks that /v1/openapi.json describes what the emulator actually serves."""
from __future__ import annotations

import json
import os
import string

import orjson
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autosync_emulator import Emulator
from emulator_helpers import check_world

SEGMENTS = ["shops", "1", "2", "999999999999999999999", "-1", "0", "customers", "vehicles", "workorders", "work-orders",
            "work_orders", "payments", "inspections", "appointments", "inventory", "employees", "webhooks", "status",
            "jobs", "refunds", "decode", "1HGCM82633A004352", "oauth", "token", "openapi.json", "%00", "..", "é", "",
            "_emulator"]
PARAM_NAMES = ["page", "per_page", "sort", "order", "created_after", "updated_after", "status", "customer_id", "vehicle_id",
               "technician_id", "work_order_id", "is_business", "search", "vin", "make", "role", "active", "method", "zzz"]
HOSTILE = ["", "0", "-1", "1e9", "99999999999999999999999", "NaN", "null", "true", "[]", "{}", "' OR 1=1 --",
           "<script>", "2024-01-15T10:30:00Z", "2024-02-30T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
           "2024-01-15T10:30:00+99:00", "\x00", "é" * 50, "updated_at", "desc", "draft", "a" * 5000]
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) |
                           st.text(max_size=30), lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.sampled_from(["first_name", "last_name", "email", "amount", "method",
                                                            "work_order_id", "customer_id", "vehicle_id", "year", "make",
                                                            "model", "vin", "jobs", "line_items", "type", "hours", "part_id",
                                                            "quantity", "status", "url", "events", "secret", "starts_at",
                                                            "adjustment", "address", "name"]), inner, max_size=6),
                           max_leaves=12)


@pytest.fixture
def emu():
    """An emulator per test; whatever the test sent, its world is still consistent afterwards."""
    with Emulator(seed=13, shops=2, work_orders=15) as e:
        yield e
        check_world(e.truth())


def check_response(r: requests.Response) -> None:
    assert r.status_code != 500, r.text
    assert r.status_code < 500, r.text
    assert "X-Request-Id" in r.headers and "X-RateLimit-Remaining" in r.headers
    if r.status_code == 204:
        assert r.content == b""
        return
    body = orjson.loads(r.content)
    if r.status_code >= 400:
        assert body["success"] is False
        assert body["error"]["status"] == r.status_code
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
        assert body["request_id"] == r.headers["X-Request-Id"]


# more for a deep run: EMULATOR_FUZZ_EXAMPLES=3000 pytest tests/test_emulator_fuzz.py
EXAMPLES = int(os.environ.get("EMULATOR_FUZZ_EXAMPLES", "250"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"]),
       segments=st.lists(st.sampled_from(SEGMENTS) | st.text(string.printable, max_size=12), min_size=0, max_size=6),
       params=st.dictionaries(st.sampled_from(PARAM_NAMES), st.sampled_from(HOSTILE) | st.text(max_size=20), max_size=5),
       auth=st.sampled_from(["key", "none", "garbage", "basic", "live"]),
       body=st.none() | JSON_VALUES.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=64))
def test_hostile_requests_never_500(emu, method, segments, params, auth, body):
    path = "/v1/" + "/".join(s for s in segments if s != "_emulator")
    headers = {"Authorization": {"key": f"Bearer {emu.api_key}", "none": "", "garbage": "Bearer \u00ff\u00fe",
                                 "basic": "Basic !!!", "live": "Bearer sk_live_x"}[auth].encode("latin-1")}
    if body is not None:
        headers["Content-Type"] = "application/json"
    r = requests.request(method, emu.root_url + path, params=params, data=body, headers=headers, timeout=30)
    check_response(r)


@settings(max_examples=max(80, EXAMPLES // 3), deadline=None, suppress_health_check=list(HealthCheck))
@given(body=JSON_VALUES, target=st.sampled_from([("POST", "/shops/1/customers"), ("PATCH", "/shops/1/customers/1"),
                                                 ("POST", "/shops/1/vehicles"), ("POST", "/shops/1/workorders"),
                                                 ("PATCH", "/shops/1/workorders/1/status"), ("POST", "/shops/1/workorders/1/jobs"),
                                                 ("POST", "/shops/1/payments"), ("POST", "/shops/1/payments/1/refunds"),
                                                 ("POST", "/shops/1/appointments"), ("PATCH", "/shops/1/inventory/1"),
                                                 ("POST", "/webhooks"), ("PATCH", "/shops/1/workorders/1")]))
def test_hostile_json_bodies_on_every_write(emu, body, target):
    method, path = target
    data = json.dumps(body).encode()  # stdlib: big integers and NaN pass through, as hostile clients send them
    r = requests.request(method, emu.base_url + path, data=data,
                         headers={"Authorization": f"Bearer {emu.api_key}", "Content-Type": "application/json"}, timeout=30)
    check_response(r)


def test_inputs_that_once_caused_a_500_are_refused_with_422(emu):
    h = {"Authorization": f"Bearer {emu.api_key}"}
    r = requests.patch(emu.base_url + "/shops/1/workorders/1/status", json={"status": []}, headers=h, timeout=30)
    check_response(r)
    assert r.status_code == 422 and r.json()["error"]["field"] == "status"
    r = requests.post(emu.base_url + "/webhooks", json={"url": "http://[", "events": ["customer.created"]},
                      headers=h, timeout=30)
    check_response(r)
    assert r.status_code == 422 and r.json()["error"]["field"] == "url"
    r = requests.post(emu.base_url + "/shops/1/workorders", json={"customer_id": 1, "vehicle_id": 1, "jobs": 0},
                      headers=h, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["field"] == "jobs"  # not silently taken as no jobs


def test_405_names_the_allowed_methods(emu):
    h = {"Authorization": f"Bearer {emu.api_key}"}
    for method, path, allowed in (("PUT", "/shops/1/customers/1", {"GET", "HEAD", "PATCH", "DELETE"}),
                                  ("POST", "/shops/1/employees", {"GET", "HEAD"}),
                                  ("DELETE", "/shops/1/workorders/1", {"GET", "HEAD", "PATCH"}),
                                  ("GET", "/oauth/token", {"POST"})):
        r = requests.request(method, emu.base_url + path, headers=h, timeout=30)
        check_response(r)
        assert r.status_code == 405, (method, path)
        assert set(r.headers["Allow"].split(", ")) == allowed, (method, path, r.headers["Allow"])


def test_openapi_describes_the_served_objects(emu):
    r = requests.get(emu.base_url + "/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    schemas = spec["components"]["schemas"]
    truth = emu.truth()["objects"]
    names = {"shops": "Shop", "employees": "Employee", "customers": "Customer", "vehicles": "Vehicle",
             "work_orders": "WorkOrder", "payments": "Payment", "inspections": "Inspection",
             "appointments": "Appointment", "inventory": "InventoryPart"}
    for resource, schema in names.items():
        assert set(schemas[schema]["properties"]) == set(truth[resource][0]), resource
    wo = next(w for w in truth["work_orders"] if w["payments"])
    assert set(schemas["Job"]["properties"]) == set(wo["jobs"][0])
    assert set(schemas["LineItem"]["properties"]) == set(wo["jobs"][0]["line_items"][0])
    item = next(i for insp in truth["inspections"] for i in insp["items"] if i["photos"])
    assert set(schemas["InspectionItem"]["properties"]) == set(item)
    assert set(schemas["Photo"]["properties"]) == set(item["photos"][0])
    # every documented path answers (not 404) with the emulator's key
    h = {"Authorization": f"Bearer {emu.api_key}"}
    for path, ops in spec["paths"].items():
        if "get" in ops:
            concrete = path.replace("{shop_id}", "1").replace("{id}", "1").replace("{vin}", "1HGCM82633A004352")
            r = requests.get(emu.base_url + concrete, headers=h)
            assert r.status_code in (200, 404), (path, r.status_code)
            if "{id}" not in path and "{vin}" not in path:
                assert r.status_code == 200, path

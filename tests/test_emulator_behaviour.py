"""Rate limiting, API variants (settings), late commits, faults, time and activity.

Rate windows run on an injected clock (no test waits for real seconds); every test gets its
own emulator, so none depends on what another changed.
"""
from __future__ import annotations

import time

import orjson
import pytest
import requests

from autosync_emulator import Emulator, EmulatorCore
from emulator_helpers import Client, FakeClock, assert_error_envelope, check_world, wait_until


@pytest.fixture
def emu():
    with Emulator(seed=5, shops=2, work_orders=40) as e:
        yield e


@pytest.fixture
def client(emu):
    return Client(emu)


# ---------------------------------------------------------------- rate limit

def test_fixed_window_rate_limit_per_key():
    clock = FakeClock()  # at the start of a 2-second window
    with Emulator(seed=5, shops=1, work_orders=5, rate_limit=5, rate_window_seconds=2, wall_clock=clock) as emu:
        client, other = Client(emu), Client(emu, emu.create_api_key())
        seen = [client.get("/shops") for _ in range(6)]
        assert [r.status_code for r in seen] == [200] * 5 + [429]
        assert [int(r.headers["X-RateLimit-Remaining"]) for r in seen[:5]] == [4, 3, 2, 1, 0]
        assert all(r.headers["X-RateLimit-Limit"] == "5" for r in seen)
        limited = seen[-1]
        assert_error_envelope(limited, 429, "rate_limited")
        assert int(limited.headers["X-RateLimit-Reset"]) == clock.now + 2  # the epoch second the window ends
        assert limited.headers["Retry-After"] == "2"
        clock.advance(1.5)
        assert client.get("/shops").headers["Retry-After"] == "1"  # rounded up, never 0
        assert other.get("/shops").status_code == 200  # each key has its own window
        assert emu.request_log()["rate_limited"] == 2
        clock.advance(0.5)
        fresh = client.get("/shops")  # a new window
        assert fresh.status_code == 200 and fresh.headers["X-RateLimit-Remaining"] == "4"


def test_oauth_tokens_of_one_client_share_a_window():
    clock = FakeClock()
    with Emulator(seed=5, shops=1, work_orders=5, rate_limit=3, rate_window_seconds=2, wall_clock=clock) as emu:
        tokens = [requests.post(emu.base_url + "/oauth/token", data={"grant_type": "client_credentials"},
                                auth=(emu.oauth_client_id, emu.oauth_client_secret)).json()["access_token"]
                  for _ in range(2)]
        a, b = Client(emu, tokens[0]), Client(emu, tokens[1])
        codes = [a.get("/shops").status_code, b.get("/shops").status_code, a.get("/shops").status_code,
                 b.get("/shops").status_code]
        assert codes == [200, 200, 200, 429]


def test_unlimited_reports_a_large_budget(client):
    r = client.get("/shops")
    assert int(r.headers["X-RateLimit-Remaining"]) >= 1000
    assert int(r.headers["X-RateLimit-Reset"]) % 60 == 0


# ---------------------------------------------------------------- variants

def test_updated_after_inclusive(emu, client):
    wos = [w for w in emu.truth()["objects"]["work_orders"] if w["shop_id"] == 1]
    pivot = sorted(w["updated_at"] for w in wos)[len(wos) // 2]
    strict = {r["id"] for r in client.list_all("/shops/1/workorders", updated_after=pivot)}
    emu.configure(updated_after_inclusive=True)
    inclusive = {r["id"] for r in client.list_all("/shops/1/workorders", updated_after=pivot)}
    same_second = {w["id"] for w in wos if w["updated_at"] == pivot}
    assert same_second and inclusive == strict | same_second and not strict & same_second


def test_ignore_updated_after_for_chosen_resources(emu, client):
    emu.configure(ignore_updated_after=["inventory"])
    inv = client.get("/shops/1/inventory", params={"updated_after": "2030-01-01T00:00:00Z"}).json()
    assert inv["pagination"]["total"] > 0
    wos = client.get("/shops/1/workorders", params={"updated_after": "2030-01-01T00:00:00Z"}).json()
    assert wos["pagination"]["total"] == 0


def test_refuse_sort_updated_at(emu, client):
    emu.configure(refuse_sort_updated_at=True)
    err = assert_error_envelope(client.get("/shops/1/workorders", params={"sort": "updated_at"}), 422, "validation_error")
    assert err["field"] == "sort"
    assert client.get("/shops/1/workorders", params={"sort": "created_at"}).status_code == 200


def test_legacy_pagination_and_error_codes(emu, client):
    emu.configure(legacy_pagination=True, legacy_error_codes=True)
    body = client.get("/shops/1/customers").json()
    assert set(body["pagination"]) == {"page", "per_page", "total"}
    err = assert_error_envelope(client.get("/shops/1/customers", params={"page": "x"}), 422, "invalid_parameter")
    assert err["field"] == "page"


def test_embed_children_in_list_rows(emu, client):
    emu.configure(embed_children=True)
    row = client.get("/shops/1/workorders", params={"sort": "id", "order": "asc"}).json()["data"][0]
    assert "jobs" in row and "payments" in row and row["jobs"][0]["line_items"]
    insp = client.get("/shops/1/inspections").json()["data"][0]
    assert "items" in insp
    assert row == client.get(f"/shops/1/workorders/{row['id']}").json()["data"]


def test_settings_over_http_and_validation(emu):
    root = emu.root_url + "/_emulator/settings"
    assert requests.get(root).json()["late_commit_seconds"] == 0
    for bad in ({"late_commit_seconds": -1}, {"ignore_updated_after": ["nope"]}, {"embed_children": "yes"}, {"x": 1}):
        assert_error_envelope(requests.patch(root, json=bad), 422)
    with pytest.raises(ValueError):
        emu.configure(rate_window_seconds=0)


# ---------------------------------------------------------------- late commits

def test_late_commits_hide_new_and_changed_records_until_the_clock_passes(emu, client):
    emu.configure(late_commit_seconds=30)
    created = client.post("/shops/1/customers", json={"first_name": "Late", "last_name": "Comer"}).json()["data"]
    existing = client.get("/shops/1/customers", params={"sort": "id", "order": "asc"}).json()["data"][0]
    changed = client.patch(f"/shops/1/customers/{existing['id']}", json={"notes": "changed late"}).json()["data"]
    assert changed["notes"] == "changed late"
    assert_error_envelope(client.get(f"/shops/1/customers/{created['id']}"), 404)
    assert client.get(f"/shops/1/customers/{existing['id']}").json()["data"] == existing  # old version still served
    ids = {r["id"] for r in client.list_all("/shops/1/customers", updated_after=created["updated_at"].replace(":00Z", ":00Z"))}
    assert created["id"] not in ids
    assert created["id"] not in {c["id"] for c in emu.truth()["objects"]["customers"]}
    emu.advance(seconds=29)
    assert client.get(f"/shops/1/customers/{created['id']}").status_code == 404
    emu.advance(seconds=1)
    assert client.get(f"/shops/1/customers/{created['id']}").json()["data"] == created
    assert client.get(f"/shops/1/customers/{existing['id']}").json()["data"] == changed
    # the record appears with an updated_at in the past: a strict cursor taken meanwhile misses it
    assert created["updated_at"] < emu.clock


# ---------------------------------------------------------------- faults

def test_error_fault_with_count_then_recovers(emu, client):
    emu.set_faults([{"method": "GET", "path": "/v1/shops/*/workorders", "status": 503, "count": 2, "retry_after": 3}])
    first, second, third = (client.get("/shops/1/workorders") for _ in range(3))
    for r in (first, second):
        assert_error_envelope(r, 503, "server_error")
        assert r.headers["Retry-After"] == "3" and "X-RateLimit-Remaining" in r.headers
    assert third.status_code == 200
    assert client.get("/shops/1/customers").status_code == 200
    fired = requests.get(emu.root_url + "/_emulator/faults").json()
    assert fired[0]["fired"] == 2


def test_rate_limit_storm_fault(emu, client):
    emu.reset_request_log()
    emu.set_faults([{"path": "/v1/shops/1/*", "behaviour": "rate_limit", "retry_after": 7, "count": 3}])
    codes = [client.get("/shops/1/customers") for _ in range(4)]
    assert [r.status_code for r in codes] == [429, 429, 429, 200]
    assert codes[0].headers["Retry-After"] == "7"
    assert_error_envelope(codes[0], 429, "rate_limited")
    assert emu.request_log()["rate_limited"] == 3


def test_slow_timeout_drop_truncate_malformed(emu, client):
    emu.set_faults([{"path": "/v1/shops/1/customers", "behaviour": "slow", "delay": 0.3, "count": 1}])
    began = time.perf_counter()
    assert client.get("/shops/1/customers").status_code == 200
    assert time.perf_counter() - began >= 0.3

    emu.set_faults([{"path": "/v1/shops/1/customers", "behaviour": "timeout", "delay": 2, "count": 1}])
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.session.get(emu.base_url + "/shops/1/customers", headers={"Authorization": f"Bearer {emu.api_key}"}, timeout=0.5)

    emu.set_faults([{"path": "/v1/shops/1/customers", "behaviour": "drop", "count": 1}])
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(emu.base_url + "/shops/1/customers", headers={"Authorization": f"Bearer {emu.api_key}"}, timeout=5)

    full = client.get("/shops/1/customers").content
    for behaviour in ("truncate", "malformed"):
        emu.set_faults([{"path": "/v1/shops/1/customers", "behaviour": behaviour, "count": 1}])
        r = client.get("/shops/1/customers")
        assert r.status_code == 200
        with pytest.raises(ValueError):
            orjson.loads(r.content)
        if behaviour == "truncate":
            assert full.startswith(r.content) and len(r.content) < len(full)
    assert client.get("/shops/1/customers").json()["success"] is True


def test_faults_are_seeded_and_replayable(emu, client):
    rules = [{"path": "/v1/shops/*", "status": 500, "probability": 0.5}]
    emu.set_faults(rules)
    first = [client.get("/shops/1").status_code for _ in range(20)]
    emu.set_faults(rules)
    second = [client.get("/shops/1").status_code for _ in range(20)]
    assert first == second and {500, 200} == set(first)


def test_fault_rules_match_method_and_are_validated(emu, client):
    emu.set_faults([{"method": "POST", "path": "*", "status": 502}])
    assert client.get("/shops/1/customers").status_code == 200
    assert_error_envelope(client.post("/shops/1/customers", json={"first_name": "a", "last_name": "b"}), 502)
    for bad in ([{"behaviour": "explode"}], [{"status": 200}], [{"probability": 2}], [{"nope": 1}], {"not": "a list"}):
        assert_error_envelope(requests.put(emu.root_url + "/_emulator/faults", json=bad), 422)
    with pytest.raises(ValueError):
        emu.set_faults([{"count": -1}])


# ---------------------------------------------------------------- time and activity

def test_advance_generates_activity_and_hard_deletes():
    core = EmulatorCore(seed=9, shops=2, work_orders=40)
    before = orjson.loads(core.truth_bytes())
    result = core.advance(48 * 3600)
    after = orjson.loads(core.truth_bytes())
    assert result["clock"] == "2025-06-03T12:00:00Z" and after["clock"] == result["clock"] and result["events"] > 100
    check_world(after)
    for resource in ("customers", "vehicles", "work_orders", "payments", "inspections", "appointments"):
        assert len(after["objects"][resource]) > len(before["objects"][resource]) - len(after["deleted"][resource]), resource
    old_wo = {w["id"]: w for w in before["objects"]["work_orders"]}
    moved = [w for w in after["objects"]["work_orders"] if w["id"] in old_wo and w["status"] != old_wo[w["id"]]["status"]]
    assert moved
    new_updates = [w for w in after["objects"]["work_orders"] if w["updated_at"] > before["clock"]]
    assert new_updates
    deleted = after["deleted"]
    assert sum(len(v) for v in deleted.values()) > 0
    live_ids = {r: {o["id"] for o in after["objects"][r]} for r in after["objects"]}
    assert all(not (set(ids) & live_ids[r]) for r, ids in deleted.items())
    assert any(p["refunds"] and p["updated_at"] > before["clock"] for p in after["objects"]["payments"])
    assert any(i["status"] == "responded" and i["responded_at"] > before["clock"] for i in after["objects"]["inspections"])
    # the clock is frozen unless advanced
    assert orjson.loads(core.truth_bytes())["clock"] == result["clock"]


def test_same_seed_same_calls_same_bytes_after_activity():
    a = EmulatorCore(seed=4, shops=1, work_orders=20)
    b = EmulatorCore(seed=4, shops=1, work_orders=20)
    for core in (a, b):
        core.advance(3600 * 5)
        core.advance(1800)
    assert a.truth_bytes() == b.truth_bytes()


def test_background_activity_changes_data_while_a_client_pages(emu, client):
    before = emu.truth()
    emu.start_background_activity(hours_per_second=20, tick_seconds=0.05)
    try:
        statuses = set()
        for page in range(1, 30):
            r = client.get("/shops/1/workorders", params={"page": page % 5 + 1, "per_page": 10, "sort": "updated_at"})
            statuses.add(r.status_code)
        wait_until(lambda: emu.clock > before["clock"], what="the background activity to move the clock")
    finally:
        emu.stop_background_activity()
    after = emu.truth()
    assert statuses == {200}
    assert after["clock"] > before["clock"]
    assert len(after["objects"]["work_orders"]) != len(before["objects"]["work_orders"]) or after != before
    check_world(after)
    r = requests.post(emu.root_url + "/_emulator/activity", json={"hours_per_second": 5})
    assert r.status_code == 200 and r.json()["running"] is True
    assert requests.delete(emu.root_url + "/_emulator/activity").json()["running"] is False
    assert_error_envelope(requests.post(emu.root_url + "/_emulator/activity", json={"hours_per_second": -1}), 422)


def test_binding_beyond_loopback_warns_that_the_control_plane_is_open(caplog):
    from autosync_emulator.server import is_loopback, serve_socket

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.10") and not is_loopback("shop.example")
    with caplog.at_level("WARNING", logger="autosync_emulator"):
        serve_socket("127.0.0.1", 0).close()
    assert not caplog.records
    with caplog.at_level("WARNING", logger="autosync_emulator"):
        serve_socket("0.0.0.0", 0).close()  # bound, never listened on by a server: closed at once
    assert "no authentication" in caplog.text and "0.0.0.0" in caplog.text

"""Helpers for the emulator's own tests: a small client, the error envelope, world invariants."""
from __future__ import annotations

import sys
import time
from typing import Callable

import requests

from autosync_emulator.money import tax_cents, tax_rate_thousandths
from autosync_emulator.vin import vin_is_valid


class Client:
    """A thin requests wrapper that talks to one Emulator with one credential."""

    def __init__(self, emu, token: str | None = None):
        self.emu = emu
        self.session = requests.Session()
        self.token = token if token is not None else emu.api_key

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        url = path if path.startswith("http") else self.emu.base_url + path
        return self.session.request(method, url, headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def list_all(self, path: str, **params) -> list[dict]:
        rows, page = [], 1
        while True:
            r = self.get(path, params={**params, "page": page, "per_page": 100})
            assert r.status_code == 200, r.text
            body = r.json()
            rows.extend(body["data"])
            if not body["data"] or len(body["data"]) < 100:
                return rows
            page += 1


def assert_error_envelope(response: requests.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["success"] is False
    assert body["error"]["status"] == status
    assert body["request_id"].startswith("req_")
    assert body["request_id"] == response.headers["X-Request-Id"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


# ------------------------------------------------------------------ Schemathesis (suite and benchmark)
# every check Schemathesis has but three: positive_data_acceptance (a valid body may still break a
# business rule: 409/422 are the right answers), ignored_auth and object_level_authorization
# (they need a second credential's view of the same objects, which the document does not describe)
EXCLUDED_CHECKS = "positive_data_acceptance,ignored_auth,object_level_authorization"
def schemathesis_command(root_url: str, config_path, *, phases: str, max_examples: int, seed: int) -> list[str]:
    return [sys.executable, "-c", "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
            "--config-file", str(config_path), "--no-color",
            "run", f"{root_url}/v1/openapi.json", "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
            "--phases", phases, "--max-examples", str(max_examples), "--seed", str(seed), "--workers", "1",
            "--generation-database", "none", "--request-timeout", "30"]


def write_schemathesis_config(path, api_key: str, client_id: str, client_secret: str) -> None:
    """Credentials per security scheme of the document: the API key for every operation, the
    OAuth client (HTTP Basic) for /oauth/token."""
    with open(path, "w") as f:
        f.write(f'[auth.openapi.apiKey]\nbearer = "{api_key}"\n'
                f'[auth.openapi.clientBasic]\nusername = "{client_id}"\npassword = "{client_secret}"\n')


class FakeClock:
    """A wall clock the test moves by hand: `Emulator(wall_clock=clock)` runs rate windows and
    token lifetimes on it, so no test waits for real seconds to pass."""

    def __init__(self, now: float = 1_750_000_000.0):  # a multiple of every window the tests use
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "the condition") -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds (a deadline, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def cents(x) -> int:
    return int(round(x * 100))


def check_world(truth: dict) -> None:
    """Every invariant of a world (also used after activity and writes)."""
    objs = truth["objects"]
    shops = {s["id"]: s for s in objs["shops"]}
    payments_by_wo: dict[int, list[dict]] = {}
    for p in objs["payments"]:
        payments_by_wo.setdefault(p["work_order_id"], []).append(p)
        refunded = sum(cents(r["amount"]) for r in p["refunds"])
        assert refunded == cents(p["refunded_amount"]), p
        assert refunded <= cents(p["amount"]), p
        if p["refunds"]:
            assert p["status"] == "succeeded"
            assert max(r["created_at"] for r in p["refunds"]) <= p["updated_at"]
        assert (p["card_brand"] is not None) == (p["method"] == "card") == (p["last4"] is not None)
        assert p["created_at"] <= p["updated_at"] <= truth["clock"]
    wo_ids = {w["id"] for w in objs["work_orders"]}
    jobs_by_id = {}
    for wo in objs["work_orders"]:
        tax_rate = tax_rate_thousandths(shops[wo["shop_id"]]["settings"]["tax_rate"])
        labor = parts = fees = taxable = 0
        for job in wo["jobs"]:
            jobs_by_id[job["id"]] = (wo, job)
            assert job["work_order_id"] == wo["id"]
            j_labor = j_parts = j_all = 0
            for line in job["line_items"]:
                assert line["job_id"] == job["id"]
                if line["type"] == "labor":
                    exact = round(line["hours"] * 100) * cents(line["rate"])
                    assert cents(line["total"]) == (2 * exact + 100) // 200
                    j_labor += cents(line["total"])
                else:
                    exact = round(line["quantity"] * 100) * cents(line["unit_price"])
                    assert cents(line["total"]) == (2 * exact + 100) // 200
                    if line["type"] == "part":
                        j_parts += cents(line["total"])
                        assert line["part_id"] is not None and line["unit_cost"] is not None
                j_all += cents(line["total"])
                if job["status"] != "declined":
                    if line["type"] == "labor":
                        labor += cents(line["total"])
                    elif line["type"] == "part":
                        parts += cents(line["total"])
                    else:
                        fees += cents(line["total"])
                    if line["taxable"]:
                        taxable += cents(line["total"])
            assert (cents(job["labor_total"]), cents(job["parts_total"]), cents(job["total"])) == (j_labor, j_parts, j_all)
            assert (job["approved_at"] is not None) == (job["status"] in ("approved", "completed")), job
        assert (cents(wo["labor_total"]), cents(wo["parts_total"]), cents(wo["fees_total"])) == (labor, parts, fees)
        assert cents(wo["subtotal"]) == labor + parts + fees
        assert cents(wo["tax_total"]) == tax_cents(taxable, tax_rate)
        assert cents(wo["total"]) == cents(wo["subtotal"]) + cents(wo["tax_total"])
        pays = payments_by_wo.get(wo["id"], [])
        assert [p["id"] for p in wo["payments"]] == sorted(p["id"] for p in pays)
        succeeded = sum(cents(p["amount"]) for p in pays if p["status"] == "succeeded")
        refunds = sum(cents(p["refunded_amount"]) for p in pays if p["status"] == "succeeded")
        assert cents(wo["amount_paid"]) == succeeded - refunds
        assert cents(wo["balance_due"]) == cents(wo["total"]) - cents(wo["amount_paid"])
        # payments never exceed the total (net of refunds, pending charges included)
        assert sum(cents(p["amount"]) - cents(p["refunded_amount"]) for p in pays if p["status"] != "failed") \
            <= cents(wo["total"]), wo["id"]
        # status timestamps
        s = wo["status"]
        assert (wo["started_at"] is None) == (s == "draft")
        assert (wo["completed_at"] is not None) == (s in ("completed", "invoiced"))
        assert (wo["invoiced_at"] is not None) == (s == "invoiced")
        stamps = [wo["created_at"], wo["started_at"], wo["completed_at"], wo["invoiced_at"]]
        stamps = [x for x in stamps if x]
        assert stamps == sorted(stamps)
        assert wo["created_at"] <= wo["updated_at"] <= truth["clock"]
        assert wo["updated_at"] >= stamps[-1]
        if s in ("completed", "invoiced"):
            assert all(j["status"] in ("completed", "declined") for j in wo["jobs"]), wo["id"]
    for p in objs["payments"]:
        assert p["work_order_id"] in wo_ids
    for insp in objs["inspections"]:
        assert insp["work_order_id"] in wo_ids
        assert (insp["sent_at"] is not None) == (insp["status"] in ("sent", "responded"))
        assert (insp["responded_at"] is not None) == (insp["status"] == "responded")
        for item in insp["items"]:
            if item["condition"] == "green":
                assert item["approval"] == "not_applicable" and item["estimate_amount"] is None
                assert item["job_id"] is None
                continue
            if insp["status"] != "responded":
                assert item["approval"] == "pending"
            assert (item["approved_at"] is not None) == (item["approval"] == "approved")
            assert item["estimate_amount"] is not None
            if item["job_id"] is None:
                # noted and priced but no job written: only ever a declined item
                assert item["approval"] == "declined", item
                continue
            wo, job = jobs_by_id[item["job_id"]]
            assert wo["id"] == insp["work_order_id"]
            assert cents(item["estimate_amount"]) == cents(job["total"])
            # a declined item's job may be declined, left pending, or sold at the counter after all
            expected = {"approved": ("approved", "completed"), "declined": ("declined", "pending", "approved", "completed"),
                        "pending": ("pending",)}
            assert job["status"] in expected[item["approval"]], (item, job)
    vehicles = {v["id"]: v for v in objs["vehicles"]}
    customers = {c["id"] for c in objs["customers"]}
    for v in objs["vehicles"]:
        assert v["vin"] is None or vin_is_valid(v["vin"]), v["vin"]  # the API makes vin optional
        assert v["customer_id"] in customers
    for wo in objs["work_orders"]:
        assert vehicles[wo["vehicle_id"]]["customer_id"] == wo["customer_id"]
    for a in objs["appointments"]:
        assert a["customer_id"] in customers and a["vehicle_id"] in vehicles
        assert a["starts_at"] < a["ends_at"]
        assert a["work_order_id"] is None or a["work_order_id"] in wo_ids
    for name, rows in objs.items():
        ids = [o["id"] for o in rows]
        assert ids == sorted(set(ids)), name
        for o in rows:
            assert o["created_at"] <= o["updated_at"] <= truth["clock"], (name, o["id"])
            assert len(o["updated_at"]) == 20 and o["updated_at"].endswith("Z")

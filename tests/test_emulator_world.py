"""World invariants: totals add up, approvals match jobs, payments never exceed totals,
valid VINs, coherent timestamps, and the same seed gives the same bytes."""
from __future__ import annotations

import orjson
import pytest

from autosync_emulator import EmulatorCore
from autosync_emulator.world import tax_cents, tax_rate_thousandths, vin_is_valid
from emulator_helpers import cents


@pytest.fixture(scope="module")
def core():
    return EmulatorCore(seed=42, shops=3, work_orders=120)


@pytest.fixture(scope="module")
def truth(core):
    return orjson.loads(core.truth_bytes())


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
            wo, job = jobs_by_id[item["job_id"]]
            assert wo["id"] == insp["work_order_id"]
            assert cents(item["estimate_amount"]) == cents(job["total"])
            expected = {"approved": ("approved", "completed"), "declined": ("declined",), "pending": ("pending",)}
            assert job["status"] in expected[item["approval"]], (item, job)
            if insp["status"] != "responded":
                assert item["approval"] == "pending"
            assert (item["approved_at"] is not None) == (item["approval"] == "approved")
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


def test_world_invariants(truth):
    check_world(truth)


def test_same_seed_same_bytes_and_other_seed_differs(core):
    again = EmulatorCore(seed=42, shops=3, work_orders=120)
    assert again.truth_bytes() == core.truth_bytes()
    other = EmulatorCore(seed=43, shops=3, work_orders=120)
    assert other.truth_bytes() != core.truth_bytes()


def test_world_has_the_variety_a_sync_must_handle(truth):
    objs = truth["objects"]
    assert {w["status"] for w in objs["work_orders"]} == {"draft", "in_progress", "waiting_parts", "completed", "invoiced"}
    assert {p["method"] for p in objs["payments"]} == {"card", "cash", "check", "text_to_pay"}
    assert {p["status"] for p in objs["payments"]} == {"pending", "succeeded", "failed"}
    assert any(p["refunds"] for p in objs["payments"])
    assert any(0 < cents(w["amount_paid"]) < cents(w["total"]) for w in objs["work_orders"])  # partial
    assert any(len([p for p in w["payments"] if p["status"] == "succeeded"]) > 1 for w in objs["work_orders"])
    jobs = [j for w in objs["work_orders"] for j in w["jobs"]]
    assert {j["status"] for j in jobs} == {"pending", "approved", "declined", "completed"}
    assert {l["type"] for j in jobs for l in j["line_items"]} == {"labor", "part", "fee"}
    assert {i["status"] for i in objs["inspections"]} == {"in_progress", "sent", "responded"}
    items = [it for i in objs["inspections"] for it in i["items"]]
    assert {it["condition"] for it in items} == {"green", "yellow", "red"}
    assert {it["approval"] for it in items} == {"not_applicable", "pending", "approved", "declined"}
    assert any(it["photos"] for it in items)
    assert any(c["is_business"] for c in objs["customers"]) and not all(c["is_business"] for c in objs["customers"])
    assert {e["role"] for e in objs["employees"]} == {"technician", "service_advisor", "manager"}
    assert {a["status"] for a in objs["appointments"]} >= {"scheduled", "completed", "cancelled", "no_show"}


@pytest.mark.parametrize("resource", ["customers", "work_orders", "inventory"])
def test_bulk_edit_bursts_share_one_updated_at_second(truth, resource):
    from collections import Counter
    counts = Counter((o["shop_id"], o["updated_at"]) for o in truth["objects"][resource])
    assert max(counts.values()) >= min(25, len(truth["objects"][resource]) // 6)


def test_default_world_scale_builds_quickly():
    import time
    began = time.perf_counter()
    EmulatorCore(seed=1, shops=3, work_orders=50)
    assert time.perf_counter() - began < 1.0


def test_timestamps_second_precision_and_clock(truth):
    assert truth["clock"] == "2025-06-01T12:00:00Z"
    wo = truth["objects"]["work_orders"][0]
    assert wo["created_at"][-1] == "Z" and len(wo["created_at"]) == 20


def test_money_rounding_is_half_up_in_cents():
    from autosync_emulator.world import labor_total_cents, quantity_total_cents
    assert tax_cents(10000, tax_rate_thousandths(8.875)) == 888      # 8.875 -> 8.88
    assert tax_cents(1000, tax_rate_thousandths(7.25)) == 73         # 72.5 -> 73
    assert labor_total_cents(125, 9999) == 12499                     # 1.25 h x 99.99 = 124.9875
    assert quantity_total_cents(50, 1001) == 501                     # 0.5 x 10.01 = 5.005


def test_vin_check_digit_known_example():
    assert vin_is_valid("1HGCM82633A004352")    # a well-known valid VIN
    assert not vin_is_valid("1HGCM82633A004353")

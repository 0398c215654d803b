"""Records as Arrow tables (autosync_source/rows.py): declared types, dlt's keys on child rows,
strict types (anything else goes to dlt as dicts), and the source really hands dlt Arrow."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from dlt.common.normalizers.json.helpers import get_nested_row_hash

from autosync_emulator import Emulator
from autosync_source.rows import CONVERSION_ERRORS, TIMESTAMP, ArrowRows, _array, as_arrow
from autosync_source.settings import ENDPOINTS_BY_NAME
from autosync_source.sync import shape_record
from source_helpers import all_tables, assert_raw_equals_truth, duckdb_pipeline, sync
from reliability_helpers import integrity_problems

WORK_ORDERS = ENDPOINTS_BY_NAME["work_orders"]


def _work_order(record_id: int, jobs: int = 2, **extra):
    record = {
        "id": record_id, "shop_id": 1, "number": 1000 + record_id, "customer_id": 3, "vehicle_id": 4,
        "technician_id": 5, "service_advisor_id": 6, "status": "completed", "notes": None, "mileage_in": 120000,
        "labor_total": Decimal("185.0"), "parts_total": Decimal("10.25"), "fees_total": Decimal("0.0"),
        "subtotal": Decimal("195.25"), "tax_total": Decimal("8.875"[:4]), "total": Decimal("204.12"),
        "amount_paid": 0, "balance_due": Decimal("204.12"), "started_at": "2025-06-01T05:29:00Z",
        "completed_at": "2025-06-01T07:00:00+02:00", "invoiced_at": None, "created_at": "2025-06-01T04:28:29Z",
        "updated_at": "2025-06-01T07:00:00Z", "payments": [{"id": 9}],
        "jobs": [{"id": record_id * 10 + j, "work_order_id": record_id, "name": f"job {j}", "technician_id": 5,
                  "status": "approved", "approved_at": None, "labor_total": Decimal("1.50"),
                  "parts_total": Decimal("0"), "total": Decimal("1.5"),
                  "line_items": [{"id": record_id * 100 + j * 10 + k, "job_id": record_id * 10 + j, "type": "labor",
                                  "description": "x", "technician_id": 5, "hours": Decimal("0.1"),
                                  "rate": Decimal("185.0"), "part_id": None, "part_number": None, "quantity": None,
                                  "unit_cost": None, "unit_price": None, "taxable": False,
                                  "total": Decimal("18.50")} for k in range(j + 1)]}
                 for j in range(jobs)],
    }
    record.update(extra)
    return shape_record(WORK_ORDERS, record, 1)


def _converter():
    return ArrowRows(WORK_ORDERS, load_id=lambda: "1234.5")


def _by_table(items):
    return {item.meta.table_name: item.data for item in items}


def test_a_work_order_becomes_three_tables_with_declared_types_and_dlt_keys():
    tables = _by_table(_converter().tables([_work_order(1), _work_order(2, jobs=0), _work_order(3, jobs=1)]))
    assert list(tables) == ["work_orders", "work_orders__jobs", "work_orders__jobs__line_items"]
    orders, jobs, items = tables.values()
    assert orders.num_rows == 3 and jobs.num_rows == 3 and items.num_rows == 4  # 1+2 items, then 1
    assert orders.schema.field("total").type == pa.decimal128(12, 2)
    assert orders.schema.field("updated_at").type == TIMESTAMP
    assert orders.schema.field("id").type == pa.int64() and orders.schema.field("notes").type == pa.string()
    assert "payments" not in orders.column_names  # loaded from the payments endpoint
    assert orders.column("_dlt_load_id").to_pylist() == ["1234.5"] * 3
    assert orders.column("completed_at").to_pylist()[0] == datetime(2025, 6, 1, 5, 0, tzinfo=timezone.utc)
    assert orders.column("amount_paid").to_pylist()[0] == Decimal("0.00")
    assert orders.column("tax_total").to_pylist()[0] == Decimal("8.87")
    # children: dlt's own keys, as its relational normalizer would give them
    order_ids = dict(zip(orders.column("id").to_pylist(), orders.column("_dlt_id").to_pylist()))
    job_rows = jobs.to_pylist()
    for job in job_rows:
        parent = order_ids[job["work_order_id"]]
        assert job["_dlt_parent_id"] == parent and job["_dlt_root_id"] == parent
        assert job["_dlt_id"] == get_nested_row_hash(parent, "work_orders__jobs", job["_dlt_list_idx"])
        assert job["shop_id"] == 1
    assert [job["_dlt_list_idx"] for job in job_rows] == [0, 1, 0]
    job_ids = {job["id"]: job["_dlt_id"] for job in job_rows}
    for item in items.to_pylist():
        assert item["_dlt_parent_id"] == job_ids[item["job_id"]]
        assert item["_dlt_root_id"] == order_ids[item["work_order_id"]]
        assert item["_dlt_id"] == get_nested_row_hash(item["_dlt_parent_id"], "work_orders__jobs__line_items",
                                                      item["_dlt_list_idx"])
        assert item["hours"] == Decimal("0.10") and item["taxable"] is False


@pytest.mark.parametrize("values, column_type", [
    ([Decimal("1.5")], pa.int64()),  # pyarrow alone would load 1
    ([True], pa.int64()),
    (["12"], pa.int64()),
    ([Decimal("1.005")], pa.decimal128(12, 2)),  # never rounded
    ([Decimal("12345678901.25")], pa.decimal128(12, 2)),
    (["12.50"], pa.decimal128(12, 2)),
    ([1.5], pa.decimal128(12, 2)),  # a float never becomes money
    ([1], pa.bool_()),
    ([5], pa.string()),
    (["2025-06-01T05:29:00"], TIMESTAMP),  # no zone: dlt decides, as before
    (["yesterday"], TIMESTAMP),
])
def test_a_value_of_another_type_is_refused_not_converted(values, column_type):
    with pytest.raises(CONVERSION_ERRORS):
        _array([None, *values], column_type)


def test_values_of_the_declared_types_convert_exactly():
    assert _array([Decimal("8.875"), 3, None], pa.decimal128(12, 4)).to_pylist() == [Decimal("8.8750"), Decimal("3.0000"), None]
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    assert _array([now, "2026-01-02T03:04:05Z", None], TIMESTAMP).to_pylist() == [
        now, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), None]


def _through(pages):
    out = list(as_arrow(WORK_ORDERS, pages, batch_records=2, converter=_converter()))
    return [item for item in out if isinstance(item, list)], [item for item in out if not isinstance(item, list)]


def test_records_that_do_not_fit_go_to_dlt_as_dicts():
    new_field = _work_order(1, loyalty_tier="gold")
    new_child_field = _work_order(2)
    new_child_field["jobs"][0]["warranty"] = True
    new_list = _work_order(3, notes_history=[{"id": 1}])
    fits = _work_order(4)
    dict_pages, arrow = _through([[new_field, new_child_field, new_list, fits]])
    assert dict_pages == [[new_field, new_child_field, new_list]]
    assert [item.meta.table_name for item in arrow] == all_tables(["work_orders"])
    assert arrow[0].data.column("id").to_pylist() == [4]


def test_a_batch_with_a_value_of_another_type_goes_to_dlt_as_dicts():
    fits, bad = _work_order(1), _work_order(2, mileage_in="12,000 km")
    dict_pages, arrow = _through([[fits], [bad]])
    assert arrow == [] and dict_pages == [[fits, bad]]
    dict_pages, arrow = _through([[fits], [_work_order(3)], [bad]])  # batches of two: the first converts
    assert dict_pages == [[bad]] and arrow[0].data.column("id").to_pylist() == [1, 3]


def test_the_source_hands_dlt_arrow_tables_and_the_merge_still_replaces_children(tmp_path):
    with Emulator(seed=19, shops=2, work_orders=40) as emu:
        pipeline = duckdb_pipeline(tmp_path)
        sync(pipeline, emu)
        metrics = pipeline.last_trace.last_extract_info.metrics
        files = [name for package in metrics.values() for step in package for name in step["job_metrics"]]
        written = {name.split(".")[0] for name in files if name.endswith(".parquet")}
        # extract wrote every raw table, children included, as parquet: nothing left to normalize
        assert written == set(all_tables()), files
        emu.advance(hours=8)
        sync(pipeline, emu)
        truth = emu.truth()
        assert_raw_equals_truth(pipeline, truth)
        assert integrity_problems(pipeline) == []


def test_the_proxy_environment_is_read_once_per_host_and_still_honoured(monkeypatch):
    from autosync_source.auth import ApiKeyAuth
    from autosync_source.client import RequestStats, build_client

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    session = build_client("http://api.example.com/v1", ApiKeyAuth(token="sk_sandbox_x"), RequestStats()).session
    proxied = session.merge_environment_settings("http://api.example.com/v1/shops", {}, None, None, None)
    assert proxied["proxies"]["http"] == "http://proxy.invalid:3128"
    proxied["proxies"].clear()  # a caller's change does not reach the next request
    monkeypatch.setenv("HTTP_PROXY", "http://other.invalid:1")  # read once: the run keeps what it started with
    again = session.merge_environment_settings("http://api.example.com/v1/shops/1/workorders", {}, None, None, None)
    assert again["proxies"]["http"] == "http://proxy.invalid:3128"
    local = session.merge_environment_settings("http://127.0.0.1:8000/v1/shops", {}, None, None, None)
    assert "http" not in local["proxies"]

"""Compare the raw tables the connector loaded with the emulator's truth, exactly.

The truth is flattened here by its own reading of the raw layout (not by the connector's
code): nested objects become `parent__child` columns, embedded lists become child tables whose
rows carry `shop_id` and their parents' ids. Every row and every value is compared: money as
Decimal (never float), timestamps as UTC instants.

Also: pipeline/sync helpers for tests, and the request floor a sync should cost.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import dlt

from autosync_source.settings import DELETED_AT, ENDPOINTS, RESOURCE_NAMES, SYNCED_AT, ChildTable, raw_tables

# The table tree is the connector's endpoint table (autosync_source/settings.py): resources in its
# order (shops first), the child tables under each, the root id every descendant row carries, and
# the embedded lists loaded from another endpoint instead.
RESOURCES = RESOURCE_NAMES
CHILD_TABLES: Dict[str, Tuple[ChildTable, ...]] = {e.name: e.child_tables() for e in ENDPOINTS if e.children}
ROOT_KEYS = {e.name: e.root_key for e in ENDPOINTS if e.root_key}
NOT_LOADED = {e.name: set(e.drop_fields) for e in ENDPOINTS if e.drop_fields}
TIMESTAMP_COLUMNS = {column for columns in raw_tables().values()
                     for column, hint in columns.items() if hint["data_type"] == "timestamp"}
CONNECTOR_COLUMNS = {SYNCED_AT, DELETED_AT}


def all_tables(resources: Iterable[str] = RESOURCES) -> List[str]:
    return [table for resource in resources
            for table in (resource, *(child.table for child in CHILD_TABLES.get(resource, ())))]


# -- truth ------------------------------------------------------------------------------
def load_truth(raw: Any) -> Dict[str, Any]:
    """Accept emu.truth() (dict) or the raw bytes of /_emulator/truth; numbers as Decimal."""
    if isinstance(raw, (bytes, str)):
        return json.loads(raw, parse_float=Decimal)
    return json.loads(json.dumps(raw), parse_float=Decimal)


def _flatten(row: Dict[str, Any], skip: Set[str]) -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in row.items():
        if key in skip or isinstance(value, list):
            continue
        if isinstance(value, dict):
            for sub_key, sub_value in _flatten(value, set()).items():
                flat[f"{key}__{sub_key}"] = sub_value
        else:
            flat[key] = value
    return flat


def flatten_truth(
    truth: Dict[str, Any],
    resources: Iterable[str] = RESOURCES,
    shops: Optional[Sequence[int]] = None,
) -> Dict[str, Dict[Any, Dict[str, Any]]]:
    """{table: {id: flat row}} as the warehouse should hold it."""
    tables: Dict[str, Dict[Any, Dict[str, Any]]] = defaultdict(dict)
    for resource in resources:
        tables[resource]  # an empty resource is still a table to compare
        for obj in truth["objects"].get(resource, []):
            shop_id = obj["id"] if resource == "shops" else obj["shop_id"]
            if shops is not None and shop_id not in shops:
                continue
            row = _flatten(obj, NOT_LOADED.get(resource, set()))
            row["shop_id"] = shop_id
            tables[resource][obj["id"]] = row
            # the objects of each table in this record's tree, read one level down from their parents'
            objects_of = {resource: [obj]}
            for child in CHILD_TABLES.get(resource, ()):
                objects_of[child.table] = []
                tables[child.table]  # an empty list is still a table to compare
                for parent in objects_of[child.parent_table]:
                    for item in parent.get(child.child.name) or []:
                        item_row = _flatten(item, set())
                        item_row["shop_id"] = shop_id
                        item_row[ROOT_KEYS[resource]] = obj["id"]
                        item_row[child.child.parent_key] = parent["id"]
                        tables[child.table][item["id"]] = item_row
                        objects_of[child.table].append(item)
    return dict(tables)


# -- warehouse --------------------------------------------------------------------------
def read_table(pipeline: dlt.Pipeline, table: str) -> List[Dict[str, Any]]:
    with pipeline.sql_client() as client:
        qualified = client.make_qualified_table_name(table)
        with client.execute_query(f"SELECT * FROM {qualified}") as cursor:
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, values)) for values in cursor.fetchall()]


def table_exists(pipeline: dlt.Pipeline, table: str) -> bool:
    try:
        read_table(pipeline, table)
        return True
    except Exception:
        return False


def _norm(column: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    if column in TIMESTAMP_COLUMNS and isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    if isinstance(value, float):
        raise AssertionError(f"column {column} holds a float ({value!r}): money must be decimal")
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    return value


def compare_with_truth(
    pipeline: dlt.Pipeline,
    truth: Dict[str, Any],
    resources: Iterable[str] = RESOURCES,
    shops: Optional[Sequence[int]] = None,
    allow_unreconciled_deletes: bool = True,
) -> List[str]:
    """Every difference between the raw tables and the truth, as readable lines ([] = equal).

    Rows of records the emulator deleted (truth["deleted"]) may remain in the warehouse until
    a delete reconciliation marks them; with allow_unreconciled_deletes they are tolerated
    (and so are their children), every other extra row is a difference.
    """
    resources = list(resources)
    truth = load_truth(truth)
    expected = flatten_truth(truth, resources, shops)
    deleted_roots = {resource: set(truth.get("deleted", {}).get(resource, [])) for resource in resources}
    problems: List[str] = []
    for table in all_tables(resources):
        resource = table.split("__")[0]
        want = expected.get(table, {})
        got_rows = read_table(pipeline, table) if (want or table_exists(pipeline, table)) else []
        got: Dict[Any, Dict[str, Any]] = {}
        for row in got_rows:
            if row["id"] in got:
                problems.append(f"{table}: id {row['id']} appears twice")
            got[row["id"]] = row
        for record_id in sorted(set(want) - set(got), key=str)[:5]:
            problems.append(f"{table}: id {record_id} missing")
        missing = len(set(want) - set(got))
        if missing > 5:
            problems.append(f"{table}: ... {missing} ids missing in all")
        for record_id in sorted(set(got) - set(want), key=str):
            row = got[record_id]
            root_id = record_id if table == resource else row.get(ROOT_KEYS.get(resource, ""))
            if allow_unreconciled_deletes and root_id in deleted_roots.get(resource, set()):
                continue
            problems.append(f"{table}: id {record_id} is not in the truth")
        for record_id in sorted(set(want) & set(got), key=str):
            problems.extend(_row_differences(table, record_id, want[record_id], got[record_id]))
        if len(problems) > 40:
            problems.append("... (stopped after 40 differences)")
            break
    return problems


def _row_differences(table: str, record_id: Any, want: Dict[str, Any], got: Dict[str, Any]) -> List[str]:
    differences = []
    for column, value in want.items():
        if column not in got:
            differences.append(f"{table} id {record_id}: column {column} missing in the warehouse")
            continue
        expected, actual = _norm(column, value), _norm(column, got[column])
        if expected != actual:
            differences.append(f"{table} id {record_id}: {column} is {got[column]!r}, truth says {value!r}")
    for column, value in got.items():
        if column in want or column.startswith("_dlt_") or column in CONNECTOR_COLUMNS:
            continue
        if value is not None:
            differences.append(f"{table} id {record_id}: column {column}={value!r} is not in the truth")
    return differences


def assert_raw_equals_truth(pipeline: dlt.Pipeline, truth: Dict[str, Any], **kwargs: Any) -> None:
    problems = compare_with_truth(pipeline, truth, **kwargs)
    assert not problems, "raw tables differ from the emulator's truth:\n" + "\n".join(problems)


# -- request floor ------------------------------------------------------------------------
DETAIL_RESOURCES = ("work_orders", "inspections")  # list rows are summaries (payments embed refunds)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def request_floor(
    before: Optional[Dict[str, Any]],
    after: Dict[str, Any],
    resources: Iterable[str] = RESOURCES,
    detail_resources: Iterable[str] = DETAIL_RESOURCES,
    lag_seconds: Optional[int] = None,
    per_page: int = 100,
    re_anchored: bool = True,
) -> Dict[str, Dict[str, int]]:
    """The requests a sync from `before` (None: first sync) to `after` makes on a still source.

    Per shop and resource: the list requests of the rows the API returns (`listing_requests`:
    one per page, each page after the first re-anchored on its predecessor's last second; with
    `re_anchored=False`, the bare floor of one page per 100 rows, at least one), where the
    API returns the rows updated since the previous cursor's second minus the lag (the rows
    already loaded in that window come back: the filter is strict and the lag re-reads it);
    one detail call per changed record of a resource whose list rows are summaries, where a
    record listed again in the window at the version `before` already had is not changed.
    Shops are one listing of all shops. lag_seconds: the connector's default unless given.
    """
    if lag_seconds is None:
        from autosync_source import DEFAULT_LAG_SECONDS

        lag_seconds = DEFAULT_LAG_SECONDS
    lag = timedelta(seconds=lag_seconds)
    floor: Dict[str, Dict[str, int]] = {}
    detail_resources = set(detail_resources)
    for resource in resources:
        rows_after = after["objects"].get(resource, [])
        if resource == "shops":
            floor[resource] = {"list": max(1, math.ceil(len(rows_after) / 100))}
            continue
        cursors: Dict[int, datetime] = {}
        versions_before: Set[Tuple[Any, str]] = set()  # (id, updated_at) loaded by the sync before
        if before is not None:
            for row in before["objects"].get(resource, []):
                stamp = _ts(row["updated_at"])
                versions_before.add((row["id"], row["updated_at"]))
                current = cursors.get(row["shop_id"])
                if current is None or stamp > current:
                    cursors[row["shop_id"]] = stamp
        returned: Dict[int, List[int]] = defaultdict(list)  # shop -> seconds of the rows returned
        changed = 0
        for row in rows_after:
            stamp = _ts(row["updated_at"])
            cursor = cursors.get(row["shop_id"])
            if cursor is None:
                returned[row["shop_id"]].append(int(stamp.timestamp()))
                changed += 1
            elif stamp >= cursor - lag:
                returned[row["shop_id"]].append(int(stamp.timestamp()))
                if (row["id"], row["updated_at"]) not in versions_before:
                    changed += 1
        shop_ids = [shop["id"] for shop in after["objects"]["shops"]]
        if re_anchored:
            lists = sum(listing_requests(returned.get(shop_id, []), per_page) for shop_id in shop_ids)
        else:
            lists = sum(max(1, math.ceil(len(returned.get(shop_id, [])) / per_page)) for shop_id in shop_ids)
        entry = {"list": lists}
        if resource in detail_resources and changed:
            entry["detail"] = changed
        floor[resource] = entry
    return floor


def listing_requests(seconds: Sequence[int], per_page: int = 100) -> int:
    """The list requests autosync_source/paging.py makes for rows with these `updated_at`
    seconds when nothing changes meanwhile: page 1 of `updated_after = last second - 1` after
    every page, page numbers under one anchor through a second of more rows than a page.
    Written from the paging rule, not from the paginator's code."""
    rows = sorted(seconds)
    anchor: Optional[int] = None
    page, requests = 1, 0
    while True:
        listed = [s for s in rows if anchor is None or s > anchor]
        chunk = listed[(page - 1) * per_page: page * per_page]
        requests += 1
        if not chunk or page * per_page >= len(listed):
            return requests
        if anchor is None or chunk[-1] - 1 > anchor:
            anchor, page = chunk[-1] - 1, 1
        else:
            page += 1


# -- pipelines ------------------------------------------------------------------------------
def duckdb_pipeline(tmp_path, name: str = "autosync_test", dataset: str = "autosync_raw") -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")),
        dataset_name=dataset,
        pipelines_dir=str(tmp_path / "dlt_pipelines"),
    )


def sync(pipeline: dlt.Pipeline, emulator: Any, shops: Optional[Sequence[int]] = None, refresh: Optional[str] = None,
         **source_kwargs: Any):
    """One sync of the emulator into the pipeline: (load_info of the last shop, RequestStats).

    The source reads one shop: the shops are listed once (or read one by one when `shops` names
    them), then each is read in turn into this one pipeline (cursors are kept per shop).
    `refresh` goes with the first shop's run (it drops what the whole sync then reloads)."""
    from autosync_source import RequestStats, autosync_source
    from autosync_source.connection import ApiSettings, connect, get_shops, list_shops, selected_endpoints

    stats = RequestStats()
    source_kwargs.setdefault("base_url", emulator.base_url)
    if "client_id" not in source_kwargs:
        source_kwargs.setdefault("api_key", emulator.api_key)
    source_kwargs.setdefault("retry_max_wait", 0.2)
    settings = ApiSettings(**{name: source_kwargs[name] for name in ("api_key", "client_id", "client_secret", "base_url",
                                                                     "retry_attempts", "retry_max_wait")
                              if name in source_kwargs})
    client = connect(settings, selected_endpoints(source_kwargs.get("resources")), stats)
    rows = get_shops(client, stats, shops) if shops else list_shops(client, stats)
    info = None
    totals: Dict[str, int] = defaultdict(int)
    for row in rows:
        info = pipeline.run(autosync_source(request_stats=stats, shop=row, **source_kwargs), refresh=refresh)
        refresh = None
        for table, n in pipeline.last_trace.last_normalize_info.row_counts.items():
            totals[table] += n
    _SYNCED_ROWS[id(pipeline)] = (pipeline.last_trace, dict(totals))
    return info, stats


# pipeline -> (its trace after `sync`, rows loaded over every shop of that sync)
_SYNCED_ROWS: Dict[int, Tuple[Any, Dict[str, int]]] = {}


def loaded_rows(pipeline: dlt.Pipeline) -> Dict[str, int]:
    """Rows the last sync loaded (every shop of a `sync`, else the pipeline's last run)."""
    trace, totals = _SYNCED_ROWS.get(id(pipeline), (None, None))
    counts = totals if trace is not None and trace is pipeline.last_trace else pipeline.last_trace.last_normalize_info.row_counts
    return {table: n for table, n in counts.items() if not table.startswith("_dlt")}


# -- changes at the source ------------------------------------------------------------------
def advance_with_changes(emulator: Any, hours: float = 6, **_ignored: Any) -> Dict[str, Any]:
    """Move the emulator clock; its activity generator creates, updates and deletes records."""
    result = emulator.advance(hours=hours)
    assert result.get("events"), f"the emulator generated no activity in {hours} hours: {result}"
    return result


def delete_a_draft_work_order(emu: Any, truth: Optional[Dict[str, Any]] = None) -> int:
    """Delete at the source a draft work order (with jobs if there is one), as the emulator's own
    activity deletes: a hard delete, no webhook. Returns its id."""
    truth = truth if truth is not None else emu.truth()
    drafts = [w for w in truth["objects"]["work_orders"] if w["status"] == "draft"]
    draft = max(drafts, key=lambda w: (len(w["jobs"]) > 0, -w["id"]))
    backend = emu.core.backend
    with emu.core.store.lock:
        backend.delete_work_order(backend.latest("work_orders", draft["id"]))
    return draft["id"]

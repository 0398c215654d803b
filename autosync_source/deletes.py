"""Hard deletes: the AutoSync API deletes without a trace (no webhook, no tombstone in a list),
so the only way to see one is to list every id the source still has and compare.

Per shop and (shop-scoped) resource, `reconcile_deletes`:
  1. lists the ids at the source: sort=id, per_page=100, page numbers. Id order does not move
     when a record is updated, and new records append at the end;
  2. reads the warehouse ids of that shop (live ones and ones already marked deleted);
  3. takes the live warehouse ids the listing did not show as candidates. A delete during the
     listing shifts the id pages and could hide a row that still exists, so every candidate
     is confirmed with `GET {id}`: only a 404 marks it deleted. That costs one request per
     deleted record (deletes are rare) and makes a false delete impossible;
  4. un-marks ids that are marked deleted but listed again (restored at the source);
  5. writes both in one transaction: `_autosync_deleted_at = <now>` (children are left as
     they were: the marts drop them through their parent), and appends each marked or
     un-marked id to `_autosync_delete_marks` (MARKS_TABLE) with a `mark_id` in the format of
     dlt's load ids: an UPDATE in place gives the row no new `_dlt_load_id`, so this is the
     trace the incremental dbt models read to find what the reconciliation changed;
  6. compares versions too: a listed id missing from the warehouse, or held at an older
     `updated_at`, behind the shop's cursor means a sync passed it by (paging.py's residual
     case, or a commit later than lag_seconds); that cursor goes back before it, so the next sync
     loads it. This makes the reconciliation the backstop of the paging guarantee as well.

Why an UPDATE through the destination's SQL client and not merge rows through dlt: the merge
is delete-insert of whole records (children included), so a tombstone row would have to carry
the whole record and its children, read back from the warehouse. One column updated in place
keeps the history as it was, and running it twice marks nothing twice.

It runs after a completed load (run.py), on demand (`--reconcile-deletes`) or when the
cadence says so (`reconcile_deletes_every_hours`, last run time kept in the pipeline state).
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import dlt
from dlt.common.configuration.inject import with_config
from dlt.common.storages.load_package import create_load_id
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from autosync_source.client import NO_HOOKS, AutosyncRESTClient, RequestStats
from autosync_source.connection import ApiSettings, connect, list_shops, selected_endpoints
from autosync_source.cursors import rewind_cursor
from autosync_source.errors import ApiError
from autosync_source.paging import UpdatedAtPaginator, format_ts, parse_ts
from autosync_source.settings import DELETED_AT, PAGE_SIZE, Endpoint

logger = logging.getLogger("autosync_source")

STATE_KEY = "autosync_reconciliation"  # in the pipeline state: {"last_at": iso, "due": {resource: [shop ids]}}
ID_CHUNK = 500  # ids per UPDATE statement
# One row per id the reconciliation marked deleted (is_deleted true) or un-marked (false).
# mark_id is a dlt load id (epoch seconds as a string) taken when the marks are written, so it
# sorts after the load ids of every load before it: the dbt models compare it with _dlt_load_id.
MARKS_TABLE = "_autosync_delete_marks"


@dataclass
class ResourceReconciliation:
    listed: int = 0  # ids the source still has
    marked_deleted: int = 0  # live in the warehouse, gone at the source (404 confirmed)
    restored: int = 0  # marked deleted before, listed again now
    not_yet_loaded: int = 0  # at the source, not in the warehouse (created since, or missed)
    stale: int = 0  # in the warehouse at an older version than the source lists
    cursors_rewound: int = 0  # shops whose cursor had passed a missing or stale row


@dataclass
class ReconciliationReport:
    at: datetime
    stats: RequestStats
    resources: Dict[str, ResourceReconciliation] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        counts = self.stats.as_dict()
        return {
            "at": format_ts(self.at),
            "requests": counts["requests"],
            "requests_by_resource": counts["by_resource"],
            "marked_deleted": {name: r.marked_deleted for name, r in self.resources.items() if r.marked_deleted},
            "restored": {name: r.restored for name, r in self.resources.items() if r.restored},
            "not_yet_loaded": {name: r.not_yet_loaded for name, r in self.resources.items() if r.not_yet_loaded},
            "stale": {name: r.stale for name, r in self.resources.items() if r.stale},
            "cursors_rewound": {name: r.cursors_rewound for name, r in self.resources.items() if r.cursors_rewound},
            "listed": {name: r.listed for name, r in self.resources.items()},
        }


# -- cadence ------------------------------------------------------------------------------
def last_reconciled_at(pipeline: dlt.Pipeline) -> Optional[datetime]:
    value = (pipeline.state.get(STATE_KEY) or {}).get("last_at")  # type: ignore[union-attr]
    return parse_ts(value) if value else None


def remember_reconciliation(pipeline: dlt.Pipeline, at: datetime) -> None:
    """Kept in the pipeline state: saved locally now, sent to the destination with the next load."""
    with pipeline.managed_state() as state:
        state[STATE_KEY] = {**(state.get(STATE_KEY) or {}), "last_at": format_ts(at)}  # type: ignore[literal-required]


def schedule_reconciliation(pipeline: dlt.Pipeline, due: Dict[str, Sequence[int]]) -> None:
    """Have the next run reconcile these resources of these shops ({resource: [shop ids]}),
    whatever the cadence: a listing may have skipped a row (paging.py's residual case)."""
    if not any(due.values()):
        return
    with pipeline.managed_state() as state:
        entry = dict(state.get(STATE_KEY) or {})  # type: ignore[call-overload]
        scheduled = {name: set(shops) for name, shops in (entry.get("due") or {}).items()}
        for name, shops in due.items():
            scheduled.setdefault(name, set()).update(int(shop) for shop in shops)
        entry["due"] = {name: sorted(shops) for name, shops in sorted(scheduled.items()) if shops}
        state[STATE_KEY] = entry  # type: ignore[literal-required]


def scheduled_reconciliation(pipeline: dlt.Pipeline) -> Dict[str, List[int]]:
    """{resource: [shop ids]} an earlier run asked to reconcile (schedule_reconciliation)."""
    return {name: list(shops) for name, shops in ((pipeline.state.get(STATE_KEY) or {}).get("due") or {}).items()}  # type: ignore[union-attr]


def clear_scheduled_reconciliation(pipeline: dlt.Pipeline, resources: Iterable[str]) -> None:
    names = set(resources)
    with pipeline.managed_state() as state:
        entry = dict(state.get(STATE_KEY) or {})  # type: ignore[call-overload]
        left = {name: shops for name, shops in (entry.get("due") or {}).items() if name not in names}
        if left:
            entry["due"] = left
        else:
            entry.pop("due", None)
        state[STATE_KEY] = entry  # type: ignore[literal-required]


def utc_now() -> datetime:
    """The cadence's clock (module-level so a test steps it instead of sleeping through it)."""
    return datetime.now(timezone.utc)


def reconciliation_due(pipeline: dlt.Pipeline, every_hours: Optional[float], now: Optional[datetime] = None) -> bool:
    """True when `every_hours` have passed since the last reconciliation.

    The first run starts the clock instead of reconciling: everything it loaded exists now, so
    there is nothing yet to find.
    """
    if not every_hours or every_hours <= 0:
        return False
    now = now or utc_now()
    last = last_reconciled_at(pipeline)
    if last is None:
        remember_reconciliation(pipeline, now)
        return False
    return now - last >= timedelta(hours=float(every_hours))


# -- reconciliation -----------------------------------------------------------------------
@with_config(sections=("sources", "autosync"))
def reconcile_deletes(
    pipeline: dlt.Pipeline,
    api_key: Optional[str] = dlt.secrets.value,
    client_id: Optional[str] = dlt.secrets.value,
    client_secret: Optional[str] = dlt.secrets.value,
    base_url: Optional[str] = dlt.config.value,
    environment: Optional[str] = dlt.config.value,
    shops: Optional[List[int]] = dlt.config.value,
    resources: Optional[List[str]] = dlt.config.value,
    max_workers: int = 4,
    retry_attempts: int = 5,
    retry_max_wait: float = 20.0,
    request_timeout: float = 30.0,
    page_size: int = PAGE_SIZE,
) -> ReconciliationReport:
    """Mark the warehouse rows whose records are gone at the source; same settings as the source.
    `shops`: the shops to reconcile (the engine gives the pipeline's one shop); default every
    shop the credentials see."""
    selected = [endpoint for endpoint in selected_endpoints(resources) if endpoint.shop_scoped]
    settings = ApiSettings(api_key, client_id, client_secret, base_url, environment, int(retry_attempts),
                           float(retry_max_wait), float(request_timeout), int(max_workers))
    stats = RequestStats()
    client = connect(settings, selected, stats)
    shop_ids = [int(s) for s in shops] if shops else [int(row["id"]) for row in list_shops(client, stats)]
    report = reconcile_with_client(pipeline, client, stats, shop_ids, selected, int(max_workers), int(page_size))
    remember_reconciliation(pipeline, report.at)
    return report


def reconcile_with_client(
    pipeline: dlt.Pipeline,
    client: AutosyncRESTClient,
    stats: RequestStats,
    shop_ids: Sequence[int],
    endpoints: Iterable[Endpoint],
    max_workers: int = 4,
    page_size: int = PAGE_SIZE,
) -> ReconciliationReport:
    started = datetime.now(timezone.utc).replace(microsecond=0)
    report = ReconciliationReport(at=started, stats=stats)
    # Asked of the destination, not of the local schema: a fresh working directory has none.
    warehouse = {endpoint.name: _warehouse_ids(pipeline, endpoint.name) for endpoint in endpoints}
    endpoints = [endpoint for endpoint in endpoints if warehouse[endpoint.name] is not None]
    for endpoint in endpoints:
        report.resources[endpoint.name] = ResourceReconciliation()

    lock = threading.Lock()
    gone: Dict[str, Set[int]] = {endpoint.name: set() for endpoint in endpoints}
    back: Dict[str, Set[int]] = {endpoint.name: set() for endpoint in endpoints}

    behind: Dict[Tuple[str, int], datetime] = {}  # oldest version the warehouse lacks, per shop

    def one(endpoint: Endpoint, shop_id: int) -> None:
        live, marked, versions = warehouse[endpoint.name].get(shop_id, (set(), set(), {}))  # type: ignore[union-attr]
        listed_versions = _source_ids(client, stats, endpoint, shop_id, page_size)
        listed = set(listed_versions)
        confirmed = {record_id for record_id in sorted(live - listed) if _is_gone(client, stats, endpoint, shop_id, record_id)}
        missing = [stamp for record_id, stamp in listed_versions.items() if record_id not in versions]
        stale = [stamp for record_id, stamp in listed_versions.items() if record_id in versions and versions[record_id] < stamp]
        with lock:
            counts = report.resources[endpoint.name]
            counts.listed += len(listed)
            counts.not_yet_loaded += len(missing)
            counts.stale += len(stale)
            gone[endpoint.name] |= confirmed
            back[endpoint.name] |= listed & marked
            if missing or stale:
                behind[(endpoint.name, shop_id)] = min(missing + stale)

    pairs: List[Tuple[Endpoint, int]] = [(endpoint, shop_id) for endpoint in endpoints for shop_id in shop_ids]
    if pairs:
        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(pairs))), thread_name_prefix="autosync-reconcile") as pool:
            for future in [pool.submit(one, endpoint, shop_id) for endpoint, shop_id in pairs]:
                future.result()  # the first failure fails the whole reconciliation: nothing written

    _write_marks(pipeline, gone, back, started)
    for name, _shop_id in _rewind_cursors(pipeline, behind):
        report.resources[name].cursors_rewound += 1
    for name in gone:
        report.resources[name].marked_deleted = len(gone[name])
        report.resources[name].restored = len(back[name])
        if gone[name] or back[name]:
            logger.info("%s: %d marked deleted, %d restored", name, len(gone[name]), len(back[name]))
    return report


def _source_ids(client: AutosyncRESTClient, stats: RequestStats, endpoint: Endpoint, shop_id: int,
                page_size: int = PAGE_SIZE) -> Dict[int, datetime]:
    """{id: updated_at} of every record of the shop, as listed now."""
    ids: Dict[int, datetime] = {}
    paginator = UpdatedAtPaginator(None, page_size, endpoint.cursor, sort_by_cursor=False)
    for page in client.paginate(endpoint.path.format(shop_id=shop_id), paginator=paginator, hooks=NO_HOOKS):
        stats.add_kind("list", endpoint.name)
        for row in page:
            ids[int(row[endpoint.primary_key])] = parse_ts(row[endpoint.cursor])
    return ids


def _rewind_cursors(pipeline: dlt.Pipeline, behind: Dict[Tuple[str, int], datetime]) -> List[Tuple[str, int]]:
    """Move a shop's cursor back before a row the warehouse lacks (or holds at an older
    version) when the cursor has already passed it: incremental syncs would never read it.

    That happens only when a sync skipped a row (paging.py's residual case: a delete or an
    update inside a group of more rows in one second than a page, or an API variant paged by
    page numbers) or a late commit outran lag_seconds. The next sync
    re-reads from there; the merge makes the rows it already has a no-op.
    """
    rewound: List[Tuple[str, int]] = []
    if not behind:
        return rewound
    with pipeline.managed_state() as state:
        for (name, shop_id), oldest in sorted(behind.items()):
            if not rewind_cursor(state, name, shop_id, oldest):  # type: ignore[arg-type]
                continue  # the next sync reads it anyway
            logger.warning("%s: shop %s had rows the syncs passed by; its cursor goes back to %s", name, shop_id, format_ts(oldest))
            rewound.append((name, shop_id))
    return rewound


def _is_gone(client: AutosyncRESTClient, stats: RequestStats, endpoint: Endpoint, shop_id: int, record_id: int) -> bool:
    stats.add_kind("confirm", endpoint.name)
    try:
        client.get_object(endpoint.detail_path(shop_id, record_id))
    except ApiError as failed:
        if failed.status == 404:
            return True
        raise
    return False  # still there: the listing missed it (a delete shifted the pages)


def _warehouse_ids(pipeline: dlt.Pipeline, table: str) -> Optional[Dict[int, Tuple[Set[int], Set[int], Dict[int, datetime]]]]:
    """{shop_id: (live ids, ids marked deleted, {id: updated_at})} of one raw table; None if
    it was never loaded."""
    by_shop: Dict[int, Tuple[Set[int], Set[int], Dict[int, datetime]]] = {}
    with pipeline.sql_client() as sql:
        qualified = sql.make_qualified_table_name(table)
        try:
            rows = sql.execute_sql(f"SELECT shop_id, id, {DELETED_AT} IS NOT NULL, updated_at FROM {qualified}") or []
        except DatabaseUndefinedRelation:
            return None
    for shop_id, record_id, is_marked, updated_at in rows:
        live, marked, versions = by_shop.setdefault(int(shop_id), (set(), set(), {}))
        (marked if is_marked else live).add(int(record_id))
        if updated_at is not None:
            versions[int(record_id)] = updated_at if updated_at.tzinfo else updated_at.replace(tzinfo=timezone.utc)
    return by_shop


def _write_marks(pipeline: dlt.Pipeline, gone: Dict[str, Set[int]], back: Dict[str, Set[int]], at: datetime) -> None:
    if not any(gone.values()) and not any(back.values()):
        return
    with pipeline.sql_client() as sql:
        with sql.begin_transaction():
            marks = _ensure_marks_table(pipeline, sql)
            mark_id = create_load_id()
            for table in gone:
                qualified = sql.make_qualified_table_name(table)
                for chunk in _chunks(sorted(gone[table])):
                    sql.execute_sql(
                        f"UPDATE {qualified} SET {DELETED_AT} = %s "
                        f"WHERE {DELETED_AT} IS NULL AND id IN ({', '.join(str(int(i)) for i in chunk)})",
                        at,
                    )
                    _append_marks(sql, marks, table, chunk, True, at, mark_id)
                for chunk in _chunks(sorted(back[table])):
                    sql.execute_sql(
                        f"UPDATE {qualified} SET {DELETED_AT} = NULL "
                        f"WHERE id IN ({', '.join(str(int(i)) for i in chunk)})"
                    )
                    _append_marks(sql, marks, table, chunk, False, at, mark_id)


def _ensure_marks_table(pipeline: dlt.Pipeline, sql: Any) -> str:
    """Created here, not by dlt: no load writes it. Types per destination (only these three run)."""
    qualified = sql.make_qualified_table_name(MARKS_TABLE)
    if pipeline.destination.destination_name == "bigquery":
        text, bigint, boolean, stamp = "STRING", "INT64", "BOOL", "TIMESTAMP"
    else:
        text, bigint, boolean, stamp = "VARCHAR", "BIGINT", "BOOLEAN", "TIMESTAMP WITH TIME ZONE"
    sql.execute_sql(f"CREATE TABLE IF NOT EXISTS {qualified} (table_name {text}, id {bigint}, "
                    f"is_deleted {boolean}, marked_at {stamp}, mark_id {text})")
    return qualified


def _append_marks(sql: Any, marks: str, table: str, ids: List[int], is_deleted: bool, at: datetime, mark_id: str) -> None:
    rows = ", ".join(f"(%s, {int(i)}, {'TRUE' if is_deleted else 'FALSE'}, %s, %s)" for i in ids)
    params: List[Any] = []
    for _ in ids:
        params += [table, at, mark_id]
    sql.execute_sql(f"INSERT INTO {marks} (table_name, id, is_deleted, marked_at, mark_id) VALUES {rows}", *params)


def _chunks(ids: List[int]) -> Iterable[List[int]]:
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start:start + ID_CHUNK]

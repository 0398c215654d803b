"""Reading one endpoint of one shop: list what changed, fetch details where the list row is a
summary, shape rows for the warehouse, and say where the shop's cursor ends up.

Each resource's listing is read by a thread of its own (`read_shop`); every thread spends the
same rate budget (ratelimit.py) and the session caps how many requests are in flight at once.
Why a thread of our own and not dlt's `parallelized=True`: the cursor must be written from the
generator's thread, where dlt's resource state lives, and a failure must fail the extract.
Shops are the engine's unit of work (pipelines/engine/sync.py): it runs several at once.
"""
from __future__ import annotations

import itertools
import logging
import queue
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List, MutableMapping, Optional, Tuple

from autosync_source.checkpoints import Checkpoint
from autosync_source.client import AutosyncRESTClient, InsufficientScope, RequestStats
from autosync_source.client import NO_HOOKS
from autosync_source.connection import sort_refused
from autosync_source.cursors import ShopCursor, fingerprint, get_cursor, set_cursor
from autosync_source.errors import ApiError, AutosyncError, ReadCancelled, ScopeError
from autosync_source.estimate import FirstPages
from autosync_source.paging import UpdatedAtPaginator, format_ts, parse_ts
from autosync_source.progress import Progress
from autosync_source.settings import DELETED_AT, PAGE_SIZE, SYNCED_AT, Child, Endpoint

logger = logging.getLogger("autosync_source")

# Pages waiting between the shop threads and dlt: enough to keep threads busy, little memory.
QUEUE_PAGES = 8


@dataclass
class SyncWindow:
    start_date: datetime
    end_date: Optional[datetime]
    lag_seconds: int = 0
    page_size: int = PAGE_SIZE  # rows per list request (the API's maximum by default)


@dataclass
class ShopOutcome:
    cursor: ShopCursor
    complete: bool = True  # False: stopped at a checkpoint, the listing goes on next run


class EndpointReader:
    """Reads one endpoint of one shop; the rows it emitted in this run are never emitted twice."""

    def __init__(
        self,
        client: AutosyncRESTClient,
        stats: RequestStats,
        endpoint: Endpoint,
        window: SyncWindow,
        checkpoint: Optional[Checkpoint] = None,
        progress: Optional[Progress] = None,
        first_pages: Optional[FirstPages] = None,
    ) -> None:
        self.client = client
        self.stats = stats
        self.endpoint = endpoint
        self.window = window
        self.checkpoint = checkpoint or Checkpoint(minutes=0)
        self.progress = progress or Progress(mode="quiet")
        self.first_pages = first_pages or FirstPages()

    def read_shop(
        self,
        shop_id: Optional[int],
        cursor: ShopCursor,
        emit: Callable[[List[Dict[str, Any]]], None],
        stopped: Any,
    ) -> ShopOutcome:
        """List the shop's changed records, emit them page by page, return the new cursor."""
        refused_before = self.endpoint.name in self.client.sort_refused
        try:
            return self._read(shop_id, cursor, emit, stopped, sort_by_cursor=not refused_before)
        except ApiError as refused:
            # The contract allows an API that refuses sort=updated_at: fall back to id order
            # (stable under updates) and page numbers; updated_after still filters. Remembered
            # for the run, so only the first shop pays the refused request.
            if not refused_before and sort_refused(refused):
                self.stats.note_quirk(
                    f"{self.endpoint.name} refuses sort=updated_at: paged in id order under the "
                    "updated_after filter (correct, but no early stop for end_date)"
                )
                self.client.sort_refused.add(self.endpoint.name)
                return self._read(shop_id, cursor, emit, stopped, sort_by_cursor=False)
            raise
        except InsufficientScope as missing:
            raise ScopeError(missing.scope or self.endpoint.scope, self.endpoint.name, str(missing)) from None

    def _read(
        self,
        shop_id: Optional[int],
        cursor: ShopCursor,
        emit: Callable[[List[Dict[str, Any]]], None],
        stopped: Any,
        sort_by_cursor: bool,
    ) -> ShopOutcome:
        endpoint, end_date, lag = self.endpoint, self.window.end_date, self.window.lag_seconds
        name, progress = endpoint.name, self.progress
        anchor = cursor.anchor(self.window.start_date, lag)
        if cursor.partial and cursor.updated_at is not None:
            logger.info("%s: shop %s resumes after %s (where the last checkpoint stopped)", name, shop_id, format_ts(cursor.updated_at))
        if self.checkpoint.reached():
            self.checkpoint.note_stopped(name, shop_id, format_ts(cursor.updated_at) if cursor.updated_at else None, started=False)
            progress.shop_stopped(name, shop_id)
            return ShopOutcome(cursor, complete=False)  # not started: the next run reads it whole
        path = endpoint.path.format(shop_id=shop_id) if endpoint.shop_scoped else endpoint.path
        first = self.first_pages.take(name, shop_id)
        if first is not None and first.failure is not None and first.anchor == anchor and first.sort_by_cursor == sort_by_cursor:
            raise first.failure  # page 1, read ahead for the estimate, failed: as if asked now
        if first is not None and first.anchor == anchor and first.sort_by_cursor == sort_by_cursor:
            # page 1 was read ahead for the estimate (estimate.py): go on from there
            paginator = first.paginator
            pages: Iterator[Any] = itertools.chain([first.rows], first.rest)
        else:
            paginator = UpdatedAtPaginator(anchor, self.window.page_size, endpoint.cursor, sort_by_cursor)
            pages = self.client.paginate(path, paginator=paginator, hooks=NO_HOOKS)
        listed: Dict[Any, Tuple[datetime, str]] = {}  # id -> newest (updated_at, fingerprint) handled
        emitted: Dict[Any, datetime] = {}
        last_handled: Optional[datetime] = None
        progress.shop_started(name, shop_id)
        for page in pages:
            self.stats.add_kind("list", endpoint.name)
            progress.list_page(name, shop_id, paginator.last_page_total, len(page), self._needs_details(page))
            batch: List[Dict[str, Any]] = []
            for row in page:
                if stopped.is_set():
                    return ShopOutcome(cursor)  # another resource failed, or the run stops: nothing commits
                if self.checkpoint.reached() and last_handled is not None:
                    if batch:
                        emit(batch)
                    return self._stopped_at_checkpoint(shop_id, cursor, listed, last_handled)
                stamp = parse_ts(row[endpoint.cursor])
                if end_date is not None and stamp > end_date:
                    if sort_by_cursor:
                        paginator.stop()  # ascending: everything after is past the end too
                    continue
                row_fingerprint = fingerprint(row)
                record_id = row[endpoint.primary_key]
                record = self._changed_record(row, stamp, row_fingerprint, anchor, cursor, emitted, shop_id)
                if record_id not in listed or stamp >= listed[record_id][0]:
                    listed[record_id] = (stamp, row_fingerprint)  # handled: loaded now or before
                last_handled = stamp
                self.checkpoint.handled_any = True
                if record is not None:
                    batch.append(record)
            if batch:
                emit(batch)
            if self.checkpoint.reached() and paginator.has_next_page and last_handled is not None:
                return self._stopped_at_checkpoint(shop_id, cursor, listed, last_handled)
        if paginator.filter_ignored:
            self.stats.note_quirk(
                f"{endpoint.name} ignores updated_after: every sync lists all its rows and loads "
                "only the changed ones (correct, at the cost of a full listing)"
            )
        residual = unseen_seconds(paginator.residual_seconds, cursor, lag)
        if residual:
            self.stats.note_paging_residual(endpoint.name, shop_id, residual)
        progress.shop_done(name, shop_id)
        return ShopOutcome(cursor.advanced(listed, lag, listed_at=paginator.started_at))

    def _stopped_at_checkpoint(
        self,
        shop_id: Optional[int],
        cursor: ShopCursor,
        listed: Dict[Any, Tuple[datetime, str]],
        last_handled: datetime,
    ) -> ShopOutcome:
        """The cursor of a listing stopped part-way: exactly past the rows handled so far.

        The listing is ascending, so every row up to `last_handled` is handled; a row listed
        earlier at a newer position (it changed while we paged) is left out, it is listed again."""
        handled = {record_id: entry for record_id, entry in listed.items() if entry[0] <= last_handled}
        new_cursor = cursor.advanced(handled, self.window.lag_seconds)
        new_cursor.partial = True
        position = format_ts(new_cursor.updated_at) if new_cursor.updated_at else None
        self.checkpoint.note_stopped(self.endpoint.name, shop_id, position)
        self.progress.shop_stopped(self.endpoint.name, shop_id)
        return ShopOutcome(new_cursor, complete=False)

    def _needs_details(self, page: List[Dict[str, Any]]) -> int:
        return sum(1 for row in page if any(child.name not in row for child in self.endpoint.children))

    def _changed_record(
        self,
        row: Dict[str, Any],
        stamp: datetime,
        row_fingerprint: str,
        anchor: datetime,
        cursor: ShopCursor,
        emitted: Dict[Any, datetime],
        shop_id: Optional[int],
    ) -> Optional[Dict[str, Any]]:
        """The record to load for a listed row, or None when it is not new to this run."""
        record_id = row[self.endpoint.primary_key]
        if stamp <= anchor:
            return None  # the endpoint ignored updated_after: old, already loaded
        if cursor.already_loaded(record_id, stamp, row_fingerprint):
            if any(child.name not in row for child in self.endpoint.children):
                self.progress.detail_not_needed(self.endpoint.name, shop_id)
            return None
        seen = emitted.get(record_id)
        if seen is not None and seen >= stamp:
            return None  # listed again after a re-anchor, same version
        record = row
        if any(child.name not in row for child in self.endpoint.children):
            record = self._detail(shop_id, record_id)
            if record is None:
                return None  # deleted between the list and the detail; deletes are reconciled
        emitted[record_id] = max(stamp, parse_ts(record.get(self.endpoint.cursor) or row[self.endpoint.cursor]))
        return shape_record(self.endpoint, dict(record), shop_id)

    def _detail(self, shop_id: Optional[int], record_id: Any) -> Optional[Dict[str, Any]]:
        self.stats.add_kind("detail", self.endpoint.name)
        self.progress.detail(self.endpoint.name, shop_id)
        try:
            return self.client.get_object(self.endpoint.detail_path(shop_id, record_id))
        except ApiError as failed:
            if failed.status == 404:
                return None
            raise


def unseen_seconds(seconds: List[str], cursor: ShopCursor, lag_seconds: int) -> List[str]:
    """The seconds read by page numbers (paging.py's residual case) that can hide a row this
    sync had to load. A second the last complete listing read (at or before its cursor) and
    older than that listing's start by more than the lag was over when it was read whole (a row
    hidden now was loaded then, or that run reported it); later commits into it are what the
    lag does not cover anyway. Without that listing (first sync, a checkpoint's partial cursor,
    older state) every one counts."""
    if cursor.updated_at is None or cursor.partial or cursor.listed_at is None:
        return list(seconds)
    settled = cursor.listed_at - timedelta(seconds=max(0, lag_seconds))
    read_whole = [second for second in seconds if parse_ts(second) <= cursor.updated_at and parse_ts(second) < settled]
    return [second for second in seconds if second not in read_whole]


def shape_record(endpoint: Endpoint, record: Dict[str, Any], shop_id: Optional[int]) -> Dict[str, Any]:
    """Add shop and parent ids to the record and its children, drop lists loaded elsewhere."""
    for name in endpoint.drop_fields:
        record.pop(name, None)
    owner = record.get("shop_id", shop_id) if endpoint.shop_scoped else record[endpoint.primary_key]
    record["shop_id"] = owner
    for child in endpoint.children:
        _shape_children(record, child, owner, endpoint.root_key, record[endpoint.primary_key])
    record[SYNCED_AT] = datetime.now(timezone.utc)
    record[DELETED_AT] = None
    return record


def _shape_children(parent: Dict[str, Any], child: Child, shop_id: Any, root_key: str, root_id: Any) -> None:
    rows = parent.get(child.name)
    if not isinstance(rows, list):
        parent[child.name] = []
        return
    shaped = []
    for row in rows:
        row = dict(row)
        row["shop_id"] = shop_id
        row[root_key] = root_id
        row[child.parent_key] = parent["id"]
        for grandchild in child.children:
            _shape_children(row, grandchild, shop_id, root_key, root_id)
        shaped.append(row)
    parent[child.name] = shaped


def read_shop(
    reader: EndpointReader,
    shop_id: Optional[int],
    resource_state: MutableMapping[str, Any],
    cancel: Optional[threading.Event] = None,
) -> Iterator[List[Dict[str, Any]]]:
    """Yield pages of shaped rows of one shop's listing; write its cursor once the listing is
    complete (or stopped at a checkpoint: then exactly past the rows yielded).

    Runs in dlt's extract thread (the only one that may touch resource state). The listing is
    read by a thread of its own that hands pages over through a bounded queue, so while dlt
    takes a page of this resource the other resources of the shop go on reading: a shop's
    resources read in parallel, each bounded by QUEUE_PAGES. The first failure is raised here, so
    dlt fails the extract and commits neither rows nor cursors. `cancel` set (the engine stops
    the run) stops the reader at its next row with `ReadCancelled`.
    """
    handoff: "queue.Queue[tuple]" = queue.Queue(maxsize=QUEUE_PAGES)
    stopped = threading.Event()
    name = reader.endpoint.name
    cursor = get_cursor(resource_state, shop_id)

    def put(item: tuple) -> None:
        while not stopped.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def emit(rows: List[Dict[str, Any]]) -> None:
        put(("rows", rows))

    def work() -> None:
        try:
            put(("done", reader.read_shop(shop_id, cursor, emit, _Either(stopped, cancel))))
        except BaseException as failure:  # handed to the extract thread, which raises it
            put(("failed", failure))

    worker = threading.Thread(target=work, name=f"autosync-{name}-{shop_id}", daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item[0] == "rows":
                yield item[1]
            elif item[0] == "done":
                if cancel is not None and cancel.is_set():  # the reader stopped early: not a whole listing
                    raise ReadCancelled(f"{name} of shop {shop_id}: the run was stopped")
                outcome: ShopOutcome = item[1]
                set_cursor(resource_state, shop_id, outcome.cursor)
                return
            else:
                failure = item[1]
                if isinstance(failure, (AutosyncError, KeyboardInterrupt)):
                    raise failure
                raise ApiError(f"Reading {name} of shop {shop_id} failed: {type(failure).__name__}: {failure}") from failure
    finally:
        stopped.set()
        worker.join()


class _Either:
    """Set when either event is (the reader only asks `is_set`)."""

    def __init__(self, first: threading.Event, second: Optional[threading.Event]) -> None:
        self._first, self._second = first, second

    def is_set(self) -> bool:
        return self._first.is_set() or (self._second is not None and self._second.is_set())

"""State of the emulated API: what each resource holds, what a client can see, and queries.

Two layers, because of late commits:
- `latest`: the newest version of every object; business rules read and write it.
- `visible`: what `GET` and lists serve. With `late_commit_seconds = 0` a write is visible at
  once (both layers point to the same dict). With N > 0 the write is queued and becomes
  visible when the emulator clock reaches its `updated_at` + N (until then the previous
  version, or nothing, is served).

Objects are treated as immutable once stored: a change stores a new dict (copy on write),
so a queued snapshot can never be altered by a later change and cached bytes stay valid.
Per shop and resource the visible rows are indexed by (created_at, id), (updated_at, id)
and id, so a sorted, filtered page costs O(log n + page) in the delta-sync case; each
object's serialized bytes are cached and list bodies are built by joining them.

One coherent thing, a little over 400 lines: the store and its indexes; the resources'
business rules live in autosync_emulator/models/.
"""
from __future__ import annotations

import heapq
import threading
from typing import Any, Iterable

import orjson
from sortedcontainers import SortedList

from .records import resource_names
from .timefmt import iso, parse_iso

RESOURCES = resource_names()
# fields that only the detail view (GET {id}) carries; list rows drop them unless embed_children
DETAIL_ONLY = {"work_orders": ("jobs", "payments"), "inspections": ("items",)}


_EMPTY = SortedList()


class ShopIndex:
    __slots__ = ("by_created", "by_updated", "by_id", "keys")

    def __init__(self) -> None:
        self.by_created = SortedList()
        self.by_updated = SortedList()
        self.by_id = SortedList()
        self.keys: dict[int, tuple[int, int]] = {}

    def add(self, oid: int, created: int, updated: int) -> None:
        old = self.keys.get(oid)
        if old is not None:
            if old == (created, updated):
                return
            self.by_created.remove((old[0], oid))
            self.by_updated.remove((old[1], oid))
        else:
            self.by_id.add(oid)
        self.by_created.add((created, oid))
        self.by_updated.add((updated, oid))
        self.keys[oid] = (created, updated)

    def remove(self, oid: int) -> None:
        old = self.keys.pop(oid, None)
        if old is None:
            return
        self.by_created.remove((old[0], oid))
        self.by_updated.remove((old[1], oid))
        self.by_id.remove(oid)

    def bulk_build(self, rows: Iterable[tuple[int, int, int]]) -> None:
        rows = list(rows)
        self.keys = {oid: (c, u) for oid, c, u in rows}
        self.by_created = SortedList((c, oid) for oid, c, u in rows)
        self.by_updated = SortedList((u, oid) for oid, c, u in rows)
        self.by_id = SortedList(oid for oid, _c, _u in rows)


class Table:
    def __init__(self, name: str) -> None:
        self.name = name
        self.latest: dict[int, dict] = {}
        self.visible: dict[int, dict] = {}
        self.index: dict[int, ShopIndex] = {}
        self.summary_cache: dict[int, bytes] = {}
        self.detail_cache: dict[int, bytes] = {}
        self.deleted: list[int] = []

    def shop_index(self, shop_id: int) -> ShopIndex:
        idx = self.index.get(shop_id)
        if idx is None:
            idx = self.index[shop_id] = ShopIndex()
        return idx


class ListQuery:
    """A validated list request (the HTTP layer parses and validates; this just carries)."""

    __slots__ = ("page", "per_page", "sort", "order", "created_after", "updated_after",
                 "updated_inclusive", "filters", "search")

    def __init__(self, page: int = 1, per_page: int = 25, sort: str = "created_at",
                 order: str = "desc", created_after: float | None = None,
                 updated_after: float | None = None, updated_inclusive: bool = False,
                 filters: dict[str, Any] | None = None, search: str | None = None) -> None:
        self.page = page
        self.per_page = per_page
        self.sort = sort
        self.order = order
        self.created_after = created_after
        self.updated_after = updated_after
        self.updated_inclusive = updated_inclusive
        self.filters = filters or {}
        self.search = search


def _lower_bound(threshold: float, inclusive: bool) -> int:
    """Smallest integer second that passes `> threshold` (or `>= threshold`)."""
    floor = int(threshold // 1)
    if inclusive:
        return floor if floor == threshold else floor + 1
    return floor + 1


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tables: dict[str, Table] = {name: Table(name) for name in RESOURCES}
        self.clock = 0
        self.late_commit_seconds = 0
        self._pending: list[tuple[int, int, str, int, dict | None]] = []
        self._seq = 0
        # payments of a work order, among visible payments (the work order detail embeds them)
        self._payments_by_wo: dict[int, set[int]] = {}

    # ------------------------------------------------------------------ loading
    def bulk_add(self, resource: str, obj: dict) -> None:
        """Generator path: no index maintenance until `finish_bulk`."""
        table = self.tables[resource]
        table.latest[obj["id"]] = obj
        table.visible[obj["id"]] = obj

    def finish_bulk(self) -> None:
        for table in self.tables.values():
            per_shop: dict[int, list[tuple[int, int, int]]] = {}
            for oid, obj in table.visible.items():
                per_shop.setdefault(obj["shop_id"], []).append(
                    (oid, parse_iso(obj["created_at"]), parse_iso(obj["updated_at"])))
            for shop_id, rows in per_shop.items():
                table.shop_index(shop_id).bulk_build(rows)
        self._payments_by_wo = {}
        for pid, pay in self.tables["payments"].visible.items():
            self._payments_by_wo.setdefault(pay["work_order_id"], set()).add(pid)

    # ------------------------------------------------------------------ reads
    def latest(self, resource: str, oid: int) -> dict | None:
        return self.tables[resource].latest.get(oid)

    def visible(self, resource: str, oid: int) -> dict | None:
        return self.tables[resource].visible.get(oid)

    def latest_objects(self, resource: str):
        """Every object's newest version (uncommitted ones included), in insertion order: a live view."""
        return self.tables[resource].latest.values()

    def visible_ids(self, resource: str):
        """The ids a client can see now, in insertion order: a live view."""
        return self.tables[resource].visible.keys()

    def ids_of_shop(self, resource: str, shop_id: int) -> SortedList:
        """The sorted ids of one shop's visible objects (a live view: do not modify)."""
        idx = self.tables[resource].index.get(shop_id)
        return idx.by_id if idx is not None else _EMPTY

    def find_visible(self, resource: str, field: str, value: Any) -> dict | None:
        """The first visible object (in insertion order) whose `field` equals `value`; a scan."""
        with self.lock:
            for obj in self.tables[resource].visible.values():
                if obj[field] == value:
                    return obj
        return None

    # ------------------------------------------------------------------ writes
    def put(self, resource: str, obj: dict) -> None:
        """Store a new version (a fresh dict). Visible now, or after the late-commit delay."""
        table = self.tables[resource]
        table.latest[obj["id"]] = obj
        if self.late_commit_seconds > 0:
            self._enqueue(parse_iso(obj["updated_at"]) + self.late_commit_seconds, resource, obj["id"], obj)
        else:
            self._publish(resource, obj["id"], obj)

    def delete(self, resource: str, oid: int) -> None:
        table = self.tables[resource]
        old = table.latest.pop(oid, None)
        if old is None:
            return
        if self.late_commit_seconds > 0:
            self._enqueue(self.clock + self.late_commit_seconds, resource, oid, None)
        else:
            self._publish(resource, oid, None)

    def _enqueue(self, due: int, resource: str, oid: int, obj: dict | None) -> None:
        self._seq += 1
        heapq.heappush(self._pending, (due, self._seq, resource, oid, obj))
        self._flush()

    def set_clock(self, ts: int) -> None:
        self.clock = ts
        self._flush()

    def set_late_commit(self, seconds: int) -> None:
        self.late_commit_seconds = max(0, int(seconds))
        if self.late_commit_seconds == 0:
            while self._pending:
                _due, _seq, resource, oid, obj = heapq.heappop(self._pending)
                self._publish(resource, oid, obj)

    def _flush(self) -> None:
        while self._pending and self._pending[0][0] <= self.clock:
            _due, _seq, resource, oid, obj = heapq.heappop(self._pending)
            self._publish(resource, oid, obj)

    def _publish(self, resource: str, oid: int, obj: dict | None) -> None:
        table = self.tables[resource]
        old = table.visible.get(oid)
        table.summary_cache.pop(oid, None)
        table.detail_cache.pop(oid, None)
        if obj is None:
            if old is None:
                return
            del table.visible[oid]
            table.shop_index(old["shop_id"]).remove(oid)
            table.deleted.append(oid)
        else:
            table.visible[oid] = obj
            table.shop_index(obj["shop_id"]).add(oid, parse_iso(obj["created_at"]), parse_iso(obj["updated_at"]))
        if resource == "payments":
            ref = obj if obj is not None else old
            if obj is None:
                self._payments_by_wo.get(ref["work_order_id"], set()).discard(oid)
            else:
                self._payments_by_wo.setdefault(ref["work_order_id"], set()).add(oid)
            self.tables["work_orders"].detail_cache.pop(ref["work_order_id"], None)

    # ------------------------------------------------------------------ serialization
    def detail_bytes(self, resource: str, oid: int) -> bytes | None:
        table = self.tables[resource]
        cached = table.detail_cache.get(oid)
        if cached is not None:
            return cached
        obj = table.visible.get(oid)
        if obj is None:
            return None
        if resource == "work_orders":
            pay_table = self.tables["payments"]
            payments = [pay_table.visible[pid] for pid in sorted(self._payments_by_wo.get(oid, ()))]
            data = orjson.dumps({**obj, "payments": payments})
        else:
            data = orjson.dumps(obj)
        table.detail_cache[oid] = data
        return data

    def summary_bytes(self, resource: str, oid: int) -> bytes | None:
        drop = DETAIL_ONLY.get(resource)
        if drop is None:
            return self.detail_bytes(resource, oid)
        table = self.tables[resource]
        cached = table.summary_cache.get(oid)
        if cached is not None:
            return cached
        obj = table.visible.get(oid)
        if obj is None:
            return None
        data = orjson.dumps({k: v for k, v in obj.items() if k not in drop})
        table.summary_cache[oid] = data
        return data

    # ------------------------------------------------------------------ queries
    def query(self, resource: str, shop_ids: list[int], q: ListQuery) -> tuple[list[int], int]:
        """Ids of one page and the total matching, among the visible rows of `shop_ids`."""
        table = self.tables[resource]
        desc = q.order == "desc"
        start = (q.page - 1) * q.per_page
        simple = not q.filters and q.search is None
        if len(shop_ids) == 1 and simple:
            idx = table.index.get(shop_ids[0])
            if idx is None:
                return [], 0
            fast = self._fast_page(idx, q, start, desc)
            if fast is not None:
                return fast
        rows = self._candidates(table, shop_ids, q)
        if q.sort == "id":
            rows.sort(key=lambda r: r[2], reverse=desc)
        elif q.sort == "updated_at":
            rows.sort(key=lambda r: (r[1], r[2]), reverse=desc)
        else:
            rows.sort(key=lambda r: (r[0], r[2]), reverse=desc)
        return [r[2] for r in rows[start:start + q.per_page]], len(rows)

    def _fast_page(self, idx: ShopIndex, q: ListQuery, start: int, desc: bool) -> tuple[list[int], int] | None:
        """Slice an index directly when the only restriction is on the sort key itself."""
        if q.sort == "id":
            if q.created_after is not None or q.updated_after is not None:
                return None
            sl = idx.by_id
            lo, hi = 0, len(sl)
            extract = None
        elif q.sort == "updated_at":
            if q.created_after is not None:
                return None
            sl = idx.by_updated
            lo, hi = 0, len(sl)
            if q.updated_after is not None:
                lo = sl.bisect_left((_lower_bound(q.updated_after, q.updated_inclusive), 0))
            extract = 1
        else:
            if q.updated_after is not None:
                return None
            sl = idx.by_created
            lo, hi = 0, len(sl)
            if q.created_after is not None:
                lo = sl.bisect_left((_lower_bound(q.created_after, False), 0))
            extract = 1
        total = hi - lo
        if start >= total:
            return [], total
        if desc:
            stop = hi - start
            begin = max(lo, stop - q.per_page)
            items = list(sl.islice(begin, stop, reverse=True))
        else:
            begin = lo + start
            items = list(sl.islice(begin, min(hi, begin + q.per_page)))
        if extract is not None:
            items = [item[1] for item in items]
        return items, total

    def _candidates(self, table: Table, shop_ids: list[int], q: ListQuery) -> list[tuple[int, int, int]]:
        out: list[tuple[int, int, int]] = []
        ua = _lower_bound(q.updated_after, q.updated_inclusive) if q.updated_after is not None else None
        ca = _lower_bound(q.created_after, False) if q.created_after is not None else None
        filters = list(q.filters.items())
        search = q.search.lower() if q.search else None
        visible = table.visible
        for shop_id in shop_ids:
            idx = table.index.get(shop_id)
            if idx is None:
                continue
            if ua is not None:
                keys = ((u, oid) for u, oid in idx.by_updated.irange((ua, 0)))
                source = ((idx.keys[oid][0], u, oid) for u, oid in keys)
            elif ca is not None:
                source = ((c, idx.keys[oid][1], oid) for c, oid in idx.by_created.irange((ca, 0)))
            else:
                source = ((c, u, oid) for oid, (c, u) in idx.keys.items())
            for c, u, oid in source:
                if ca is not None and c < ca:
                    continue
                if filters or search:
                    obj = visible[oid]
                    if not _matches(obj, filters, search):
                        continue
                out.append((c, u, oid))
        return out

    # ------------------------------------------------------------------ truth
    def truth_bytes(self) -> bytes:
        parts = [b'{"clock":', orjson.dumps(iso(self.clock)), b',"objects":{']
        first = True
        for name in RESOURCES:
            table = self.tables[name]
            if not first:
                parts.append(b",")
            first = False
            parts.append(orjson.dumps(name) + b":[")
            parts.append(b",".join(self.detail_bytes(name, oid) for oid in sorted(table.visible)))
            parts.append(b"]")
        parts.append(b'},"deleted":')
        parts.append(orjson.dumps({name: sorted(self.tables[name].deleted) for name in RESOURCES}))
        parts.append(b"}")
        return b"".join(parts)


def _matches(obj: dict, filters: list[tuple[str, Any]], search: str | None) -> bool:
    for field, value in filters:
        have = obj.get(field)
        if field == "vin":
            if have is None or value.upper() not in have:
                return False
        elif field == "make":
            if have is None or have.lower() != value.lower():
                return False
        elif have != value:
            return False
    if search:
        hay = " ".join(str(obj.get(f) or "") for f in ("first_name", "last_name", "company_name", "email", "phone")).lower()
        if search not in hay:
            # phone digits match regardless of punctuation
            digits = "".join(ch for ch in search if ch.isdigit())
            phone_digits = "".join(ch for ch in str(obj.get("phone") or "") if ch.isdigit())
            punctuation_free = search.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
            if not digits or digits != punctuation_free or digits not in phone_digits:
                return False
    return True

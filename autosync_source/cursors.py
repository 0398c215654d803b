"""Where each (resource, shop) pair left off.

Why not dlt's `Incremental`: it keeps one cursor per resource, but a resource here reads many
shops. With one shared cursor, a shop added later (or one that failed while others went on)
would start from the others' position and its older rows would never be read. So the
cursor lives in `dlt.current.resource_state()` keyed by shop; dlt commits that state with
the load package, so a run that fails before its load commits leaves every cursor where it
was.

A cursor is the largest `updated_at` listed for the shop, plus a fingerprint of each row
listed in the lag window behind it (`updated_at` within `lag_seconds` of the cursor, the cursor's
own second included). The next run asks for `updated_after = cursor - lag - 1s` (the filter is
strict and the clock has one-second precision: a record changed later in the cursor's second
must not be missed) and drops the rows whose fingerprint it already holds: an unchanged record in
the window costs no detail call and loads nothing, while a record that became visible late
(a late commit, older `updated_at`, never listed) or was edited again within one second (same
`updated_at`, other content) is loaded.

A checkpoint (checkpoints.py) writes a cursor part-way through a listing: the listing is
ascending by `updated_at`, so every row at or before the last row handled has been handled;
rows of that same second not yet listed are listed again by the next run (one second back)
and are not in the fingerprints, so they load.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Dict, List, Mapping, MutableMapping, Optional, Tuple

from autosync_source.paging import format_ts, parse_ts

ONE_SECOND = timedelta(seconds=1)


def fingerprint(row: Dict[str, Any]) -> str:
    """A short digest of a listed row as the API sent it."""
    canonical = json.dumps(row, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()


@dataclass
class ShopCursor:
    updated_at: Optional[datetime] = None
    # str(id) -> fingerprint of the rows listed within the lag window behind updated_at
    recent_rows: Dict[str, str] = field(default_factory=dict)
    # ids recorded by older state without a fingerprint: they match any row at updated_at
    legacy_ids: Tuple[str, ...] = ()
    partial: bool = False  # written at a checkpoint: the listing stopped here and goes on
    # when the listing that wrote this cursor started (this machine's clock): a second older than
    # that by more than the lag was complete when it was read (paging.py's residual case)
    listed_at: Optional[datetime] = None

    def anchor(self, start_date: datetime, lag_seconds: int) -> datetime:
        """The strict `updated_after` bound of the next listing."""
        if self.updated_at is None:
            return start_date - ONE_SECOND  # start_date itself is included
        return self.updated_at - timedelta(seconds=lag_seconds) - ONE_SECOND

    def already_loaded(self, record_id: Any, updated_at: datetime, row_fingerprint: str) -> bool:
        """This exact version of the row was loaded by an earlier run (its fingerprint is known).

        The fingerprint covers the whole list row, `updated_at` included, so a match means the
        same version wherever in the window it sits."""
        key = str(record_id)
        if self.recent_rows.get(key) == row_fingerprint:
            return True
        return updated_at == self.updated_at and key in self.legacy_ids

    def advanced(self, listed: Dict[Any, Tuple[datetime, str]], lag_seconds: int = 0,
                 listed_at: Optional[datetime] = None) -> "ShopCursor":
        """The cursor after a listing (id -> (updated_at, fingerprint) of every row handled, in
        full or up to a checkpoint): never moves backwards. It remembers the fingerprints of the
        rows within `lag_seconds` of the new position: the next run lists them again."""
        if not listed:
            return self
        newest = max(stamp for stamp, _ in listed.values())
        if self.updated_at is not None and newest < self.updated_at:
            return self
        window_start = newest - timedelta(seconds=max(0, lag_seconds))
        rows: Dict[str, str] = {}
        legacy: Tuple[str, ...] = ()
        if newest == self.updated_at:
            # Nothing newer: what the old window knew still holds (the rows may not be re-listed
            # when the listing stopped at a checkpoint).
            rows, legacy = dict(self.recent_rows), self.legacy_ids
        rows.update({str(record_id): fp for record_id, (stamp, fp) in listed.items() if window_start <= stamp <= newest})
        return ShopCursor(newest, rows, legacy, listed_at=listed_at)

    def to_state(self) -> Dict[str, Any]:
        state: Dict[str, Any] = {
            "updated_at": format_ts(self.updated_at) if self.updated_at else None,
            "recent_rows": dict(sorted(self.recent_rows.items())),
        }
        if self.legacy_ids:
            state["ids_at_cursor"] = list(self.legacy_ids)
        if self.partial:
            state["partial"] = True
        if self.listed_at is not None:
            state["listed_at"] = format_ts(self.listed_at)
        return state

    @classmethod
    def from_state(cls, value: Optional[Dict[str, Any]]) -> "ShopCursor":
        if not value or not value.get("updated_at"):
            return cls()
        # `rows_at_cursor` is the older name (fingerprints at the cursor's second only), still
        # found in state written by older versions: a subset of the window.
        rows = dict(value.get("rows_at_cursor") or {})
        rows.update(value.get("recent_rows") or {})
        legacy = tuple(str(record_id) for record_id in value.get("ids_at_cursor") or [])
        listed_at = parse_ts(value["listed_at"]) if value.get("listed_at") else None
        return cls(parse_ts(value["updated_at"]), rows, legacy, bool(value.get("partial")), listed_at)


# -- the state's shape: nothing else walks it -----------------------------------------------
# dlt keeps a resource's state at pipeline_state["sources"][<source>]["resources"][<resource>];
# a shop's cursor is under that resource's "shops", keyed by the shop id as a string.
SOURCE_NAME = "autosync"


def _resources(pipeline_state: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((pipeline_state.get("sources") or {}).get(SOURCE_NAME) or {}).get("resources") or {}


def cursor_in_source_state(source_state: Mapping[str, Any], resource: str, shop_id: Any) -> ShopCursor:
    """The shop's cursor of `resource` in the source's state (`dlt.current.source_state()`)."""
    return get_cursor(((source_state.get("resources") or {}).get(resource) or {}), shop_id)


def get_cursor(resource_state: Mapping[str, Any], shop_id: Any) -> ShopCursor:
    """The shop's cursor in one resource's state (`dlt.current.resource_state()` in the source)."""
    return ShopCursor.from_state((resource_state.get("shops") or {}).get(str(shop_id)))


def set_cursor(resource_state: MutableMapping[str, Any], shop_id: Any, cursor: ShopCursor) -> None:
    """Write the shop's cursor into one resource's state (never an empty cursor)."""
    if cursor.updated_at is not None:
        resource_state.setdefault("shops", {})[str(shop_id)] = cursor.to_state()


def shop_cursors(pipeline_state: Mapping[str, Any], shop_id: Any) -> Dict[str, ShopCursor]:
    """{resource: the shop's cursor} in a pipeline's state (`pipeline.state`), resources that have one."""
    out: Dict[str, ShopCursor] = {}
    for name, resource_state in _resources(pipeline_state).items():
        if str(shop_id) in (resource_state.get("shops") or {}):
            out[name] = get_cursor(resource_state, shop_id)
    return out


def cursor_positions(pipeline_state: Mapping[str, Any], shop_id: Any) -> Dict[str, Optional[str]]:
    """{resource: the shop's `updated_at` cursor as text} (the sync log, the start-date check)."""
    return {name: format_ts(cursor.updated_at) if cursor.updated_at else None
            for name, cursor in shop_cursors(pipeline_state, shop_id).items()}


def shops_with_cursors(pipeline_state: Mapping[str, Any], resource: str) -> List[str]:
    """The shops (ids as text) that hold a cursor of `resource` in a pipeline's state."""
    return sorted((_resources(pipeline_state).get(resource) or {}).get("shops") or {})


def rewind_cursor(pipeline_state: MutableMapping[str, Any], resource: str, shop_id: Any, before: datetime) -> bool:
    """Move a shop's cursor back to just before `before` when it has passed it (the delete
    reconciliation found a row the syncs passed by); True when it moved. The fingerprints go:
    every row from there on is read again."""
    resources = _resources(pipeline_state)
    resource_state = resources.get(resource)
    if resource_state is None:
        return False
    cursor = get_cursor(resource_state, shop_id)
    if cursor.updated_at is None or cursor.updated_at < before:
        return False  # the next sync reads it anyway
    set_cursor(resource_state, shop_id, ShopCursor(before - ONE_SECOND))  # type: ignore[arg-type]
    return True

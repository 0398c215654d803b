"""Where each (resource, shop) pair left off.

Why not dlt's `Incremental`: it keeps one cursor per resource, but a resource here reads many
shops. With one shared cursor, a shop added later (or one that failed while others went on)
would start from the others' position and its older rows would never be read. So the
cursor lives in `dlt.current.resource_state()` keyed by shop; dlt commits that state with
the load package, so a run that fails before its load commits leaves every cursor where it
was.

A cursor is the largest `updated_at` listed for the shop, plus a fingerprint of each row
listed at exactly that second. The next run asks for `updated_after = cursor - lag - 1s` (the
filter is strict and the clock has one-second precision: a record changed later in that same
second must not be missed) and drops the rows it already loaded at that second unchanged, so
an unchanged shop loads nothing while a second edit within the same second (same `updated_at`,
other content) is still loaded.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Dict, List, MutableMapping, Optional, Tuple

from autosync_source.paging import format_ts, parse_ts

ONE_SECOND = timedelta(seconds=1)
UNKNOWN = ""  # a row recorded without a fingerprint (state from before fingerprints): same as any


def fingerprint(row: Dict[str, Any]) -> str:
    """A short digest of a listed row as the API sent it."""
    canonical = json.dumps(row, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()


@dataclass
class ShopCursor:
    updated_at: Optional[datetime] = None
    rows_at_cursor: Dict[str, str] = field(default_factory=dict)  # str(id) -> fingerprint

    def anchor(self, start_date: datetime, lag_seconds: int) -> datetime:
        """The strict `updated_after` bound of the next listing."""
        if self.updated_at is None:
            return start_date - ONE_SECOND  # start_date itself is included
        return self.updated_at - timedelta(seconds=lag_seconds) - ONE_SECOND

    def already_loaded(self, record_id: Any, updated_at: datetime, row_fingerprint: str) -> bool:
        if updated_at != self.updated_at:
            return False
        known = self.rows_at_cursor.get(str(record_id))
        return known is not None and (known == UNKNOWN or known == row_fingerprint)

    def advanced(self, listed: Dict[Any, Tuple[datetime, str]]) -> "ShopCursor":
        """The cursor after a complete listing (id -> (updated_at, fingerprint)): never moves backwards."""
        if not listed:
            return self
        newest = max(stamp for stamp, _ in listed.values())
        if self.updated_at is not None and newest < self.updated_at:
            return self
        rows = dict(self.rows_at_cursor) if newest == self.updated_at else {}
        rows.update({str(record_id): fp for record_id, (stamp, fp) in listed.items() if stamp == newest})
        return ShopCursor(newest, rows)

    def to_state(self) -> Dict[str, Any]:
        return {
            "updated_at": format_ts(self.updated_at) if self.updated_at else None,
            "rows_at_cursor": dict(sorted(self.rows_at_cursor.items())),
        }

    @classmethod
    def from_state(cls, value: Optional[Dict[str, Any]]) -> "ShopCursor":
        if not value or not value.get("updated_at"):
            return cls()
        rows = dict(value.get("rows_at_cursor") or {})
        rows.update({str(record_id): UNKNOWN for record_id in value.get("ids_at_cursor") or []})
        return cls(parse_ts(value["updated_at"]), rows)


class CursorBook:
    """The cursors of one resource, one per shop, inside the resource's dlt state."""

    def __init__(self, resource_state: MutableMapping[str, Any]) -> None:
        self._shops: MutableMapping[str, Any] = resource_state.setdefault("shops", {})

    def get(self, shop_id: int) -> ShopCursor:
        return ShopCursor.from_state(self._shops.get(str(shop_id)))

    def set(self, shop_id: int, cursor: ShopCursor) -> None:
        if cursor.updated_at is not None:
            self._shops[str(shop_id)] = cursor.to_state()

    def shop_ids(self) -> List[str]:
        return list(self._shops)

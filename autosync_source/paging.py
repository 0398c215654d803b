"""Paging a list by `updated_after`, sorted ascending by `updated_at`, without losing rows.

Page numbers alone are not a snapshot: a record updated while we page moves to the end of
the order, every row behind it shifts one place forward, and the row at the page boundary
is never seen. A value anchor (`updated_after=<last updated_at seen>`) does not shift, but
re-anchoring after every page re-reads the rows of the last second each time (the filter is
strict and timestamps have one-second precision), which costs extra pages for no reason
when nothing moves.

So this paginator pages by page number under a fixed anchor while the result set is stable
(the cheapest possible: ceil(rows/100) requests) and switches to re-anchoring as soon as it
sees that the set changed under it:
- a row listed earlier comes back with a newer `updated_at` (it moved to the end): go back to
  one second before where it was first listed and continue with value anchors;
- `total` shrank (a listed row was deleted): go back to one second before the previous page's
  last row.
In anchor mode each page re-anchors on one second before its last row; when a whole page
shares one second (more ties than a page) it falls back to page numbers under that anchor.
Rows seen twice are dropped by the caller (ids already emitted in this run).

Known limit: a creation and a deletion between the same two page requests leave `total`
unchanged; if the deleted row was on a page already read, one row can be skipped. The
nightly delete reconciliation (full id scan) is the backstop.

Why a dlt BasePaginator: RESTClient then owns the request loop; the paginator only decides
the next request from the last answer (update_state / update_request).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Set, Tuple

from requests import Request, Response

from dlt.sources.helpers.rest_client.paginators import BasePaginator

from autosync_source.client import parsed_body
from autosync_source.settings import PAGE_SIZE, UPDATED_AT

ONE_SECOND = timedelta(seconds=1)


def parse_ts(value: str) -> datetime:
    """An API timestamp (`2024-01-15T10:30:00Z`) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_ts(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class UpdatedAtPaginator(BasePaginator):
    def __init__(
        self,
        anchor: Optional[datetime],
        page_size: int = PAGE_SIZE,
        cursor_field: str = UPDATED_AT,
        sort_by_cursor: bool = True,
    ) -> None:
        super().__init__()
        self.anchor = anchor  # strict lower bound sent as updated_after; None: no filter
        self.page = 1
        self.page_size = page_size
        self.cursor_field = cursor_field
        self.sort_by_cursor = sort_by_cursor
        self.mode = "pages"
        self.listed: Dict[Any, str] = {}  # id -> updated_at as last listed
        self.requests_made: Set[Tuple[Optional[str], int]] = set()
        self.last_total: Optional[int] = None
        self.previous_last_ts: Optional[datetime] = None
        self.filter_ignored = False
        self.last_page_total: Optional[int] = None  # `total` of the latest answer (for progress)

    # -- dlt BasePaginator ------------------------------------------------------------
    def init_request(self, request: Request) -> None:
        self._apply(request)

    def update_state(self, response: Response, data: Optional[List[Any]] = None) -> None:
        rows = data or []
        pagination = (parsed_body(response) or {}).get("pagination") or {}
        total = _int_or_none(pagination.get("total"))
        self.last_page_total = total
        moved_from = self._note_rows(rows)
        can_anchor = self.sort_by_cursor and not self.filter_ignored
        shrank = (
            total is not None
            and self.last_total is not None
            and total < self.last_total
            and self.previous_last_ts is not None
        )
        last_ts = parse_ts(rows[-1][self.cursor_field]) if rows else self.previous_last_ts

        if can_anchor and self.mode == "pages" and moved_from is not None:
            # Checked before the end test: a moved row typically shows up on the last page.
            self._reanchor(moved_from - ONE_SECOND)
        elif can_anchor and self.mode == "pages" and shrank:
            self._reanchor(self.previous_last_ts - ONE_SECOND)  # type: ignore[operator]
        elif not rows or self._is_last_page(pagination, rows):
            self._has_next_page = False
            return
        elif self.mode == "anchor":
            candidate = last_ts - ONE_SECOND  # type: ignore[operator]
            if self.anchor is None or candidate > self.anchor:
                self._reanchor(candidate)
            else:
                self.page += 1  # the whole page shares one second: page on under this anchor
        else:
            self.page += 1
        # Never send the same request twice (e.g. a server that ignores the anchor).
        while (self._anchor_param(), self.page) in self.requests_made:
            self.page += 1
        self.last_total = total
        self.previous_last_ts = last_ts

    def update_request(self, request: Request) -> None:
        self._apply(request)

    # -- helpers ----------------------------------------------------------------------
    def stop(self) -> None:
        """The caller has what it needs (an end_date was passed): no more pages."""
        self._has_next_page = False

    def _apply(self, request: Request) -> None:
        params = dict(request.params or {})
        params["per_page"] = self.page_size
        params["page"] = self.page
        if self.sort_by_cursor:
            params["sort"], params["order"] = self.cursor_field, "asc"
        else:
            params["sort"], params["order"] = "id", "asc"
        anchor = self._anchor_param()
        if anchor is None:
            params.pop("updated_after", None)
        else:
            params["updated_after"] = anchor
        request.params = params
        self.requests_made.add((anchor, self.page))

    def _anchor_param(self) -> Optional[str]:
        return format_ts(self.anchor) if self.anchor is not None else None

    def _reanchor(self, anchor: datetime) -> None:
        self.mode = "anchor"
        self.anchor = anchor
        self.page = 1
        self.last_total = None

    def _note_rows(self, rows: List[Dict[str, Any]]) -> Optional[datetime]:
        """Remember listed rows; return the earliest old position of a row that moved."""
        moved_from: Optional[datetime] = None
        anchor = self.anchor
        for row in rows:
            row_id, stamp = row.get("id"), row.get(self.cursor_field)
            if stamp is None:
                continue
            before = self.listed.get(row_id)
            if before is not None and before != stamp:
                old = parse_ts(before)
                moved_from = old if moved_from is None or old < moved_from else moved_from
            self.listed[row_id] = stamp
            if anchor is not None and self.mode == "pages" and parse_ts(stamp) <= anchor:
                # The endpoint ignores updated_after (or treats it as inclusive at the edge):
                # anchors cannot be trusted, page numbers are the only way through.
                if parse_ts(stamp) < anchor:
                    self.filter_ignored = True
        return moved_from

    def _is_last_page(self, pagination: Dict[str, Any], rows: List[Any]) -> bool:
        if "has_more" in pagination:
            return not pagination["has_more"]
        pages = _int_or_none(pagination.get("pages"))
        if pages is not None:
            return self.page >= pages
        total = _int_or_none(pagination.get("total"))
        if total is not None:
            return self.page * self.page_size >= total
        return len(rows) < self.page_size


def _int_or_none(value: Any) -> Optional[int]:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None

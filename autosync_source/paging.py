"""Paging a list by `updated_after`, sorted ascending by `updated_at`, without losing rows.

Page numbers alone are not a snapshot: a record updated or hard-deleted while we page leaves
its place, every row behind it shifts one place forward, and the row at the page boundary is
never seen. Detecting the shift is not possible in general: a deletion and a creation between
the same two requests leave `total` unchanged, and an update of a row older than the anchor
adds one row to the filtered set just as a creation does.

So every page re-anchors on a value, which does not shift: the next request is page 1 of
`updated_after = <the last row's second> - 1s` (the filter is strict and timestamps have
one-second precision, so the rows of that last second are listed again; the caller drops the
ids it already read). Rows changed meanwhile move behind the anchor and are read further on;
rows deleted before the anchor cannot move anything after it. This costs about one re-read row
per page (`updated_after` and the page cut fall on the same second) and nothing when the list
is stable enough to fit one page.

The residual case: more rows in one second than a page holds (bulk imports and bulk edits do
this). The anchor cannot split a second and the contract offers no tie-breaker (sorts are
`created_at`, `updated_at`, `id`; no id filter, no `updated_before`), so such a group is read
by page numbers under one anchor, where a delete or an update inside the group between two of
its pages can hide a row of it. The paginator says when it did this (`residual_seconds`): the
caller reports it and has the delete reconciliation check that shop and resource (it compares
every id and version with the warehouse and rewinds the cursor before what is missing).

Fallbacks, as before: an endpoint that ignores `updated_after` (a listed row older than the
anchor shows it) is paged by page numbers; an endpoint that refuses `sort=updated_at` is paged
in id order (`sort_by_cursor=False`) under a fixed anchor. Both rely on the reconciliation for
a row hidden by a delete during the listing.

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
        self.requests_made: Set[Tuple[Optional[str], int]] = set()
        self.filter_ignored = False
        self.reanchors = 0  # value anchors taken (each one costs the re-read of one second)
        # seconds read by page numbers under one anchor (more rows than a page): the residual case
        self.residual_seconds: List[str] = []
        self.last_page_total: Optional[int] = None  # `total` of the latest answer (for progress)
        self.started_at = datetime.now(timezone.utc)  # before the first request (cursors.listed_at)

    # -- dlt BasePaginator ------------------------------------------------------------
    def init_request(self, request: Request) -> None:
        self._apply(request)

    def update_state(self, response: Response, data: Optional[List[Any]] = None) -> None:
        rows = data or []
        pagination = (parsed_body(response) or {}).get("pagination") or {}
        self.last_page_total = _int_or_none(pagination.get("total"))
        self._check_filter(rows)
        if not rows or self._is_last_page(pagination, rows):
            self._has_next_page = False
            return
        last_ts = _stamp(rows[-1], self.cursor_field)
        if self.sort_by_cursor and not self.filter_ignored and last_ts is not None:
            candidate = last_ts - ONE_SECOND
            if self.anchor is None or candidate > self.anchor:
                # Also when the whole page is that one second: page 1 again under the new anchor
                # costs one request, but reads what moved since (page 2 straight away would not).
                self._reanchor(candidate)
            else:
                # The whole page shares one second (the anchor's next): page on under this
                # anchor, the only way through a group larger than a page.
                self._page_on(last_ts)
        else:
            self.page += 1
        # Never send the same request twice (e.g. a server that ignores the anchor).
        while (self._anchor_param(), self.page) in self.requests_made:
            self.page += 1

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

    def _page_on(self, second: datetime) -> None:
        """The next page number under this anchor, through a second of more rows than a page."""
        text = format_ts(second)
        if text not in self.residual_seconds:
            self.residual_seconds.append(text)
        self.page += 1

    def _reanchor(self, anchor: datetime) -> None:
        self.anchor = anchor
        self.page = 1
        self.reanchors += 1

    def _check_filter(self, rows: List[Dict[str, Any]]) -> None:
        """A row older than the anchor: the endpoint ignores updated_after, anchors cannot be
        trusted and page numbers are the only way through (every answer is the whole list)."""
        if self.anchor is None or self.filter_ignored:
            return
        for row in rows:
            stamp = _stamp(row, self.cursor_field)
            if stamp is not None and stamp < self.anchor:
                # This answer is page 1 of the whole list (again, after a re-anchor): page 2 next.
                self.filter_ignored = True
                return

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


def _stamp(row: Dict[str, Any], field: str) -> Optional[datetime]:
    value = row.get(field)
    return parse_ts(value) if value else None


def _int_or_none(value: Any) -> Optional[int]:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None

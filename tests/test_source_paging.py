"""The paginator against a small in-memory list that changes while it is paged.

No HTTP: a fake list endpoint answers the requests the paginator builds, exactly as the
contract describes (strict updated_after, ascending updated_at, page numbers, has_more).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Callable, Dict, List, Optional

import pytest
from requests import Request, Response

from autosync_source.paging import UpdatedAtPaginator, format_ts, parse_ts

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


class FakeList:
    def __init__(self, stamps: Dict[int, datetime], legacy: bool = False, ignore_filter: bool = False):
        self.rows = {record_id: stamp for record_id, stamp in stamps.items()}
        self.legacy = legacy
        self.ignore_filter = ignore_filter
        self.requests: List[dict] = []

    def answer(self, params: dict) -> Response:
        self.requests.append(dict(params))
        after = params.get("updated_after")
        rows = sorted(self.rows.items(), key=lambda item: (item[1], item[0]))
        if after is not None and not self.ignore_filter:
            rows = [row for row in rows if row[1] > parse_ts(after)]
        per_page, page = int(params["per_page"]), int(params["page"])
        chunk = rows[(page - 1) * per_page: page * per_page]
        pagination = {"page": page, "per_page": per_page, "total": len(rows)}
        if not self.legacy:
            pages = -(-len(rows) // per_page)
            pagination.update(pages=pages, has_more=page < pages)
        body = {"success": True, "data": [{"id": i, "updated_at": format_ts(s)} for i, s in chunk], "pagination": pagination}
        response = Response()
        response.status_code = 200
        response._content = json.dumps(body).encode()
        return response


def page_through(
    server: FakeList,
    paginator: UpdatedAtPaginator,
    between_pages: Optional[Callable[[int], None]] = None,
) -> List[int]:
    """Drive the paginator like RESTClient.paginate does; return every id listed."""
    request = Request("GET", "http://x/list", params={})
    paginator.init_request(request)
    seen: List[int] = []
    for page_number in range(1, 1000):
        response = server.answer(request.params)
        data = json.loads(response.content)["data"]
        paginator.update_state(response, data)
        paginator.update_request(request)
        seen.extend(row["id"] for row in data)
        if not paginator.has_next_page:
            return seen
        if between_pages:
            between_pages(page_number)
    raise AssertionError("paging did not end")


def spread(n: int, step: int = 10) -> Dict[int, datetime]:
    return {i: T0 + timedelta(seconds=step * i) for i in range(1, n + 1)}


def re_anchored_requests(rows: int, per_page: int) -> int:
    """A stable list of distinct seconds: each page after the first re-reads its last row."""
    return 1 + -(-max(0, rows - per_page) // (per_page - 1))


def test_a_stable_list_costs_one_request_per_page_plus_one_re_read_row_per_page():
    server = FakeList(spread(25))
    paginator = UpdatedAtPaginator(T0 - timedelta(seconds=1), page_size=10)
    seen = page_through(server, paginator)
    assert sorted(set(seen)) == list(range(1, 26))
    assert len(seen) - len(set(seen)) == 2  # rows 10 and 19, the last second of pages 1 and 2
    assert len(server.requests) == 3 == re_anchored_requests(25, 10)  # ceil(25 / 10) here
    assert all(r["sort"] == "updated_at" and r["order"] == "asc" and r["per_page"] == 10 for r in server.requests)
    # every request is page 1 of a value anchor: one second before the last row read
    assert [r["page"] for r in server.requests] == [1, 1, 1]
    assert [r["updated_after"] for r in server.requests] == [
        format_ts(T0 - timedelta(seconds=1)), format_ts(T0 + timedelta(seconds=99)), format_ts(T0 + timedelta(seconds=189))]
    assert paginator.residual_seconds == []


def test_a_record_updated_while_paging_does_not_hide_its_neighbour():
    server = FakeList(spread(25))

    def touch_an_already_read_row(page_number: int) -> None:
        if page_number == 1:
            server.rows[3] = T0 + timedelta(hours=5)  # moves to the end: rows shift one place

    seen = page_through(server, UpdatedAtPaginator(T0 - timedelta(seconds=1), page_size=10), touch_an_already_read_row)
    assert set(seen) == set(range(1, 26)), "a row was skipped"
    # Plain page numbers would have lost row 11 (it shifted onto page 1 after page 1 was read).
    plain = FakeList(spread(25))
    naive = []
    for page in (1, 2, 3):
        answer = plain.answer({"per_page": 10, "page": page, "updated_after": format_ts(T0)})
        naive += [row["id"] for row in json.loads(answer.content)["data"]]
        if page == 1:
            plain.rows[3] = T0 + timedelta(hours=5)
    assert 11 not in naive


def test_a_deleted_row_does_not_hide_its_neighbour():
    server = FakeList(spread(25))

    def delete_an_already_read_row(page_number: int) -> None:
        if page_number == 1:
            del server.rows[2]

    seen = page_through(server, UpdatedAtPaginator(T0 - timedelta(seconds=1), page_size=10), delete_an_already_read_row)
    assert set(range(1, 26)) - {2} <= set(seen)  # 2 was read before it was deleted


def test_more_ties_than_a_page_are_all_read():
    stamps = {i: T0 + timedelta(seconds=5) for i in range(1, 36)}  # 35 rows in one second
    stamps.update({i: T0 + timedelta(seconds=i) for i in range(36, 41)})
    server = FakeList(stamps)

    def keep_moving(page_number: int) -> None:
        if page_number == 1:
            server.rows[1] = T0 + timedelta(hours=1)  # force anchor mode, then tie paging

    paginator = UpdatedAtPaginator(T0, page_size=10)
    seen = page_through(server, paginator, keep_moving)
    assert set(seen) == set(range(1, 41))
    # 35 rows in one second: read by page numbers under one anchor, and said so
    assert paginator.residual_seconds == [format_ts(T0 + timedelta(seconds=5))]


@pytest.mark.parametrize("total", [0, 9, 10, 11, 30])
def test_the_older_envelope_without_pages_or_has_more_still_stops(total):
    server = FakeList(spread(total), legacy=True)
    seen = page_through(server, UpdatedAtPaginator(T0, page_size=10))
    assert sorted(set(seen)) == list(range(1, total + 1))
    assert len(server.requests) == max(1, re_anchored_requests(total, 10))


def test_an_endpoint_that_ignores_updated_after_is_paged_by_numbers_without_looping():
    server = FakeList(spread(25), ignore_filter=True)
    paginator = UpdatedAtPaginator(T0 + timedelta(seconds=100), page_size=10)
    seen = page_through(server, paginator)
    assert sorted(seen) == list(range(1, 26))
    assert paginator.filter_ignored and len(server.requests) == 3


def test_a_delete_and_a_creation_between_two_pages_hide_nothing():
    """`total` does not change, so nothing on the page numbers' side could tell the shift."""
    server = FakeList(spread(25))

    def delete_one_read_and_create_one(page_number: int) -> None:
        if page_number == 1:
            del server.rows[2]
            server.rows[26] = T0 + timedelta(hours=5)

    seen = page_through(server, UpdatedAtPaginator(T0 - timedelta(seconds=1), page_size=10), delete_one_read_and_create_one)
    assert set(range(1, 27)) - {2} <= set(seen)


def test_an_older_row_updated_between_two_pages_hides_nothing():
    """An incremental listing: a row older than the anchor changes and joins the filtered set."""
    stamps = spread(25)
    stamps[0] = T0 - timedelta(hours=1)  # before the anchor: not listed at first
    server = FakeList(stamps)

    def delete_one_read_and_update_an_old_one(page_number: int) -> None:
        if page_number == 1:
            del server.rows[3]
            server.rows[0] = T0 + timedelta(hours=5)

    seen = page_through(server, UpdatedAtPaginator(T0, page_size=10), delete_one_read_and_update_an_old_one)
    assert set(range(0, 26)) - {3} <= set(seen)


def test_a_second_read_by_page_numbers_counts_until_a_listing_started_a_lag_after_it():
    from autosync_source.cursors import ShopCursor
    from autosync_source.sync import unseen_seconds

    second = T0 + timedelta(seconds=5)
    seconds = [format_ts(second)]
    lag = 900
    assert unseen_seconds(seconds, ShopCursor(), lag) == seconds  # first sync
    # the last listing started within the lag of that second: rows may have landed in it since
    soon = ShopCursor(second, listed_at=second + timedelta(seconds=60))
    assert unseen_seconds(seconds, soon, lag) == seconds
    # it started more than the lag after it: it read that second whole
    later = ShopCursor(second, listed_at=second + timedelta(seconds=lag + 1))
    assert unseen_seconds(seconds, later, lag) == []
    # a checkpoint's partial cursor, or state written before listed_at existed: counts
    assert unseen_seconds(seconds, ShopCursor(second, listed_at=later.listed_at, partial=True), lag) == seconds
    assert unseen_seconds(seconds, ShopCursor(second), lag) == seconds
    # a second after the cursor was never read by that listing
    assert unseen_seconds([format_ts(second + timedelta(seconds=1))], later, lag) == [format_ts(second + timedelta(seconds=1))]
    # and the state keeps it
    assert ShopCursor.from_state(later.to_state()).listed_at == later.listed_at

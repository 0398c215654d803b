"""The first line of a sync: how many requests and how long, from one page per list.

Before the readers start, page 1 of the first listings of every resource is read (the same
request the reader would send first: same anchor, same sort). Its `total` says how many rows
that listing holds, its rows how many need a detail call; listings not sampled are counted as
the average of their resource's sampled ones. The reader of a sampled listing then starts from
the page already read instead of asking again, so the estimate costs no request of its own
(unless a run stops at a checkpoint before reaching a sampled listing: at most the sample).
Memory is bounded by the sample size, whatever the number of shops.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from autosync_source.client import NO_HOOKS, AutosyncRESTClient, InsufficientScope
from autosync_source.cursors import ShopCursor
from autosync_source.errors import ApiError, AutosyncError
from autosync_source.paging import UpdatedAtPaginator
from autosync_source.progress import Progress
from autosync_source.settings import Endpoint

logger = logging.getLogger("autosync_source")

# Pages read ahead in all (memory: at most this many pages of 100 rows held at once).
SAMPLE_PAGES = 48


@dataclass
class FirstPage:
    paginator: UpdatedAtPaginator
    rows: List[Dict[str, Any]]
    rest: Iterator[Any]  # the paginate generator, suspended after page 1
    anchor: Any = None  # the anchor and sort it was read under (the reader checks they still hold)
    sort_by_cursor: bool = True
    failure: Optional[BaseException] = None  # the request failed: the reader raises this, not asks again


class FirstPages:
    """Page 1 of sampled listings, handed to their readers once."""

    def __init__(self) -> None:
        self._pages: Dict[Tuple[str, Any], FirstPage] = {}
        self._lock = threading.Lock()

    def put(self, resource: str, shop_id: Any, page: FirstPage) -> None:
        with self._lock:
            self._pages[(resource, shop_id)] = page

    def holds(self, shop_id: Any) -> bool:
        """A page of this shop was read ahead (its reader must run in this process to take it)."""
        with self._lock:
            return any(shop == shop_id for _, shop in self._pages)

    def take(self, resource: str, shop_id: Any) -> Optional[FirstPage]:
        with self._lock:
            return self._pages.pop((resource, shop_id), None)


def sample_first_pages(
    client: AutosyncRESTClient,
    endpoints: Sequence[Endpoint],
    lists: Dict[str, Sequence[int]],
    cursor_of: Callable[[str, int], ShopCursor],
    window: Any,
    progress: Progress,
    first_pages: FirstPages,
    max_workers: int,
) -> None:
    """Read page 1 of the first listings, plan every listing in `progress`, log the estimate.

    `lists`: resource -> the shops whose listing this run reads (every shop of the run: the
    engine estimates all its shops at once); `cursor_of(resource, shop)`: where that listing
    starts (the reader takes the page only if it starts there too)."""
    shop_endpoints = [endpoint for endpoint in endpoints if endpoint.shop_scoped and lists.get(endpoint.name)]
    if not shop_endpoints:
        return
    per_resource = max(1, SAMPLE_PAGES // len(shop_endpoints))
    jobs = [(endpoint, shop_id) for rank in range(per_resource) for endpoint in shop_endpoints
            if rank < len(lists[endpoint.name]) for shop_id in [lists[endpoint.name][rank]]]

    def fetch(job: Tuple[Endpoint, int]) -> Optional[Tuple[Endpoint, int, FirstPage]]:
        endpoint, shop_id = job
        cursor = cursor_of(endpoint.name, shop_id)
        anchor = cursor.anchor(window.start_date, window.lag_seconds)
        paginator = UpdatedAtPaginator(anchor, window.page_size, endpoint.cursor, endpoint.name not in client.sort_refused)
        pages = client.paginate(endpoint.path.format(shop_id=shop_id), paginator=paginator, hooks=dict(NO_HOOKS))
        try:
            rows = next(pages)
        except StopIteration:
            return None
        except (ApiError, InsufficientScope, AutosyncError) as refused:
            # Handed to the reader, which treats it as its own first request's answer (sort
            # refused: falls back; anything else: fails as it would have): never asked twice.
            logger.debug("estimate: %s of shop %s not sampled: %s", endpoint.name, shop_id, refused)
            first_pages.put(endpoint.name, shop_id, FirstPage(paginator, [], iter(()), anchor, paginator.sort_by_cursor, refused))
            return None
        return endpoint, shop_id, FirstPage(paginator, list(rows), pages, anchor, paginator.sort_by_cursor)

    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="autosync-estimate") as pool:
        results = [result for result in pool.map(fetch, jobs) if result is not None]

    sampled_totals: Dict[str, List[int]] = {}
    shares: Dict[str, float] = {}
    for endpoint, shop_id, page in results:
        total = page.paginator.last_page_total
        if total is None:
            total = len(page.rows)
        needing = sum(1 for row in page.rows if any(child.name not in row for child in endpoint.children))
        share = needing / len(page.rows) if page.rows else 0.0
        shares[endpoint.name] = max(shares.get(endpoint.name, 0.0), share)
        sampled_totals.setdefault(endpoint.name, []).append(total)
        progress.planned(endpoint.name, shop_id, total, share)
        first_pages.put(endpoint.name, shop_id, page)
    for endpoint in shop_endpoints:
        totals = sampled_totals.get(endpoint.name) or [0]
        average = round(sum(totals) / len(totals))
        for shop_id in lists[endpoint.name]:
            progress.planned(endpoint.name, shop_id, average, shares.get(endpoint.name, 0.0))
    progress.estimate(len(results), sum(len(lists[endpoint.name]) for endpoint in shop_endpoints))

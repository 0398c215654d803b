"""dlt source for the AutoSync Shop Manager API: one shop, one resource per endpoint of
settings.ENDPOINTS.

    import dlt
    from autosync_source import autosync_source
    pipeline = dlt.pipeline("autosync", destination="duckdb", dataset_name="autosync_raw")
    pipeline.run(autosync_source())          # the key's only shop; credentials from .dlt/ or env
    pipeline.run(autosync_source(shop=7))    # one shop of a key that sees several

The shop is the unit of work. Many shops are the sync engine's job (pipelines/engine: `run_sync`,
or `python pipelines/run.py`): it lists them once, runs several at once, each in its own dlt
pipeline, on one rate budget per credential, and skips or stops on failures in one place.

Every table is merged on `id`; each (resource, shop) pair has its own `updated_at` cursor in
the resource state (cursors.py), so a run costs what changed, not what exists.

A long sync is read in checkpoints (checkpoints.py): each run reads for at most
`checkpoint_minutes`, then commits; loop until the run is complete:

    from autosync_source import Checkpoint, run_in_checkpoints
    run_in_checkpoints(lambda checkpoint: pipeline.run(autosync_source(shop=7, checkpoint=checkpoint)))

The dlt source and its resources; connecting, paging, auth, rate limits, cursors, checkpoints
and deletes each have their own module.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, MutableMapping, Optional, Union

import dlt
from dlt.extract.hints import make_nested_hints
from dlt.sources import DltResource

from autosync_source.checkpoints import DEFAULT_CHECKPOINT_MINUTES, Checkpoint, run_in_checkpoints
from autosync_source.client import AutosyncRESTClient, RequestStats
from autosync_source.connection import (
    ApiSettings,
    connect,
    get_shops,
    list_shops,
    preflight,
    selected_endpoints,
)
from autosync_source.cursors import cursor_in_source_state, fingerprint, get_cursor, set_cursor
from autosync_source.errors import AutosyncError, ConfigurationError
from autosync_source.estimate import FirstPages, sample_first_pages
from autosync_source.paging import parse_ts
from autosync_source.progress import MODES as PROGRESS_MODES
from autosync_source.progress import Progress
from autosync_source.rows import as_arrow, declare_tables
from autosync_source.settings import (
    DEFAULT_LAG_SECONDS,
    DEFAULT_START_DATE,
    PAGE_SIZE,
    RESOURCE_NAMES,
    UPDATED_AT,
    Endpoint,
    table_columns,
)
from autosync_source.sync import EndpointReader, SyncWindow, read_shop, shape_record

logger = logging.getLogger("autosync_source")

__all__ = [
    "autosync_source", "RequestStats", "AutosyncError", "RESOURCE_NAMES", "ApiSettings", "connect", "preflight",
    "selected_endpoints", "Checkpoint", "run_in_checkpoints", "Progress", "DEFAULT_LAG_SECONDS",
    "DEFAULT_CHECKPOINT_MINUTES", "list_shops", "get_shops", "parse_date",
]


@dlt.source(name="autosync")
def autosync_source(
    api_key: Optional[str] = dlt.secrets.value,
    client_id: Optional[str] = dlt.secrets.value,
    client_secret: Optional[str] = dlt.secrets.value,
    base_url: Optional[str] = dlt.config.value,
    environment: Optional[str] = dlt.config.value,
    shop: Any = None,
    resources: Optional[List[str]] = dlt.config.value,
    start_date: str = DEFAULT_START_DATE,
    end_date: Optional[str] = dlt.config.value,
    lag_seconds: int = DEFAULT_LAG_SECONDS,
    page_size: int = PAGE_SIZE,
    max_workers: int = 4,
    retry_attempts: int = 5,
    retry_max_wait: float = 20.0,
    request_timeout: float = 30.0,
    checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES,
    checkpoint_requests: int = 0,
    progress: str = "log",
    progress_interval_seconds: float = 15.0,
    request_stats: Optional[RequestStats] = None,
    checkpoint: Optional[Checkpoint] = None,
    progress_reporter: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
) -> List[DltResource]:
    """All AutoSync endpoints (or `resources`) of one shop.

    Args:
        api_key: `sk_sandbox_…` or `sk_live_…`; the environment follows from the prefix.
        client_id, client_secret: OAuth client credentials, instead of an API key.
        base_url: defaults to the key's environment; a key for the other environment is refused.
        environment: `sandbox` or `live`, for OAuth clients without a base_url (default sandbox).
        shop: the shop's id (read with GET /shops/{id}), or its row when the caller already has
            it (the engine: no request). Default: the only shop the credentials see; on a key
            that sees several this fails: sync many shops with the engine (`run_sync`).
        resources: endpoint names to sync (settings.RESOURCE_NAMES); default all.
        start_date: first run reads records updated at or after this instant.
        end_date: bound a backfill: nothing updated after it is read, cursors stop there.
        lag_seconds: re-read this many seconds before each cursor (late-committed records);
            rows in that window already loaded unchanged cost nothing (settings.DEFAULT_LAG_SECONDS).
        page_size: rows per list request, 1-100 (default 100, the API's maximum; tests page by 10).
        max_workers: requests in flight at once (the shop's resources read in parallel).
        checkpoint_minutes, checkpoint_requests: stop reading after this long (0: no bound) or
            this many requests (0: no bound), so this run's load commits as a checkpoint.
        progress: "log", "json" or "quiet": progress lines on the `autosync_source.progress` logger.
        request_stats: pass one to read the run's request counts afterwards (the engine does).
        checkpoint: pass one to read afterwards whether the sync is complete (`.complete`);
            its budget is set from checkpoint_minutes / checkpoint_requests.
        progress_reporter: a Progress to report through (the engine's, for the whole run: then
            it has estimated already); else one is made from `progress`.
        cancel: set by the engine to stop the run: the readers stop and the extract fails.
    """
    selected = selected_endpoints(resources)
    window = SyncWindow(
        start_date=parse_date("start_date", start_date),
        end_date=parse_date("end_date", end_date) if end_date else None,
        lag_seconds=int(lag_seconds),
        page_size=_page_size(page_size),
    )
    if window.end_date is not None and window.end_date < window.start_date:
        raise ConfigurationError(f"end_date {end_date} is before start_date {start_date}.")
    if shop is not None and not isinstance(shop, dict):
        try:
            shop = int(shop)
        except (TypeError, ValueError):
            raise ConfigurationError(f"shop must be a shop id (an integer) or a shop's row, not {shop!r}.") from None
    if progress not in PROGRESS_MODES:
        raise ConfigurationError(f"progress must be one of {', '.join(PROGRESS_MODES)}, not '{progress}'.")
    settings = ApiSettings(api_key, client_id, client_secret, base_url, environment, int(retry_attempts),
                           float(retry_max_wait), float(request_timeout), int(max_workers))
    stats = request_stats if request_stats is not None else RequestStats()
    client = connect(settings, selected, stats)
    checkpoint = checkpoint if checkpoint is not None else Checkpoint()
    checkpoint.minutes, checkpoint.requests = float(checkpoint_minutes or 0), int(checkpoint_requests or 0)
    reporter = progress_reporter
    if reporter is None:
        reporter = Progress(mode=progress, interval=float(progress_interval_seconds))
        reporter.attach(lambda: stats.requests, client.session.budget.limit)
    client.session.budget.on_wait = reporter.waiting_for_budget  # the budget is process-wide: the latest run's reporter
    plan = ShopPlan(client, stats, window, shop, selected, checkpoint, reporter, int(max_workers), cancel,
                    {"resources": [endpoint.name for endpoint in selected],
                     "start_date": str(start_date), "end_date": str(end_date) if end_date else None})
    return [_endpoint_resource(endpoint, plan) for endpoint in selected]


class ShopPlan:
    """What every resource of one shop's run shares: the client, the shop's row (found once), the
    checkpoint budget, the progress reporter and, once, the estimate read ahead from page 1."""

    def __init__(
        self,
        client: AutosyncRESTClient,
        stats: RequestStats,
        window: SyncWindow,
        shop: Union[None, int, Dict[str, Any]],
        endpoints: List[Endpoint],
        checkpoint: Checkpoint,
        progress: Progress,
        max_workers: int,
        cancel: Optional[threading.Event],
        selection: Dict[str, Any],
    ) -> None:
        self.client, self.stats, self.window = client, stats, window
        self.endpoints, self.checkpoint, self.progress = endpoints, checkpoint, progress
        self.max_workers, self.cancel, self.selection = max_workers, cancel, selection
        self._shop = shop
        self._row: Optional[Dict[str, Any]] = dict(shop) if isinstance(shop, dict) else None
        # resource -> shops left by the last checkpoint of this sync; None: a sync starts here
        self.remaining: Optional[Dict[str, List[int]]] = None
        # the engine's read-ahead for the whole run, else this run's own
        self.first_pages: FirstPages = getattr(progress, "read_ahead", None) or FirstPages()
        self._prepared = False
        self._lock = threading.Lock()
        self._row_lock = threading.Lock()

    def shop_row(self) -> Dict[str, Any]:
        with self._row_lock:
            if self._row is None:
                self._row = self._find_shop()
            return self._row

    @property
    def shop_id(self) -> int:
        return int(self.shop_row()["id"])

    def _find_shop(self) -> Dict[str, Any]:
        if isinstance(self._shop, int):
            return get_shops(self.client, self.stats, [self._shop])[0]
        rows = list_shops(self.client, self.stats)
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise ConfigurationError("These credentials see no shop: there is nothing to sync. Grant the key "
                                     "or OAuth client access to a shop.")
        ids = [row["id"] for row in rows]
        shown = ", ".join(str(i) for i in ids[:10]) + (", …" if len(ids) > 10 else "")
        raise ConfigurationError(
            f"These credentials see {len(ids)} shops ({shown}) and autosync_source reads one: pass "
            f"shop=<id> (autosync_source(shop={ids[0]})), or sync every shop with the engine, "
            "pipelines.engine.run_sync (python pipelines/run.py; --shops picks some)."
        )

    def to_read(self, endpoint: Endpoint) -> bool:
        if self.remaining is not None:
            return self.shop_id in (self.remaining.get(endpoint.name) or [])
        return True

    def finished(self, endpoint: Endpoint) -> None:
        """At the end of a resource: commit (with this load) whether its listing is left."""
        state = dlt.current.source_state().setdefault("checkpoint", {})
        state["selection"] = {**self.selection, "shop": self.shop_id}
        state.setdefault("remaining", {})[endpoint.name] = self.checkpoint.stopped_shops(endpoint.name)

    def prepare(self) -> None:
        """Called by each resource as it starts (dlt's extract thread); the first one does it."""
        shop_id = self.shop_id  # the shop first: a shop the key cannot see fails here
        with self._lock:
            if self._prepared:
                return
            self._prepared = True
            self.checkpoint.start(lambda: self.stats.requests)
            source_state = dlt.current.source_state()
            left = source_state.get("checkpoint") or {}
            remaining = left.get("remaining") or {}
            if left.get("selection") == {**self.selection, "shop": shop_id} and any(remaining.values()):
                self.remaining = {name: list(shops) for name, shops in remaining.items()}
                logger.info(
                    "shop %s continues the sync stopped at its last checkpoint: %s", shop_id,
                    ", ".join(name for name, shops in sorted(self.remaining.items()) if shops),
                )
            if self.progress.quiet or self.progress.estimated:
                return  # the engine estimated the whole run
            lists = {endpoint.name: [shop_id] for endpoint in self.endpoints if endpoint.shop_scoped and self.to_read(endpoint)}
            sample_first_pages(self.client, self.endpoints, lists,
                               lambda resource, shop: cursor_in_source_state(source_state, resource, shop),
                               self.window, self.progress, self.first_pages, self.max_workers)

    def reader(self, endpoint: Endpoint) -> EndpointReader:
        return EndpointReader(self.client, self.stats, endpoint, self.window, self.checkpoint, self.progress, self.first_pages)


def _endpoint_resource(endpoint: Endpoint, plan: ShopPlan) -> DltResource:
    nested = {path: make_nested_hints(columns=columns) for path, columns in endpoint.child_columns.items()}
    columns = table_columns(endpoint)
    # Two versions of one record can land in one load (it changed while we paged): keep the newest.
    columns[UPDATED_AT] = {**columns[UPDATED_AT], "dedup_sort": "desc"}

    @dlt.resource(
        name=endpoint.name,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key=endpoint.primary_key,
        columns=columns,
        nested_hints=nested or None,
    )
    def endpoint_rows() -> Iterator[List[Dict[str, Any]]]:
        plan.prepare()
        resource_state = dlt.current.resource_state()
        if endpoint.shop_scoped:
            if plan.to_read(endpoint):
                yield from as_arrow(endpoint, read_shop(plan.reader(endpoint), plan.shop_id, resource_state, plan.cancel))
        elif plan.remaining is None:  # the shop's own row: in the run that starts a sync
            yield from as_arrow(endpoint, _changed_shop(endpoint, plan.shop_row(), resource_state, plan.window))
        plan.finished(endpoint)

    declare_tables(endpoint_rows, endpoint)  # the pages go to dlt as Arrow tables (rows.py)
    return endpoint_rows


def _changed_shop(endpoint: Endpoint, row: Dict[str, Any], resource_state: MutableMapping[str, Any],
                  window: SyncWindow) -> Iterator[List[Dict[str, Any]]]:
    """The shop's row, when it changed since its cursor."""
    stamp = parse_ts(row[endpoint.cursor])
    if window.end_date is not None and stamp > window.end_date:
        return
    cursor, row_fingerprint = get_cursor(resource_state, row["id"]), fingerprint(row)
    if cursor.updated_at is not None and (
        stamp < cursor.updated_at or cursor.already_loaded(row["id"], stamp, row_fingerprint)
    ):
        return
    set_cursor(resource_state, row["id"], cursor.advanced({row["id"]: (stamp, row_fingerprint)}, window.lag_seconds))
    yield [shape_record(endpoint, dict(row), row["id"])]


def _page_size(value: Any) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if isinstance(value, bool) or not 1 <= size <= PAGE_SIZE:
        raise ConfigurationError(f"page_size must be a whole number from 1 to {PAGE_SIZE}, not {value!r}.")
    return size


def parse_date(name: str, value: Union[str, datetime]) -> datetime:
    """A start_date/end_date setting as a UTC instant; ConfigurationError naming `name` if it is none."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value).strip()
    if len(text) == 10:  # a bare date means its midnight UTC
        text += "T00:00:00Z"
    try:
        return parse_ts(text)
    except ValueError:
        raise ConfigurationError(
            f"{name} '{value}' is not a date: use ISO 8601, e.g. 2024-01-31 or 2024-01-31T12:00:00Z."
        ) from None

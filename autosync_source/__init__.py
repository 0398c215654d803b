"""dlt source for the AutoSync Shop Manager API: one resource per endpoint of settings.ENDPOINTS.

    import dlt
    from autosync_source import autosync_source
    pipeline = dlt.pipeline("autosync", destination="duckdb", dataset_name="autosync_raw")
    pipeline.run(autosync_source())          # credentials from .dlt/secrets.toml or env

Every table is merged on `id`; each (resource, shop) pair has its own `updated_at` cursor in
the resource state (cursors.py), so a run costs what changed, not what exists.

A long sync is read in checkpoints (checkpoints.py): each run reads for at most
`checkpoint_minutes`, then commits; loop until the run is complete:

    from autosync_source import Checkpoint, run_in_checkpoints
    run_in_checkpoints(lambda checkpoint: pipeline.run(autosync_source(checkpoint=checkpoint)))

One coherent thing, a little over 400 lines: the dlt source and its resources; paging, auth, rate
limits, cursors, checkpoints and deletes each have their own module.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union
from urllib.parse import urlparse

import dlt
from dlt.extract.hints import make_nested_hints
from dlt.sources import DltResource

from autosync_source.auth import ApiKeyAuth, ClientCredentialsAuth, key_environment
from autosync_source.client import (
    AutosyncRESTClient,
    InsufficientScope,
    RequestStats,
    RetryPolicy,
    build_client,
)
from autosync_source.checkpoints import DEFAULT_CHECKPOINT_MINUTES, Checkpoint, run_in_checkpoints
from autosync_source.cursors import CursorBook, fingerprint
from autosync_source.errors import (
    ApiError,
    AutosyncError,
    ConfigurationError,
    ScopeError,
    ShopAccessError,
    mask_secret,
)
from autosync_source.estimate import FirstPages, sample_first_pages
from autosync_source.paging import UpdatedAtPaginator, parse_ts
from autosync_source.progress import MODES as PROGRESS_MODES
from autosync_source.progress import Progress
from autosync_source.settings import (
    BASE_URLS,
    DEFAULT_LAG_SECONDS,
    DEFAULT_START_DATE,
    ENDPOINTS,
    ENDPOINTS_BY_NAME,
    ENVIRONMENT_HOSTS,
    PAGE_SIZE,
    RESOURCE_NAMES,
    UPDATED_AT,
    Endpoint,
    table_columns,
)
from autosync_source.sync import (
    NO_HOOKS,
    EndpointReader,
    SyncWindow,
    read_shops_in_parallel,
    shape_record,
    sort_refused,
)

logger = logging.getLogger("autosync_source")

__all__ = [
    "autosync_source", "RequestStats", "AutosyncError", "RESOURCE_NAMES", "ShopDirectory", "preflight",
    "selected_endpoints", "Checkpoint", "run_in_checkpoints", "Progress", "DEFAULT_LAG_SECONDS",
    "DEFAULT_CHECKPOINT_MINUTES",
]


@dlt.source(name="autosync")
def autosync_source(
    api_key: Optional[str] = dlt.secrets.value,
    client_id: Optional[str] = dlt.secrets.value,
    client_secret: Optional[str] = dlt.secrets.value,
    base_url: Optional[str] = dlt.config.value,
    environment: Optional[str] = dlt.config.value,
    shops: Optional[List[int]] = dlt.config.value,
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
    skip_failing_shops: bool = False,
    request_stats: Optional[RequestStats] = None,
    checkpoint: Optional[Checkpoint] = None,
    progress_reporter: Optional[Progress] = None,
) -> List[DltResource]:
    """All AutoSync endpoints (or `resources`) of every shop the credentials see (or `shops`).

    Args:
        api_key: `sk_sandbox_…` or `sk_live_…`; the environment follows from the prefix.
        client_id, client_secret: OAuth client credentials, instead of an API key.
        base_url: defaults to the key's environment; a key for the other environment is refused.
        environment: `sandbox` or `live`, for OAuth clients without a base_url (default sandbox).
        shops: shop ids to sync; default all shops the credentials can see.
        resources: endpoint names to sync (settings.RESOURCE_NAMES); default all.
        start_date: first run reads records updated at or after this instant.
        end_date: bound a backfill: nothing updated after it is read, cursors stop there.
        lag_seconds: re-read this many seconds before each cursor (late-committed records);
            rows in that window already loaded unchanged cost nothing (settings.DEFAULT_LAG_SECONDS).
        page_size: rows per list request, 1-100 (default 100, the API's maximum; tests page by 10).
        max_workers: shops read in parallel per resource (and requests in flight at once).
        checkpoint_minutes, checkpoint_requests: stop reading after this long (0: no bound) or
            this many requests (0: no bound), so this run's load commits as a checkpoint.
        progress: "log", "json" or "quiet": progress lines on the `autosync_source.progress` logger.
        skip_failing_shops: a shop that fails (not credentials, scopes or configuration) does
            not stop the others; it is reported in `checkpoint.failed` and read again next run.
        request_stats: pass one to read the run's request counts afterwards (run.py does).
        checkpoint: pass one to read afterwards whether the sync is complete (`.complete`);
            its budget is set from checkpoint_minutes / checkpoint_requests.
        progress_reporter: a Progress to report through (else one is made from `progress`).
    """
    selected = selected_endpoints(resources)
    window = SyncWindow(
        start_date=_parse_date("start_date", start_date),
        end_date=_parse_date("end_date", end_date) if end_date else None,
        lag_seconds=int(lag_seconds),
        page_size=_page_size(page_size),
    )
    if window.end_date is not None and window.end_date < window.start_date:
        raise ConfigurationError(f"end_date {end_date} is before start_date {start_date}.")
    auth, resolved_base_url = preflight(api_key, client_id, client_secret, base_url, environment, selected)
    stats = request_stats if request_stats is not None else RequestStats()
    client = build_client(
        resolved_base_url,
        auth,
        stats,
        retry=RetryPolicy(attempts=int(retry_attempts), max_wait=float(retry_max_wait), timeout=float(request_timeout)),
        max_concurrency=int(max_workers),
    )
    directory = ShopDirectory(client, stats, [int(s) for s in shops] if shops else None)
    if progress not in PROGRESS_MODES:
        raise ConfigurationError(f"progress must be one of {', '.join(PROGRESS_MODES)}, not '{progress}'.")
    checkpoint = checkpoint if checkpoint is not None else Checkpoint()
    checkpoint.minutes, checkpoint.requests = float(checkpoint_minutes or 0), int(checkpoint_requests or 0)
    reporter = progress_reporter or Progress(mode=progress, interval=float(progress_interval_seconds))
    budget = client.session.budget
    reporter.attach(lambda: stats.requests, budget.limit)
    budget.on_wait = reporter.waiting_for_budget  # the budget is process-wide: the latest run's reporter
    selection = {
        "resources": [endpoint.name for endpoint in selected],
        "shops": sorted(int(s) for s in shops) if shops else None,
        "start_date": str(start_date), "end_date": str(end_date) if end_date else None,
    }
    plan = SyncPlan(client, stats, window, directory, selected, checkpoint, reporter, int(max_workers), bool(skip_failing_shops), selection)
    return [_endpoint_resource(endpoint, plan) for endpoint in selected]


class SyncPlan:
    """What every resource of one run shares: the client, the checkpoint budget, the progress
    reporter and, once, the estimate read ahead from page 1 of the first listings."""

    def __init__(
        self,
        client: AutosyncRESTClient,
        stats: RequestStats,
        window: SyncWindow,
        directory: "ShopDirectory",
        endpoints: List[Endpoint],
        checkpoint: Checkpoint,
        progress: Progress,
        max_workers: int,
        skip_failing_shops: bool,
        selection: Dict[str, Any],
    ) -> None:
        self.client, self.stats, self.window, self.directory = client, stats, window, directory
        self.endpoints, self.checkpoint, self.progress = endpoints, checkpoint, progress
        self.max_workers, self.skip_failing_shops = max_workers, skip_failing_shops
        self.selection = selection
        # resource -> shops left by the last checkpoint of this sync; None: a sync starts here
        self.remaining: Optional[Dict[str, List[int]]] = None
        self.first_pages = FirstPages()
        self._prepared = False
        self._lock = threading.Lock()

    def shops_to_read(self, endpoint: Endpoint) -> List[int]:
        if self.remaining is not None:
            return list(self.remaining.get(endpoint.name) or [])
        return self.directory.ids()

    def finished(self, endpoint: Endpoint) -> None:
        """At the end of a resource: commit (with this load) which of its shops are left."""
        state = dlt.current.source_state().setdefault("checkpoint", {})
        state["selection"] = self.selection
        state.setdefault("remaining", {})[endpoint.name] = self.checkpoint.stopped_shops(endpoint.name)

    def prepare(self) -> None:
        """Called by each resource as it starts (dlt's extract thread); the first one does it."""
        with self._lock:
            if self._prepared:
                return
            self._prepared = True
            self.checkpoint.start(lambda: self.stats.requests)
            source_state = dlt.current.source_state()
            left = source_state.get("checkpoint") or {}
            remaining = left.get("remaining") or {}
            if left.get("selection") == self.selection and any(remaining.values()):
                self.remaining = {name: list(shops) for name, shops in remaining.items()}
                logger.info(
                    "continuing the sync stopped at its last checkpoint: %s",
                    ", ".join(f"{name} ({len(shops)} shops)" for name, shops in sorted(self.remaining.items()) if shops),
                )
            if self.progress.quiet:
                return
            cursors = {name: dict(state.get("shops") or {}) for name, state in (source_state.get("resources") or {}).items()}
            lists = {endpoint.name: self.shops_to_read(endpoint) for endpoint in self.endpoints if endpoint.shop_scoped}
            sample_first_pages(self.client, self.endpoints, lists, cursors, self.window, self.progress, self.first_pages, self.max_workers)

    def reader(self, endpoint: Endpoint) -> EndpointReader:
        return EndpointReader(self.client, self.stats, endpoint, self.window, self.checkpoint, self.progress, self.first_pages)


class ShopDirectory:
    """The shops of this run: listed once (that listing is also the `shops` resource)."""

    def __init__(self, client: AutosyncRESTClient, stats: RequestStats, chosen: Optional[List[int]]) -> None:
        self._client, self._stats, self._chosen = client, stats, chosen
        self._lock = threading.Lock()
        self._rows: Optional[List[Dict[str, Any]]] = None

    def rows(self) -> List[Dict[str, Any]]:
        with self._lock:
            if self._rows is None:
                self._rows = self._list()
            return self._rows

    def ids(self) -> List[int]:
        # Listed even when shops were chosen: one request says early and clearly when a chosen
        # shop is not visible, instead of a 404 deep inside some resource.
        return [row["id"] for row in self.rows()]

    def _pages(self, endpoint: Endpoint, sort_by_cursor: bool) -> List[Dict[str, Any]]:
        rows: List[Dict[str, Any]] = []
        paginator = UpdatedAtPaginator(None, sort_by_cursor=sort_by_cursor)
        for page in self._client.paginate(endpoint.path, paginator=paginator, hooks=NO_HOOKS):
            self._stats.add_kind("list", endpoint.name)
            rows.extend(page)
        return rows

    def _list(self) -> List[Dict[str, Any]]:
        endpoint = ENDPOINTS_BY_NAME["shops"]
        try:
            try:
                rows = self._pages(endpoint, sort_by_cursor=True)
            except ApiError as refused:
                if not sort_refused(refused):
                    raise
                rows = self._pages(endpoint, sort_by_cursor=False)
        except InsufficientScope as missing:
            raise ScopeError(missing.scope or endpoint.scope, "shops", str(missing)) from None
        # A shop listed twice (it moved between pages): keep the copy listed last, which came
        # from a later request and so is at least as new as the first.
        unique = {row["id"]: row for row in rows}
        if self._chosen is None:
            return sorted(unique.values(), key=lambda row: row["id"])
        missing_ids = sorted(set(self._chosen) - set(unique))
        if missing_ids:
            raise ShopAccessError(
                f"Shop(s) {missing_ids} are not visible to these credentials (visible: "
                f"{sorted(unique)}). Fix --shops, or grant the key/OAuth client access to them."
            )
        return [unique[shop_id] for shop_id in self._chosen]


def _endpoint_resource(endpoint: Endpoint, plan: SyncPlan) -> DltResource:
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
        book = CursorBook(dlt.current.resource_state())
        plan.prepare()
        if endpoint.shop_scoped:
            yield from read_shops_in_parallel(
                plan.reader(endpoint), plan.shops_to_read(endpoint), book, plan.max_workers, plan.skip_failing_shops
            )
        elif plan.remaining is None:  # the shops listing is whole in the run that starts a sync
            yield from _changed_shops(endpoint, plan.directory, book, plan.window)
        plan.finished(endpoint)

    return endpoint_rows


def _changed_shops(endpoint: Endpoint, directory: ShopDirectory, book: CursorBook, window: SyncWindow) -> Iterator[List[Dict[str, Any]]]:
    """The shops listing is needed whole (it is how shops are found); emit only changed ones."""
    batch = []
    for row in directory.rows():
        stamp = parse_ts(row[endpoint.cursor])
        if window.end_date is not None and stamp > window.end_date:
            continue
        cursor, row_fingerprint = book.get(row["id"]), fingerprint(row)
        if cursor.updated_at is not None and (
            stamp < cursor.updated_at or cursor.already_loaded(row["id"], stamp, row_fingerprint)
        ):
            continue
        batch.append(shape_record(endpoint, dict(row), row["id"]))
        book.set(row["id"], cursor.advanced({row["id"]: (stamp, row_fingerprint)}, window.lag_seconds))
    if batch:
        yield batch


def selected_endpoints(resources: Optional[Sequence[str]]) -> List[Endpoint]:
    if not resources:
        return list(ENDPOINTS)
    if isinstance(resources, str):
        resources = [name.strip() for name in resources.split(",") if name.strip()]
    unknown = [name for name in resources if name not in ENDPOINTS_BY_NAME]
    if unknown:
        raise ConfigurationError(
            f"Unknown resource(s) {unknown}. Choose among: {', '.join(RESOURCE_NAMES)}."
        )
    return [ENDPOINTS_BY_NAME[name] for name in RESOURCE_NAMES if name in resources]


def _page_size(value: Any) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if isinstance(value, bool) or not 1 <= size <= PAGE_SIZE:
        raise ConfigurationError(f"page_size must be a whole number from 1 to {PAGE_SIZE}, not {value!r}.")
    return size


def _parse_date(name: str, value: Union[str, datetime]) -> datetime:
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


def preflight(
    api_key: Optional[str],
    client_id: Optional[str],
    client_secret: Optional[str],
    base_url: Optional[str],
    environment: Optional[str],
    selected: List[Endpoint],
) -> tuple:
    """Everything that can be checked before the first request is checked here."""
    if environment and environment not in BASE_URLS:
        raise ConfigurationError(f"environment must be 'sandbox' or 'live', not '{environment}'.")
    if base_url:
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigurationError(
                f"base_url '{base_url}' is not a URL: expected e.g. {BASE_URLS['sandbox']}."
            )
    url_environment = ENVIRONMENT_HOSTS.get(urlparse(base_url).hostname or "") if base_url else None

    if api_key:
        auth: Any = ApiKeyAuth(token=api_key)
        key_env = key_environment(api_key)
        if base_url:
            if key_env and url_environment and key_env != url_environment:
                raise ConfigurationError(
                    f"The API key {mask_secret(api_key)} is a {key_env} key but the base URL "
                    f"{base_url} is the {url_environment} API. Use a {url_environment} key "
                    f"(sk_{url_environment}_…), or drop --base-url to use {BASE_URLS[key_env]}."
                )
            return auth, base_url.rstrip("/")
        if key_env is None:
            raise ConfigurationError(
                f"The API key {mask_secret(api_key)} has neither the sk_sandbox_ nor the sk_live_ "
                "prefix, so its environment is unknown. Check the key, or give the base URL "
                "explicitly (--base-url / SOURCES__AUTOSYNC__BASE_URL)."
            )
        if environment and environment != key_env:
            raise ConfigurationError(
                f"The API key {mask_secret(api_key)} is a {key_env} key but environment is "
                f"'{environment}'. Use a {environment} key or drop the environment setting."
            )
        return auth, BASE_URLS[key_env]

    if client_id and client_secret:
        scopes = sorted({endpoint.scope for endpoint in selected} | {"shops:read"})
        auth = ClientCredentialsAuth(client_id=client_id, client_secret=client_secret, scopes=scopes)
        return auth, (base_url or BASE_URLS[environment or "sandbox"]).rstrip("/")
    if client_id or client_secret:
        raise ConfigurationError(
            "OAuth needs both client_id and client_secret "
            "(SOURCES__AUTOSYNC__CLIENT_ID and SOURCES__AUTOSYNC__CLIENT_SECRET)."
        )
    raise ConfigurationError(
        "No AutoSync credentials: set an API key (SOURCES__AUTOSYNC__API_KEY, "
        "[sources.autosync] api_key in .dlt/secrets.toml, or --api-key), or OAuth client "
        "credentials (SOURCES__AUTOSYNC__CLIENT_ID and SOURCES__AUTOSYNC__CLIENT_SECRET)."
    )

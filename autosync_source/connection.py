"""How a run reaches the API: settings checked before the first request (`preflight`), then one
client (`connect`), and the shops the credentials see (`list_shops`, `get_shops`).

The source, the engine's shop listing and the delete reconciliation all connect through
`connect(settings, endpoints)`: one place that turns credentials and settings into an
authenticated, paced, retrying client.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlparse

import dlt
from dlt.common.configuration.inject import with_config

from autosync_source.auth import ApiKeyAuth, ClientCredentialsAuth, key_environment
from autosync_source.client import (
    NO_HOOKS,
    AutosyncRESTClient,
    InsufficientScope,
    RequestStats,
    RetryPolicy,
    build_client,
)
from autosync_source.errors import ApiError, ConfigurationError, ScopeError, ShopAccessError, mask_secret
from autosync_source.paging import UpdatedAtPaginator
from autosync_source.settings import BASE_URLS, ENDPOINTS, ENDPOINTS_BY_NAME, ENVIRONMENT_HOSTS, RESOURCE_NAMES, Endpoint


@dataclass(frozen=True)
class ApiSettings:
    """Credentials and request settings of one run (secrets never in its repr)."""

    api_key: Optional[str] = field(default=None, repr=False)
    client_id: Optional[str] = None
    client_secret: Optional[str] = field(default=None, repr=False)
    base_url: Optional[str] = None
    environment: Optional[str] = None
    retry_attempts: int = 5
    retry_max_wait: float = 20.0
    request_timeout: float = 30.0
    max_workers: int = 4

    def retry(self) -> RetryPolicy:
        return RetryPolicy(attempts=int(self.retry_attempts), max_wait=float(self.retry_max_wait),
                           timeout=float(self.request_timeout))


@with_config(sections=("sources", "autosync"))
def api_settings(
    api_key: Optional[str] = dlt.secrets.value,
    client_id: Optional[str] = dlt.secrets.value,
    client_secret: Optional[str] = dlt.secrets.value,
    base_url: Optional[str] = dlt.config.value,
    environment: Optional[str] = dlt.config.value,
    retry_attempts: int = 5,
    retry_max_wait: float = 20.0,
    request_timeout: float = 30.0,
    max_workers: int = 4,
) -> ApiSettings:
    """The settings as the source reads them: what is given, else dlt config and secrets."""
    return ApiSettings(api_key, client_id, client_secret, base_url, environment, int(retry_attempts),
                       float(retry_max_wait), float(request_timeout), int(max_workers))


def connect(settings: ApiSettings, endpoints: Sequence[Endpoint], stats: RequestStats) -> AutosyncRESTClient:
    """The client for `endpoints` (OAuth asks for their scopes): checked, then built on the
    credential's process-wide rate budget."""
    auth, base_url = preflight(settings.api_key, settings.client_id, settings.client_secret,
                               settings.base_url, settings.environment, list(endpoints))
    return build_client(base_url, auth, stats, retry=settings.retry(), max_concurrency=int(settings.max_workers))


def preflight(
    api_key: Optional[str],
    client_id: Optional[str],
    client_secret: Optional[str],
    base_url: Optional[str],
    environment: Optional[str],
    selected: List[Endpoint],
) -> Tuple[Any, str]:
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


def selected_endpoints(resources: Optional[Sequence[str]]) -> List[Endpoint]:
    """The endpoints of `resources` (names, or one comma-separated string) in table order; all by default."""
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


def sort_refused(error: ApiError) -> bool:
    """The API said no to sort=updated_at (a 400/422 whose message is about sorting)."""
    return error.status in (400, 422) and "sort" in str(error).lower()


def list_shops(client: AutosyncRESTClient, stats: RequestStats) -> List[Dict[str, Any]]:
    """Every shop the credentials see (GET /shops, every page), in id order."""
    endpoint = ENDPOINTS_BY_NAME["shops"]

    def pages(sort_by_cursor: bool) -> List[Dict[str, Any]]:
        rows: List[Dict[str, Any]] = []
        paginator = UpdatedAtPaginator(None, sort_by_cursor=sort_by_cursor)
        for page in client.paginate(endpoint.path, paginator=paginator, hooks=NO_HOOKS):
            stats.add_kind("list", endpoint.name)
            rows.extend(page)
        return rows

    try:
        try:
            rows = pages(sort_by_cursor=True)
        except ApiError as refused:
            if not sort_refused(refused):
                raise
            rows = pages(sort_by_cursor=False)
    except InsufficientScope as missing:
        raise ScopeError(missing.scope or endpoint.scope, "shops", str(missing)) from None
    # A shop listed twice (it moved between pages): keep the copy listed last, which came from a
    # later request and so is at least as new as the first.
    unique = {row["id"]: row for row in rows}
    return sorted(unique.values(), key=lambda row: row["id"])


def get_shops(client: AutosyncRESTClient, stats: RequestStats, shop_ids: Sequence[int]) -> List[Dict[str, Any]]:
    """The rows of the shops asked for (GET /shops/{id}: one request each), in the order given;
    ShopAccessError naming every shop the credentials cannot see."""
    endpoint = ENDPOINTS_BY_NAME["shops"]
    rows: List[Dict[str, Any]] = []
    missing: List[int] = []
    for shop_id in shop_ids:
        stats.add_kind("detail", endpoint.name)
        try:
            rows.append(client.get_object(f"{endpoint.path}/{int(shop_id)}"))
        except InsufficientScope as refused:
            raise ScopeError(refused.scope or endpoint.scope, "shops", str(refused)) from None
        except ApiError as failed:
            if failed.status not in (403, 404):
                raise
            missing.append(int(shop_id))
    if missing:
        raise ShopAccessError(
            f"Shop(s) {missing} are not visible to these credentials. Fix --shops (or "
            "SOURCES__AUTOSYNC__SHOPS), or grant the key/OAuth client access to them."
        )
    return rows

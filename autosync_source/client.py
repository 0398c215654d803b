"""HTTP to AutoSync: one session per run that authenticates, spends the credential's shared
rate budget, retries what is worth retrying and turns every other failure into an
`AutosyncError` that says what to do. Paging lives in paging.py.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, List, Optional, Union
from urllib.parse import urlparse

import requests
from requests import PreparedRequest, Response
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from dlt.sources.helpers.rest_client import RESTClient

from autosync_source.auth import ApiKeyAuth, ClientCredentialsAuth
from autosync_source.errors import (
    ApiError,
    ApiUnreachableError,
    AuthenticationError,
    AutosyncError,
)
from autosync_source.ratelimit import RateBudget, budget_for
from autosync_source.settings import TOKEN_PATH

logger = logging.getLogger("autosync_source")

# Sent instead of dlt's default response hook: the session raises its own, clearer errors.
NO_HOOKS: Dict[str, list] = {"response": []}

Auth = Union[ApiKeyAuth, ClientCredentialsAuth]


@dataclass
class RetryPolicy:
    attempts: int = 5  # tries in all, for 5xx, timeouts and dropped connections
    initial_wait: float = 0.5
    max_wait: float = 20.0
    timeout: float = 30.0  # seconds per request (connect and read)
    max_rate_limited: int = 20  # consecutive 429s on one request before giving up


@dataclass
class RequestStats:
    """What a run cost, counted where requests are sent. Thread-safe."""

    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    tokens_fetched: int = 0
    by_kind: Counter = field(default_factory=Counter)  # ("list"|"detail", resource) -> n
    # What the connector noticed about the API that makes a sync cost more (filters ignored...)
    api_quirks: set = field(default_factory=set)
    # resource -> {shop id: [seconds]} listed by page numbers (more rows in one second than a
    # page): the paging's residual case (paging.py), which the engine has reconciled next run
    paging_residual: Dict[str, Dict[int, List[str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def add_kind(self, kind: str, resource: str) -> None:
        with self._lock:
            self.by_kind[(kind, resource)] += 1

    def note_quirk(self, text: str) -> None:
        with self._lock:
            if text not in self.api_quirks:
                logger.warning("%s", text)
            self.api_quirks.add(text)

    def note_paging_residual(self, resource: str, shop_id: Any, seconds: List[str]) -> None:
        with self._lock:
            known = self.paging_residual.setdefault(resource, {}).setdefault(shop_id, [])
            known += [second for second in seconds if second not in known]
        logger.warning(
            "%s: shop %s has more rows in one second than a page holds (%s): read by page numbers, where a "
            "delete or update during the listing can hide a row; the delete reconciliation checks this shop's "
            "%s next run", resource, shop_id, ", ".join(seconds), resource,
        )

    def snapshot(self) -> Dict[str, Any]:
        """The counts as plain data (a worker process hands them to the engine: `absorb`)."""
        with self._lock:
            return {"requests": self.requests, "rate_limited": self.rate_limited, "retries": self.retries,
                    "tokens_fetched": self.tokens_fetched, "by_kind": dict(self.by_kind),
                    "api_quirks": set(self.api_quirks),
                    "paging_residual": {name: {shop: list(seconds) for shop, seconds in shops.items()}
                                        for name, shops in self.paging_residual.items()}}

    def absorb(self, snapshot: Dict[str, Any]) -> None:
        """Add another run's `snapshot` to these counts."""
        with self._lock:
            for name in ("requests", "rate_limited", "retries", "tokens_fetched"):
                setattr(self, name, getattr(self, name) + int(snapshot.get(name, 0)))
            self.by_kind.update(snapshot.get("by_kind", {}))
            self.api_quirks |= set(snapshot.get("api_quirks", ()))
            for name, shops in snapshot.get("paging_residual", {}).items():
                for shop, seconds in shops.items():
                    known = self.paging_residual.setdefault(name, {}).setdefault(shop, [])
                    known += [second for second in seconds if second not in known]

    def as_dict(self) -> Dict[str, Any]:
        with self._lock:
            per_resource: Dict[str, Dict[str, int]] = {}
            for (kind, resource), n in sorted(self.by_kind.items()):
                per_resource.setdefault(resource, {})[kind] = n
            return {
                "requests": self.requests,
                "rate_limited": self.rate_limited,
                "retries": self.retries,
                "tokens_fetched": self.tokens_fetched,
                "by_resource": per_resource,
                "api_quirks": sorted(self.api_quirks),
                "paging_residual": {name: sorted(shops) for name, shops in sorted(self.paging_residual.items())},
            }


class InsufficientScope(AutosyncError):
    """403 insufficient_scope, before the resource layer names the resource (ScopeError)."""

    def __init__(self, scope: str, message: str) -> None:
        self.scope = scope
        super().__init__(message)


class _RetryableStatus(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


class _UnreadableBody(_RetryableStatus):
    """A 2xx whose JSON is cut or broken (a proxy or the server died mid-body): worth a retry."""

    def __str__(self) -> str:
        return f"HTTP {self.response.status_code} with unreadable JSON"


def parsed_body(response: Response) -> Any:
    """The JSON body with numbers with a fraction as Decimal (money must never pass a float)."""
    cached = getattr(response, "_autosync_body", None)
    if cached is None:
        cached = json.loads(response.content or b"null", parse_float=Decimal)
        response._autosync_body = cached  # type: ignore[attr-defined]
    return cached


class AutosyncSession(requests.Session):
    """A `requests` session that paces, retries and explains. Shared by every thread of a run."""

    def __init__(
        self,
        auth: Auth,
        budget: RateBudget,
        stats: RequestStats,
        retry: RetryPolicy,
        base_url: str,
        max_concurrency: int = 4,
    ) -> None:
        super().__init__()
        # Resources are extracted round-robin by dlt, each with its own shop threads: this cap
        # keeps the requests in flight at once bounded, whatever the number of threads.
        self.in_flight = threading.BoundedSemaphore(max(1, max_concurrency))
        self.autosync_auth = auth
        self.budget = budget
        self.stats = stats
        self.retry = retry
        self.base_url = base_url
        self.headers["User-Agent"] = "autosync-elt (dlt)"
        self._environment_settings: Dict[tuple, Dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Dict[str, Any]:  # type: ignore[override]
        """requests reads the proxy and CA bundle environment again for every request (about
        0.3 ms of CPU each, a tenth of the connector's per request: docs/performance.md); it
        does not change during a run, so it is read once per host."""
        key = (urlparse(url)[:2], repr(proxies), stream, verify, cert)
        settings = self._environment_settings.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment_settings[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.retry.timeout)
        is_token_request = (request.url or "").rstrip("/").endswith(TOKEN_PATH)
        renewed_after_401 = False
        while True:
            response = self._send_with_retries(request, is_token_request, **kwargs)
            if (
                response.status_code == 401
                and isinstance(self.autosync_auth, ClientCredentialsAuth)
                and not is_token_request
                and not renewed_after_401
            ):
                # The token died early (revoked or a clock mismatch): renew once, then retry.
                self.autosync_auth.invalidate()
                renewed_after_401 = True
                continue
            self._raise_for_status(response, is_token_request)
            if is_token_request:
                self.stats.add("tokens_fetched")
            return response

    def _send_with_retries(
        self, request: PreparedRequest, is_token_request: bool, **kwargs: Any
    ) -> Response:
        retrying = Retrying(
            retry=retry_if_exception_type(
                (_RetryableStatus, requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
            ),
            wait=wait_exponential_jitter(initial=self.retry.initial_wait, max=self.retry.max_wait),
            stop=stop_after_attempt(self.retry.attempts),
            before_sleep=self._before_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self._send_paced(request, is_token_request, **kwargs)
                    if response.status_code >= 500:
                        raise _RetryableStatus(response)
                    if 200 <= response.status_code < 300 and response.content:
                        try:
                            parsed_body(response)
                        except ValueError:
                            raise _UnreadableBody(response) from None
                    return response
        except _UnreadableBody as failed:
            raise ApiError(
                f"The AutoSync API answered {_path_of(failed.response)} with unreadable JSON "
                f"{self.retry.attempts} times in a row (a cut or broken body). Run again later; "
                "nothing was loaded and no cursor moved.",
                failed.response.status_code,
            ) from None
        except _RetryableStatus as failed:
            return failed.response  # retries exhausted: _raise_for_status explains it
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            host = urlparse(request.url or "").netloc
            kind = "timed out" if isinstance(exc, requests.Timeout) else "could not connect"
            raise ApiUnreachableError(
                f"The AutoSync API at {host} is unreachable ({kind} after "
                f"{self.retry.attempts} attempts: {type(exc).__name__}). Check --base-url and "
                "the network, then run again; nothing was loaded and no cursor moved."
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _before_retry(self, state: RetryCallState) -> None:
        self.stats.add("retries")
        outcome = state.outcome.exception() if state.outcome else None
        logger.warning("AutoSync request failed (%s); retry %d", _describe(outcome), state.attempt_number)

    def _send_paced(self, request: PreparedRequest, is_token_request: bool, **kwargs: Any) -> Response:
        rate_limited_in_a_row = 0
        while True:
            if not is_token_request:
                # Re-applied on every attempt: after a long wait the token may need renewing.
                self.autosync_auth(request)
            response: Optional[Response] = None
            with self.in_flight:
                sent = self.budget.acquire()
                try:
                    self.stats.add("requests")
                    response = super().send(request, **kwargs)
                finally:
                    self.budget.release(response.headers if response is not None else None, sent)
            if response.status_code != 429:
                return response
            self.stats.add("rate_limited")
            rate_limited_in_a_row += 1
            if rate_limited_in_a_row > self.retry.max_rate_limited:
                return response
            wait = _retry_after(response)
            logger.warning("AutoSync rate limit met (429); every thread waits %.1fs", wait)
            self.budget.block_for(wait)

    def _raise_for_status(self, response: Response, is_token_request: bool) -> None:
        status = response.status_code
        if status < 400:
            return
        code, message, field = _error_of(response)
        request_id = response.headers.get("X-Request-Id", "")
        suffix = f" (request {request_id})" if request_id else ""
        if status == 401:
            if is_token_request:
                raise AuthenticationError(
                    f"The OAuth token endpoint refused {self.autosync_auth.describe()}: check the "
                    "client id and secret (SOURCES__AUTOSYNC__CLIENT_ID / CLIENT_SECRET)." + suffix
                )
            raise AuthenticationError(_unauthorized_message(self.autosync_auth, self.base_url) + suffix)
        if status == 403 and code == "insufficient_scope":
            raise InsufficientScope(_scope_named_in(message), message)
        if is_token_request and status in (400, 403) and (field == "scope" or "scope" in message.lower()):
            # The client asked for the scopes of the selected resources; one is not granted.
            raise InsufficientScope(_scope_named_in(message), message)
        if status == 429:
            raise ApiError(
                f"The AutoSync API kept answering 429 (rate limited) after "
                f"{self.retry.max_rate_limited} waits: another client is spending this key's "
                "budget. Run again later." + suffix,
                status,
            )
        if status >= 500:
            raise ApiError(
                f"The AutoSync API failed with HTTP {status} ({code or 'server_error'}) "
                f"{self.retry.attempts} times in a row for {_path_of(response)}. It is having "
                "trouble: run again later; nothing was loaded and no cursor moved." + suffix,
                status,
            )
        raise ApiError(
            f"The AutoSync API refused {_path_of(response)} with HTTP {status} "
            f"({code or 'error'}): {message}" + suffix,
            status,
        )


def _unauthorized_message(auth: Auth, base_url: str) -> str:
    if isinstance(auth, ApiKeyAuth):
        environment = auth.environment
        where = f" on {base_url}"
        hint = (
            f" A {environment} key works only on the {environment} environment; check the base "
            "URL and the key" if environment else " Check the key"
        )
        return (
            f"The AutoSync API rejected {auth.describe()}{where} (401 unauthorized): the key is "
            f"unknown, revoked or for the other environment.{hint} (SOURCES__AUTOSYNC__API_KEY or "
            "--api-key)."
        )
    return (
        f"The AutoSync API rejected the access token of {auth.describe()} (401) even after "
        "renewing it: check that the client is still authorized for these shops."
    )


def _error_of(response: Response) -> tuple:
    try:
        body = parsed_body(response)
    except ValueError:
        return "", (response.text or "")[:200], ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or ""), str(error.get("field") or "")
    return "", "", ""


def _scope_named_in(message: str) -> str:
    for word in message.replace("'", " ").replace('"', " ").replace("`", " ").split():
        word = word.strip(".,;:()")
        if ":" in word and word.split(":")[1] in {"read", "write", "charge", "manage"}:
            return word
    return ""


def _retry_after(response: Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def _path_of(response: Response) -> str:
    return urlparse(response.request.url if response.request else "").path or "the request"


def _describe(exc: Optional[BaseException]) -> str:
    if isinstance(exc, _RetryableStatus):
        return str(exc)
    return type(exc).__name__ if exc else "unknown"


class AutosyncRESTClient(RESTClient):
    """dlt's RESTClient, reading `data` of the envelope with Decimal numbers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sort_refused: set = set()  # endpoints that answered 4xx to sort=updated_at

    def extract_response(self, response: Response, data_selector: Any) -> List[Any]:
        body = parsed_body(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise ApiError(
                f"The AutoSync API answered {_path_of(response)} without a `data` list; "
                "is the base URL right (it must end with /v1)?",
                response.status_code,
            )
        return data

    def get_object(self, path: str) -> Dict[str, Any]:
        response = self.get(path)
        body = parsed_body(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ApiError(f"The AutoSync API answered {path} without a `data` object.")
        return data


def build_client(
    base_url: str,
    auth: Auth,
    stats: RequestStats,
    retry: Optional[RetryPolicy] = None,
    budget: Optional[RateBudget] = None,
    max_concurrency: int = 4,
) -> AutosyncRESTClient:
    """The client of one run: its session shares the credential's process-wide budget."""
    retry = retry or RetryPolicy()
    session = AutosyncSession(
        auth=auth,
        budget=budget or budget_for(auth.credential_id),
        stats=stats,
        retry=retry,
        base_url=base_url,
        max_concurrency=max_concurrency,
    )
    if isinstance(auth, ClientCredentialsAuth):
        auth.session = session
        auth.access_token_url = auth.access_token_url or f"{base_url.rstrip('/')}/{TOKEN_PATH}"
    return AutosyncRESTClient(base_url=base_url, auth=auth, session=session)

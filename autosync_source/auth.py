"""The two ways to authenticate to AutoSync: an API key or OAuth client credentials.

Both are dlt auth specs (configurable from toml/env) and `requests` auth objects. Neither
ever shows a secret in repr(), str(), logs or error messages.
"""
from __future__ import annotations

import hashlib
import threading
import time
from typing import Any, Dict, Optional, Sequence

from requests.auth import HTTPBasicAuth

from dlt.common.configuration.specs.base_configuration import configspec
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth, OAuth2ClientCredentials

from autosync_source.errors import AuthenticationError, mask_secret
from autosync_source.settings import KEY_PREFIXES


def key_environment(api_key: str) -> Optional[str]:
    """`sandbox` or `live` from the key prefix, None for a key of neither kind."""
    for prefix, environment in KEY_PREFIXES.items():
        if api_key.startswith(prefix):
            return environment
    return None


@configspec
class ApiKeyAuth(BearerTokenAuth):
    """`Authorization: Bearer sk_...`; the environment follows from the key's prefix."""

    @property
    def environment(self) -> Optional[str]:
        return key_environment(self.token or "")

    @property
    def credential_id(self) -> str:
        """What the rate limit is counted against: the key, as a sha256 digest so the raw key
        is not held in one more place (the budget registry only needs a stable identity)."""
        return "key:" + hashlib.sha256((self.token or "").encode()).hexdigest()

    def describe(self) -> str:
        return f"API key {mask_secret(self.token)}"

    def __repr__(self) -> str:
        return f"ApiKeyAuth({mask_secret(self.token)})"

    __str__ = __repr__


@configspec
class ClientCredentialsAuth(OAuth2ClientCredentials):
    """OAuth 2.0 client credentials, as the AutoSync docs describe them.

    dlt's OAuth2ClientCredentials is the base, but three things differ, hence the overrides:
    AutoSync wants the client id and secret as HTTP Basic auth (not in the form body) plus
    the scopes; a token is renewed a margin *before* it expires (dlt renews at expiry, so a
    request sent a moment before expiry arrives with a dead token); and several threads
    share the object, so fetching is done under a lock, once.
    """

    scopes: Optional[Sequence[str]] = None
    renew_margin_seconds: float = 60.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._lock = threading.Lock()
        self._expires_at = 0.0  # monotonic clock

    def _shared(self) -> "_SharedToken":
        # One token per credential (token URL, client, secret, scopes) per process: every client
        # built on the same credentials (the engine's shop listing, one per shop run) shares it.
        return _shared_token(str(self.access_token_url), str(self.client_id), str(self.client_secret),
                             tuple(sorted(set(self.scopes or ()))))

    @property
    def credential_id(self) -> str:
        return f"oauth:{self.client_id}"

    def describe(self) -> str:
        return f"OAuth client {mask_secret(self.client_id)}"

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self.current_token()}"
        return request

    def current_token(self) -> str:
        shared = self._shared()
        with shared.lock:
            if shared.token is None or time.monotonic() >= shared.expires_at:
                self.obtain_token()
                shared.token, shared.expires_at = self.access_token, self._expires_at
            self.access_token, self._expires_at = shared.token, shared.expires_at
            return str(shared.token)

    def invalidate(self) -> None:
        """The API said 401 to our token (revoked, clock skew): fetch a new one next time."""
        shared = self._shared()
        with shared.lock:
            shared.expires_at = 0.0
        with self._lock:
            self._expires_at = 0.0

    def is_token_expired(self) -> bool:
        return time.monotonic() >= self._expires_at

    def obtain_token(self) -> None:
        # self.session is the connector's session: the token request is counted, paced by the
        # client's budget and retried like any other; a 401 becomes an AuthenticationError.
        response = self.session.post(self.access_token_url, **self.build_access_token_request())
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthenticationError(
                f"The token endpoint answered without an access_token for {self.describe()}."
            )
        lifetime = float(self.parse_expiration_in_seconds(body))
        # Renew at the margin, or at 10% of the lifetime for short-lived tokens.
        margin = min(self.renew_margin_seconds, lifetime * 0.1)
        self.access_token = token
        self._expires_at = time.monotonic() + lifetime - margin

    def build_access_token_request(self) -> Dict[str, Any]:
        data = {"grant_type": "client_credentials"}
        if self.scopes:
            data["scope"] = " ".join(sorted(set(self.scopes)))
        return {
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "data": data,
            "auth": HTTPBasicAuth(str(self.client_id), str(self.client_secret)),
        }

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(client_id={mask_secret(self.client_id)})"

    __str__ = __repr__


class _SharedToken:
    """A cached access token and its renewal time; its repr never shows the token."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: Optional[str] = None
        self.expires_at = 0.0  # monotonic clock

    def __repr__(self) -> str:
        return "_SharedToken(...)"


_TOKENS: Dict[str, _SharedToken] = {}
_TOKENS_LOCK = threading.Lock()


def _shared_token(url: str, client_id: str, client_secret: str, scopes: Sequence[str]) -> _SharedToken:
    # Keyed by a digest so the secret is not held in one more place.
    key = hashlib.sha256("\0".join([url, client_id, client_secret, *scopes]).encode()).hexdigest()
    with _TOKENS_LOCK:
        shared = _TOKENS.get(key)
        if shared is None:
            shared = _TOKENS[key] = _SharedToken()
        return shared

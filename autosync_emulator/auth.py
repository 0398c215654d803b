"""Credentials: API keys, OAuth 2.0 client credentials, access tokens and scopes.

API keys carry every scope; an OAuth token carries the scopes it asked for (a subset of
its client's grant). Token lifetimes use the wall clock (injectable, epoch seconds), like
the rate limit, because a client tracks `expires_in` in real time while the emulator's own clock
may jump by hours.
"""
from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .errors import ApiError
from .routes import ALL_SCOPES
from .seeding import rng_for

ENVIRONMENTS = ("sandbox", "live")


class AuthError(ApiError):
    """An authentication or authorization failure (401 / 403 / 400 on the token endpoint)."""


@dataclass(frozen=True)
class Principal:
    kind: str                      # "api_key" | "oauth"
    identity: str                  # the rate-limit bucket: the key, or the OAuth client id
    scopes: frozenset[str]
    shops: frozenset[int] | None   # None: every shop

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise AuthError(403, "insufficient_scope",
                            f"This request needs the '{scope}' scope, which the token was not granted.")

    def can_see_shop(self, shop_id: int) -> bool:
        return self.shops is None or shop_id in self.shops


@dataclass
class _Client:
    secret: str
    scopes: frozenset[str]
    shops: frozenset[int] | None


@dataclass
class _Token:
    client_id: str
    scopes: frozenset[str]
    shops: frozenset[int] | None
    expires_at: float


class Auth:
    def __init__(self, seed: int, environment: str, token_ttl_seconds: int = 3600,
                 clock: Callable[[], float] = time.time):
        self.clock = clock
        if environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {ENVIRONMENTS}, not {environment!r}")
        self.environment = environment
        self.token_ttl_seconds = token_ttl_seconds
        self._rng = rng_for(seed, "credentials")
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, frozenset[int] | None]] = {}
        self._clients: dict[str, _Client] = {}
        self._tokens: dict[str, _Token] = {}

    def _hex(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))

    def create_api_key(self, environment: str | None = None, shops=None) -> str:
        env = environment or self.environment
        if env not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {ENVIRONMENTS}")
        with self._lock:
            key = f"sk_{env}_{self._hex(32)}"
            self._keys[key] = (env, frozenset(shops) if shops is not None else None)
        return key

    def revoke_api_key(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)

    def create_oauth_client(self, scopes=None, shops=None) -> tuple[str, str]:
        scopes = tuple(scopes) if scopes is not None else ALL_SCOPES
        unknown = [s for s in scopes if s not in ALL_SCOPES]
        if unknown:
            raise ValueError(f"unknown scopes: {unknown}")
        with self._lock:
            client_id = f"cli_{self._hex(16)}"
            secret = f"cs_{self._hex(32)}"
            self._clients[client_id] = _Client(secret, frozenset(scopes),
                                               frozenset(shops) if shops is not None else None)
        return client_id, secret

    def issue_token(self, authorization: str | None, form: dict[str, str]) -> dict:
        client_id, secret = _basic_credentials(authorization, form)
        client = self._clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret, secret):
            raise AuthError(401, "unauthorized", "Invalid OAuth client credentials.")
        grant = form.get("grant_type")
        if grant != "client_credentials":
            raise AuthError(400, "invalid_request",
                            "grant_type must be 'client_credentials'.", "grant_type")
        requested = form.get("scope")
        if requested is None or not requested.strip():
            scopes = client.scopes
        else:
            wanted = requested.split()
            missing = [s for s in wanted if s not in client.scopes]
            if missing:
                raise AuthError(400, "invalid_request",
                                f"Scope '{missing[0]}' was not granted to this client.", "scope")
            scopes = frozenset(wanted)
        token = "at_" + secrets.token_hex(24)
        with self._lock:
            now = self.clock()
            # forget expired tokens so a long run does not grow without bound
            for old in [t for t, v in self._tokens.items() if v.expires_at <= now]:
                del self._tokens[old]
            self._tokens[token] = _Token(client_id, scopes, client.shops, now + self.token_ttl_seconds)
        ordered = " ".join(s for s in ALL_SCOPES if s in scopes)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl_seconds,
                "scope": ordered}

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthError(401, "unauthorized", "Missing Authorization header: use 'Bearer <api key or token>'.")
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise AuthError(401, "unauthorized", "Authorization must be 'Bearer <api key or token>'.")
        if credential.startswith("sk_"):
            for env in ENVIRONMENTS:
                if credential.startswith(f"sk_{env}_") and env != self.environment:
                    raise AuthError(401, "unauthorized",
                                    f"This is a {env} key, but this is the {self.environment} environment.")
            entry = self._keys.get(credential)
            if entry is None:
                raise AuthError(401, "unauthorized", "Invalid or revoked API key.")
            return Principal("api_key", credential, frozenset(ALL_SCOPES), entry[1])
        token = self._tokens.get(credential)
        if token is None:
            raise AuthError(401, "unauthorized", "Invalid access token.")
        if token.expires_at <= self.clock():
            raise AuthError(401, "unauthorized", "The access token has expired; request a new one.")
        return Principal("oauth", token.client_id, token.scopes, token.shops)


def _basic_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str]:
    if authorization and authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise AuthError(401, "unauthorized", "Malformed Basic credentials.") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise AuthError(401, "unauthorized", "Malformed Basic credentials.")
        return client_id, secret
    # RFC 6749 also allows the credentials in the form body
    if form.get("client_id") and form.get("client_secret"):
        return form["client_id"], form["client_secret"]
    raise AuthError(401, "unauthorized", "OAuth client credentials are required (HTTP Basic).")

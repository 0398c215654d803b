"""Errors a user can act on. Each message says what is wrong and what to do about it.

They carry no secrets: keys and tokens never enter a message (only a masked hint).
"""
from __future__ import annotations

from typing import Optional


class AutosyncError(Exception):
    """Base of every error the connector raises on purpose; run.py prints its message only."""

    exit_code = 2


class ConfigurationError(AutosyncError):
    """The configuration is wrong before any request is made."""


class AuthenticationError(AutosyncError):
    """401: the key or token is unknown, revoked, expired or for the other environment."""


class ScopeError(AutosyncError):
    """403 insufficient_scope: the credentials lack a scope a selected resource needs."""

    def __init__(self, scope: str, resource: str, detail: str = "") -> None:
        from autosync_source.settings import ENDPOINTS

        # Every resource that needs the scope, not only the one that met the refusal first.
        needing = [endpoint.name for endpoint in ENDPOINTS if scope and endpoint.scope == scope]
        self.scope = scope or "unknown"
        self.resources = needing or [resource]
        others = [e.name for e in ENDPOINTS if e.name not in self.resources]
        message = (
            f"The credentials lack the scope '{self.scope}' needed by the resource(s) "
            f"{', '.join(self.resources)}. Grant the scope '{self.scope}' to the API key or OAuth "
            f"client, or exclude the resource with --resources (e.g. --resources {','.join(others)})."
        )
        if detail:
            message += f" (API said: {detail})"
        super().__init__(message)


class ShopAccessError(AutosyncError):
    """A shop asked for with --shops is not visible to the credentials."""


class ApiUnreachableError(AutosyncError):
    """The API could not be reached (DNS, refused connection, timeouts) after retries."""


class ApiError(AutosyncError):
    """The API answered with an error the connector cannot work around."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        self.status = status
        super().__init__(message)


class ReadCancelled(KeyboardInterrupt):
    """The engine stopped the run (an interrupt, or another shop's run-wide failure) while this
    shop was reading: raised in its readers so its extract fails and nothing of it commits."""


class DestinationError(AutosyncError):
    """The destination (warehouse) refused or could not be reached; nothing was committed."""

    exit_code = 3


def mask_secret(secret: Optional[str]) -> str:
    """A hint that identifies a secret to its owner without revealing it: prefix and last 4."""
    if not secret:
        return "<none>"
    for prefix in ("sk_sandbox_", "sk_live_"):
        if secret.startswith(prefix):
            return f"{prefix}…{secret[-4:]}" if len(secret) > len(prefix) + 8 else f"{prefix}…"
    return f"…{secret[-4:]}" if len(secret) > 12 else "…"

"""The AutoSync error envelope, shared by every layer that answers a request."""
from __future__ import annotations

import orjson

STATUS_CODES = {400: "invalid_request", 401: "unauthorized", 403: "insufficient_scope", 404: "not_found",
                405: "invalid_request", 409: "conflict", 422: "validation_error", 429: "rate_limited",
                500: "server_error", 502: "server_error", 503: "server_error", 504: "server_error"}


class ApiError(Exception):
    """Raised anywhere below the routes; turned into the envelope by the HTTP layer."""

    def __init__(self, status: int, code: str | None, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "server_error")
        self.message = message
        self.field = field


def envelope(status: int, code: str | None, message: str, request_id: str, field: str | None = None,
             legacy_codes: bool = False) -> bytes:
    code = code or STATUS_CODES.get(status, "server_error")
    if legacy_codes and code == "validation_error":
        code = "invalid_parameter"
    error = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    error["status"] = status
    return orjson.dumps({"success": False, "error": error, "request_id": request_id})

"""Validation of JSON request bodies: each helper returns the value or raises a 422 naming the field.

The OpenAPI request schemas (openapi_schemas.py) state the same rules; a change here needs one there.
"""
from __future__ import annotations

import re
from typing import Any

from ..errors import ApiError
from ..timefmt import iso, parse_iso


def field_error(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", message, field)


def req_str(body: dict, field: str, max_len: int = 200) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise field_error(field, f"The '{field}' field is required and must be a non-empty string.")
    if len(value) > max_len:
        raise field_error(field, f"The '{field}' field must be at most {max_len} characters.")
    return value.strip()


def opt_str(body: dict, field: str, max_len: int = 500) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise field_error(field, f"The '{field}' field must be a string.")
    if len(value) > max_len:
        raise field_error(field, f"The '{field}' field must be at most {max_len} characters.")
    return value


def req_int(body: dict, field: str, lo: int = 1, hi: int = 2**53) -> int:
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise field_error(field, f"The '{field}' field is required and must be an integer.")
    if not lo <= value <= hi:
        raise field_error(field, f"The '{field}' field must be between {lo} and {hi}.")
    return value


def opt_int(body: dict, field: str, lo: int = 0, hi: int = 2**53) -> int | None:
    return None if body.get(field) is None else req_int(body, field, lo, hi)


def opt_bool(body: dict, field: str) -> bool | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise field_error(field, f"The '{field}' field must be true or false.")
    return value


def req_amount(body: dict, field: str, lo_cents: int = 1, hi_cents: int = 10**9) -> int:
    """A money or quantity value with at most 2 decimals, in hundredths."""
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise field_error(field, f"The '{field}' field is required and must be a number.")
    if abs(value) > 1e12:
        raise field_error(field, f"The '{field}' field is out of range.")
    hundredths = round(value * 100)
    if abs(value * 100 - hundredths) > 1e-6:
        raise field_error(field, f"The '{field}' field allows at most 2 decimals.")
    if not lo_cents <= hundredths <= hi_cents:
        raise field_error(field, f"The '{field}' field must be between {lo_cents / 100} and {hi_cents / 100}.")
    return int(hundredths)


def opt_amount(body: dict, field: str, lo_cents: int = 0, hi_cents: int = 10**9) -> int | None:
    return None if body.get(field) is None else req_amount(body, field, lo_cents, hi_cents)


def req_timestamp(body: dict, field: str) -> int:
    value = body.get(field)
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value):
        raise field_error(field, f"The '{field}' field must be a UTC timestamp like 2024-01-15T10:30:00Z.")
    try:
        ts = parse_iso(value)
        if iso(ts) != value:
            raise ValueError
    except (ValueError, OverflowError):
        raise field_error(field, f"The '{field}' field is not a valid date.") from None
    return ts


def only_fields(body: Any, allowed: set[str]) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The request body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise field_error(unknown[0], f"Unknown field '{unknown[0]}'.")
    return body


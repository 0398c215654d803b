"""List requests: query parameters parsed and validated into a `ListQuery`, and list bodies
built by joining each row's cached bytes (the 500 pages/s target rules out re-serializing)."""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

from .errors import ApiError
from .routes import (BOOL_FILTERS, DEFAULT_PER_PAGE, ENUM_FILTERS, INT_FILTERS, MAX_INT, MAX_PAGE, MAX_PER_PAGE,
                     SEARCH, STR_FILTERS)
from .store import ListQuery, Store


def parse_timestamp(value: str, field: str) -> float:
    text = value.strip()
    if not text or len(text) > 40:
        raise ApiError(422, "validation_error", f"'{field}' must be an ISO 8601 timestamp.", field)
    try:
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(422, "validation_error",
                       f"'{field}' must be an ISO 8601 timestamp like 2024-01-15T10:30:00Z.", field) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        raise ApiError(422, "validation_error", f"'{field}' is out of range.", field) from None


def parse_int(value: str, field: str, minimum: int | None = None) -> int:
    text = value.strip()
    if not re.fullmatch(r"[+-]?\d{1,19}", text):
        raise ApiError(422, "validation_error", f"'{field}' must be an integer.", field)
    number = int(text)
    if number > MAX_INT or number < -MAX_INT:
        raise ApiError(422, "validation_error", f"'{field}' is out of range.", field)
    if minimum is not None and number < minimum:
        raise ApiError(422, "validation_error", f"'{field}' must be >= {minimum}.", field)
    return number


def parse_bool(value: str, field: str) -> bool:
    low = value.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise ApiError(422, "validation_error", f"'{field}' must be true or false.", field)


def query_params(request: Request) -> dict[str, str]:
    """Last value wins for a repeated parameter; undecodable bytes are replaced, not fatal."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    return dict(parse_qsl(raw, keep_blank_values=True, errors="replace"))


def parse_list_query(settings: dict, resource: str, params: dict[str, str]) -> ListQuery:
    page = parse_int(params["page"], "page", 1) if "page" in params else 1
    per_page = parse_int(params["per_page"], "per_page", 1) if "per_page" in params else DEFAULT_PER_PAGE
    per_page = min(per_page, MAX_PER_PAGE)
    if page > MAX_PAGE:
        raise ApiError(422, "validation_error", "'page' is out of range.", "page")
    sort = params.get("sort", "created_at")
    if sort not in ("created_at", "updated_at", "id"):
        raise ApiError(422, "validation_error", "'sort' must be one of created_at, updated_at, id.", "sort")
    if sort == "updated_at" and settings["refuse_sort_updated_at"]:
        raise ApiError(422, "validation_error", "Sorting by updated_at is not supported.", "sort")
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(422, "validation_error", "'order' must be asc or desc.", "order")
    created_after = parse_timestamp(params["created_after"], "created_after") if "created_after" in params else None
    updated_after = parse_timestamp(params["updated_after"], "updated_after") if "updated_after" in params else None
    if resource in settings["ignore_updated_after"]:
        updated_after = None
    filters: dict[str, Any] = {}
    for field, allowed in ENUM_FILTERS.get(resource, {}).items():
        if field in params:
            if params[field] not in allowed:
                raise ApiError(422, "validation_error", f"'{field}' must be one of {', '.join(allowed)}.", field)
            filters[field] = params[field]
    for field in INT_FILTERS.get(resource, ()):
        if field in params:
            filters[field] = parse_int(params[field], field)
    for field in STR_FILTERS.get(resource, ()):
        if field in params and params[field].strip():
            filters[field] = params[field].strip()
    for field in BOOL_FILTERS.get(resource, ()):
        if field in params:
            filters[field] = parse_bool(params[field], field)
    search = None
    if resource in SEARCH and params.get("search", "").strip():
        search = params["search"].strip()
    return ListQuery(page, per_page, sort, order, created_after, updated_after,
                     settings["updated_after_inclusive"], filters, search)


def list_body(store: Store, settings: dict, resource: str, shop_ids: list[int], q: ListQuery,
              before: Callable[[], None] | None = None) -> bytes:
    """`before` runs under the store lock just before the page is computed (the list hooks)."""
    embed = settings["embed_children"]
    with store.lock:
        if before is not None:
            before()
        ids, total = store.query(resource, shop_ids, q)
        row = store.detail_bytes if embed else store.summary_bytes
        rows = b",".join(row(resource, oid) for oid in ids)
    if settings["legacy_pagination"]:
        pagination = {"page": q.page, "per_page": q.per_page, "total": total}
    else:
        pages = math.ceil(total / q.per_page) if total else 0
        pagination = {"page": q.page, "per_page": q.per_page, "total": total, "pages": pages,
                      "has_more": q.page < pages}
    return b'{"success":true,"data":[' + rows + b'],"pagination":' + orjson.dumps(pagination) + b"}"


def object_body(data: bytes) -> bytes:
    return b'{"success":true,"data":' + data + b"}"


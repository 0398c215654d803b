"""The AutoSync API over HTTP: routes parse the request, call the store/backend, serialize.

Outermost to innermost: `EdgeMiddleware` (request id, rate-limit headers, request log,
errors as the envelope) -> fault rules -> `GateMiddleware` (auth, rate limit) -> routes.
All middleware is plain ASGI: Starlette's BaseHTTPMiddleware costs too much per request
for the 500 pages/s target.
"""
from __future__ import annotations

import math
import re
import secrets
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from .auth import AuthError, Principal
from .core import EmulatorCore
from .errors import ApiError, envelope
from .store import ListQuery
from .vin import decode

JSON = "application/json"

# collection path -> resource name (aliases of work orders included)
COLLECTIONS = {"customers": "customers", "vehicles": "vehicles", "workorders": "work_orders",
               "work-orders": "work_orders", "work_orders": "work_orders", "payments": "payments",
               "inspections": "inspections", "appointments": "appointments", "inventory": "inventory",
               "employees": "employees"}
READ_SCOPES = {"shops": "shops:read", "employees": "employees:read", "customers": "customers:read",
               "vehicles": "vehicles:read", "work_orders": "workorders:read", "payments": "payments:read",
               "inspections": "workorders:read", "appointments": "workorders:read",
               "inventory": "inventory:read"}
WO_STATUSES = ("draft", "in_progress", "waiting_parts", "completed", "invoiced")
ENUM_FILTERS = {
    "work_orders": {"status": WO_STATUSES},
    "inspections": {"status": ("in_progress", "sent", "responded")},
    "appointments": {"status": ("scheduled", "arrived", "completed", "cancelled", "no_show")},
    "payments": {"status": ("pending", "succeeded", "failed"), "method": ("card", "cash", "check", "text_to_pay")},
    "employees": {"role": ("technician", "service_advisor", "manager")},
}
INT_FILTERS = {
    "vehicles": ("customer_id",),
    "work_orders": ("customer_id", "vehicle_id", "technician_id"),
    "payments": ("work_order_id",),
    "inspections": ("work_order_id", "vehicle_id", "technician_id"),
    "appointments": ("customer_id", "vehicle_id", "work_order_id"),
}
STR_FILTERS = {"vehicles": ("vin", "make")}
BOOL_FILTERS = {"customers": ("is_business",), "employees": ("active",)}
SEARCH = {"customers"}
MAX_INT = 2**63 - 1


# ------------------------------------------------------------------ helpers

def ctx_of(request: Request) -> dict:
    return request.scope["autosync"]


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON)


def raw_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=JSON)


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


def parse_list_query(core: EmulatorCore, resource: str, params: dict[str, str]) -> ListQuery:
    settings = core.settings
    page = parse_int(params["page"], "page", 1) if "page" in params else 1
    per_page = parse_int(params["per_page"], "per_page", 1) if "per_page" in params else 25
    per_page = min(per_page, 100)
    if page > 10**9:
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


def list_body(core: EmulatorCore, resource: str, shop_ids: list[int], q: ListQuery) -> bytes:
    store = core.store
    embed = core.settings["embed_children"]
    with store.lock:
        ids, total = store.query(resource, shop_ids, q)
        row = store.detail_bytes if embed else store.summary_bytes
        rows = b",".join(row(resource, oid) for oid in ids)
    if core.settings["legacy_pagination"]:
        pagination = {"page": q.page, "per_page": q.per_page, "total": total}
    else:
        pages = math.ceil(total / q.per_page) if total else 0
        pagination = {"page": q.page, "per_page": q.per_page, "total": total, "pages": pages,
                      "has_more": q.page < pages}
    return b'{"success":true,"data":[' + rows + b'],"pagination":' + orjson.dumps(pagination) + b"}"


def object_body(data: bytes) -> bytes:
    return b'{"success":true,"data":' + data + b"}"


def principal(request: Request) -> Principal:
    return ctx_of(request)["principal"]


def shop_or_404(request: Request, core: EmulatorCore, shop_id: int) -> None:
    if not principal(request).can_see_shop(shop_id) or core.store.visible("shops", shop_id) is None:
        raise ApiError(404, "not_found", f"Shop {shop_id} not found.")


def collection_or_404(request: Request) -> str:
    name = request.path_params["collection"]
    resource = COLLECTIONS.get(name)
    if resource is None:
        raise ApiError(404, "not_found", f"No such resource: {name!r}.")
    return resource


# ------------------------------------------------------------------ read routes

def make_routes(core_ref: Callable[[], EmulatorCore]) -> list:
    async def list_shops(request: Request) -> Response:
        core = core_ref()
        principal(request).require("shops:read")
        q = parse_list_query(core, "shops", query_params(request))
        p = principal(request)
        shop_ids = [sid for sid in core.store.tables["shops"].visible if p.can_see_shop(sid)]
        return raw_response(list_body(core, "shops", sorted(shop_ids), q))

    async def get_shop(request: Request) -> Response:
        core = core_ref()
        principal(request).require("shops:read")
        shop_id = request.path_params["shop_id"]
        shop_or_404(request, core, shop_id)
        with core.store.lock:
            data = core.store.detail_bytes("shops", shop_id)
        return raw_response(object_body(data))

    async def list_collection(request: Request) -> Response:
        core = core_ref()
        resource = collection_or_404(request)
        principal(request).require(READ_SCOPES[resource])
        shop_id = request.path_params["shop_id"]
        shop_or_404(request, core, shop_id)
        q = parse_list_query(core, resource, query_params(request))
        return raw_response(list_body(core, resource, [shop_id], q))

    async def get_object(request: Request) -> Response:
        core = core_ref()
        resource = collection_or_404(request)
        principal(request).require(READ_SCOPES[resource])
        shop_id = request.path_params["shop_id"]
        shop_or_404(request, core, shop_id)
        oid = request.path_params["oid"]
        with core.store.lock:
            obj = core.store.visible(resource, oid)
            data = core.store.detail_bytes(resource, oid) if obj is not None and obj["shop_id"] == shop_id else None
        if data is None:
            raise ApiError(404, "not_found", f"{resource.rstrip('s').replace('_', ' ').capitalize()} {oid} not found.")
        return raw_response(object_body(data))

    async def decode_vin(request: Request) -> Response:
        core = core_ref()
        principal(request).require("vehicles:read")
        data = decode(request.path_params["vin"], lambda vin: core.store.find_visible("vehicles", "vin", vin))
        return raw_response(object_body(orjson.dumps(data)))

    async def oauth_token(request: Request) -> Response:
        core = core_ref()
        body = await request.body()
        form = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True, errors="replace"))
        try:
            token = core.auth.issue_token(request.headers.get("authorization"), form)
        except AuthError as exc:
            raise ApiError(exc.status, exc.code, exc.message, exc.field) from None
        return json_response(token)

    # ---------------------------------------------------------------- writes
    async def write(request: Request, kind: str) -> Response:
        core = core_ref()
        resource = collection_or_404(request)
        entry = WRITES.get((kind, resource))
        if entry is None:
            raise ApiError(405, "invalid_request", f"{request.method} is not supported on this resource.")
        scope_needed, method_name, status, result_resource = entry
        principal(request).require(scope_needed)
        shop_id = request.path_params["shop_id"]
        shop_or_404(request, core, shop_id)
        body = await json_body(request) if kind not in ("delete",) else None
        oid = request.path_params.get("oid")
        with core.store.lock:
            backend = core.backend
            fn = getattr(backend, method_name)
            args = (shop_id,) if oid is None else (shop_id, oid)
            if kind == "delete":
                fn(*args)
                return Response(status_code=204)
            result = fn(*args, body)
            data = orjson.dumps(backend.detail(result_resource, result) if result_resource else result)
        return raw_response(object_body(data), status)

    async def post_collection(request: Request) -> Response:
        return await write(request, "create")

    async def patch_object(request: Request) -> Response:
        return await write(request, "update")

    async def delete_object(request: Request) -> Response:
        return await write(request, "delete")

    async def patch_status(request: Request) -> Response:
        return await write(request, "status")

    async def post_jobs(request: Request) -> Response:
        return await write(request, "jobs")

    async def post_refunds(request: Request) -> Response:
        return await write(request, "refunds")

    # ---------------------------------------------------------------- webhooks
    async def webhooks_collection(request: Request) -> Response:
        core = core_ref()
        who = principal(request)
        who.require("webhooks:manage")
        if request.method == "POST":
            created = core.webhooks.create(who, await json_body(request))
            return raw_response(object_body(orjson.dumps(created)), 201)
        q = parse_list_query(core, "webhooks", query_params(request))
        rows = sorted(core.webhooks.list_for(who), key=lambda w: (w["id"] if q.sort == "id" else (w[q.sort], w["id"])),
                      reverse=q.order == "desc")
        start = (q.page - 1) * q.per_page
        total = len(rows)
        pages = math.ceil(total / q.per_page) if total else 0
        pagination = {"page": q.page, "per_page": q.per_page, "total": total}
        if not core.settings["legacy_pagination"]:
            pagination.update(pages=pages, has_more=q.page < pages)
        return json_response({"success": True, "data": rows[start:start + q.per_page], "pagination": pagination})

    async def webhook_object(request: Request) -> Response:
        core = core_ref()
        who = principal(request)
        who.require("webhooks:manage")
        wid = request.path_params["oid"]
        if request.method == "DELETE":
            core.webhooks.delete_for(who, wid)
            return Response(status_code=204)
        return raw_response(object_body(orjson.dumps(core.webhooks.get_for(who, wid))))

    async def openapi(request: Request) -> Response:
        from .openapi import openapi_bytes
        return raw_response(openapi_bytes())

    shop_obj = "/v1/shops/{shop_id:int}/{collection}/{oid:int}"
    routes = [
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        Route("/v1/oauth/token", oauth_token, methods=["POST"]),
        Route("/v1/webhooks", webhooks_collection, methods=["GET", "POST"]),
        Route("/v1/webhooks/{oid:int}", webhook_object, methods=["GET", "DELETE"]),
        Route("/v1/shops", list_shops, methods=["GET"]),
        Route("/v1/shops/{shop_id:int}", get_shop, methods=["GET"]),
        Route("/v1/vehicles/decode/{vin}", decode_vin, methods=["GET"]),
        Route("/v1/shops/{shop_id:int}/{collection}", list_collection, methods=["GET"]),
        Route("/v1/shops/{shop_id:int}/{collection}", post_collection, methods=["POST"]),
        Route(shop_obj, get_object, methods=["GET"]),
        Route(shop_obj, patch_object, methods=["PATCH"]),
        Route(shop_obj, delete_object, methods=["DELETE"]),
        Route(shop_obj + "/status", patch_status, methods=["PATCH"]),
        Route(shop_obj + "/jobs", post_jobs, methods=["POST"]),
        Route(shop_obj + "/refunds", post_refunds, methods=["POST"]),
    ]
    return routes


# (kind, resource) -> (scope, backend method, HTTP status, resource whose GET shape answers)
WRITES = {
    ("create", "customers"): ("customers:write", "create_customer", 201, "customers"),
    ("update", "customers"): ("customers:write", "update_customer", 200, "customers"),
    ("delete", "customers"): ("customers:write", "delete_customer", 204, None),
    ("create", "vehicles"): ("vehicles:write", "create_vehicle", 201, "vehicles"),
    ("update", "vehicles"): ("vehicles:write", "update_vehicle", 200, "vehicles"),
    ("create", "work_orders"): ("workorders:write", "create_work_order", 201, "work_orders"),
    ("update", "work_orders"): ("workorders:write", "update_work_order", 200, "work_orders"),
    ("status", "work_orders"): ("workorders:write", "set_status", 200, "work_orders"),
    ("jobs", "work_orders"): ("workorders:write", "add_job", 201, None),
    ("create", "payments"): ("payments:charge", "create_payment", 201, "payments"),
    ("refunds", "payments"): ("payments:charge", "refund", 201, None),
    ("create", "appointments"): ("workorders:write", "create_appointment", 201, "appointments"),
    ("update", "inventory"): ("inventory:write", "update_inventory", 200, "inventory"),
}


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > 1_000_000:
        raise ApiError(400, "invalid_request", "The request body is too large (max 1 MB).")
    if not raw.strip():
        raise ApiError(400, "invalid_request", "A JSON body is required.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_request", "The request body is not valid JSON.") from None


PUBLIC_PATHS = ("/v1/oauth/token", "/v1/openapi.json")


# ------------------------------------------------------------------ middleware

class GateMiddleware:
    """Authentication and the per-credential rate limit for /v1 requests."""

    def __init__(self, app, core_ref: Callable[[], EmulatorCore]):
        self.app = app
        self.core_ref = core_ref

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/") or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        core = self.core_ref()
        ctx = scope["autosync"]
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            who = core.auth.authenticate(authorization)
        except AuthError as exc:
            raise ApiError(exc.status, exc.code, exc.message, exc.field) from None
        ctx["principal"] = who
        ctx["identity"] = who.identity
        decision = core.ratelimiter.hit(who.identity)
        ctx["rate"] = decision
        if not decision.allowed:
            ctx["retry_after"] = decision.retry_after
            raise ApiError(429, "rate_limited",
                           f"Rate limit of {decision.limit} requests per window exceeded; retry in {decision.retry_after} s.")
        await self.app(scope, receive, send)


def route_template(path: str) -> str:
    """`/v1/shops/12/workorders/5` -> `/v1/shops/{shop_id}/workorders/{id}` for the request log."""
    parts = path.split("/")
    out = []
    for i, part in enumerate(parts):
        if part.isdigit():
            out.append("{shop_id}" if i > 0 and parts[i - 1] == "shops" else "{id}")
        elif i > 0 and parts[i - 1] == "decode":
            out.append("{vin}")
        else:
            out.append(part)
    return "/".join(out)


class EdgeMiddleware:
    """Request id, X-RateLimit-* on every response, the error envelope, the request log."""

    def __init__(self, app, core_ref: Callable[[], EmulatorCore]):
        self.app = app
        self.core_ref = core_ref

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        core = self.core_ref()
        request_id = "req_" + secrets.token_hex(8)
        ctx = {"request_id": request_id, "raw_send": send}
        scope["autosync"] = ctx
        state = {"status": 0, "started": False}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                state["started"] = True
                state["status"] = message["status"]
                decision = ctx.get("rate") or core.ratelimiter.peek(ctx.get("identity"))
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-ratelimit-limit", str(decision.limit).encode()))
                headers.append((b"x-ratelimit-remaining", str(decision.remaining).encode()))
                headers.append((b"x-ratelimit-reset", str(decision.reset).encode()))
                if "retry_after_header" in ctx:
                    headers.append((b"retry-after", str(ctx["retry_after_header"]).encode()))
                elif message["status"] == 429:
                    retry = ctx.get("retry_after") or decision.retry_after or 1
                    if not any(h[0].lower() == b"retry-after" for h in headers):
                        headers.append((b"retry-after", str(retry).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ApiError as exc:
            if state["started"]:
                raise
            await self._error(send_with_headers, core, exc.status, exc.code, exc.message, exc.field, request_id)
        except Exception:  # a bug: still answer with the envelope, never a bare traceback
            if state["started"]:
                raise
            import logging
            logging.getLogger("autosync_emulator").exception("unhandled error")
            await self._error(send_with_headers, core, 500, "server_error", "Internal server error.", None, request_id)
        finally:
            if not scope["path"].startswith("/_emulator") and (state["status"] or ctx.get("dropped")):
                core.request_log.record(f"{scope['method']} {route_template(scope['path'])}",
                                        state["status"] or "dropped")

    async def _error(self, send, core, status, code, message, field, request_id):
        body = envelope(status, code, message, request_id, field, core.settings["legacy_error_codes"])
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def build_app(core_ref: Callable[[], EmulatorCore]):
    from . import control
    from .faults import FaultMiddleware

    def error_response(request: Request, status: int, code: str | None, message: str,
                       field: str | None = None) -> Response:
        ctx = request.scope.get("autosync", {})
        body = envelope(status, code, message, ctx.get("request_id", "req_unknown"), field,
                        core_ref().settings["legacy_error_codes"])
        return Response(body, status_code=status, media_type=JSON)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if exc.status == 429:
            request.scope["autosync"]["retry_after"] = request.scope["autosync"].get("retry_after", 1)
        return error_response(request, exc.status, exc.code, exc.message, exc.field)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 404:
            return error_response(request, 404, "not_found", f"No route for {request.method} {request.url.path}.")
        if status == 405:
            return error_response(request, 405, "invalid_request", f"Method {request.method} is not allowed here.")
        return error_response(request, status, None, str(getattr(exc, "detail", "Error.")))

    async def server_error(request: Request, exc: Exception) -> Response:
        return error_response(request, 500, "server_error", "Internal server error.")

    routes = make_routes(core_ref) + [Mount("/_emulator", routes=control.routes(core_ref))]
    from starlette.exceptions import HTTPException
    starlette = Starlette(routes=routes, exception_handlers={ApiError: api_error, HTTPException: http_error,
                                                             Exception: server_error})
    gated = GateMiddleware(starlette, core_ref)
    faulted = FaultMiddleware(gated, core_ref)
    return EdgeMiddleware(faulted, core_ref)

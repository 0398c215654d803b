"""The AutoSync API over HTTP: handlers parse the request, call the store/backend, serialize.

Which handler serves which path, method and scope comes from the route table (`routes.py`),
the same table the OpenAPI document is built from. Paths that exist answer other methods
with 405 and an `Allow` header (Starlette's router does that for a route with several methods).
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from . import control
from .auth import AuthError, Principal
from .core import EmulatorCore
from .errors import ApiError, envelope
from .faults import FaultMiddleware
from .listing import list_body, object_body, parse_list_query, query_params
from .middleware import JSON, EdgeMiddleware, GateMiddleware
from .openapi import openapi_bytes
from .routes import OPERATIONS, Operation, alias_paths, starlette_path
from .vin import decode

Handler = Callable[[Request], Awaitable[Response]]
MAX_BODY_BYTES = 1_000_000


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON)


def raw_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=JSON)


def principal(request: Request) -> Principal:
    return request.scope["autosync"]["principal"]


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(400, "invalid_request", "The request body is too large (max 1 MB).")
    if not raw.strip():
        raise ApiError(400, "invalid_request", "A JSON body is required.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_request", "The request body is not valid JSON.") from None


def shop_or_404(request: Request, core: EmulatorCore, shop_id: int) -> None:
    if not principal(request).can_see_shop(shop_id) or core.store.visible("shops", shop_id) is None:
        raise ApiError(404, "not_found", f"Shop {shop_id} not found.")


def _hooks(core: EmulatorCore, request: Request, q: Any) -> Callable[[], None] | None:
    """The list hooks of this request (faults.ListHooks), to run under the store lock."""
    if not core.list_hooks.active:
        return None
    return lambda: core.list_hooks.before_page(core, request.url.path, q.page, q)


# ------------------------------------------------------------------ handlers, one factory per kind

def make_handler(op: Operation, core_ref: Callable[[], EmulatorCore]) -> Handler:
    scope = op.scope
    resource = op.resource

    async def list_shops(request: Request) -> Response:
        core = core_ref()
        who = principal(request)
        who.require(scope)
        q = parse_list_query(core.settings, "shops", query_params(request))
        shop_ids = [sid for sid in core.store.visible_ids("shops") if who.can_see_shop(sid)]
        return raw_response(list_body(core.store, core.settings, "shops", sorted(shop_ids), q, _hooks(core, request, q)))

    async def get_shop(request: Request) -> Response:
        core = core_ref()
        principal(request).require(scope)
        shop_id = request.path_params["shop_id"]
        shop_or_404(request, core, shop_id)
        with core.store.lock:
            data = core.store.detail_bytes("shops", shop_id)
        return raw_response(object_body(data))

    async def list_collection(request: Request) -> Response:
        core = core_ref()
        principal(request).require(scope)
        shop_id = request.path_params["shop_id"]
        shop_or_404(request, core, shop_id)
        q = parse_list_query(core.settings, resource, query_params(request))
        return raw_response(list_body(core.store, core.settings, resource, [shop_id], q, _hooks(core, request, q)))

    async def get_object(request: Request) -> Response:
        core = core_ref()
        principal(request).require(scope)
        shop_id = request.path_params["shop_id"]
        shop_or_404(request, core, shop_id)
        oid = request.path_params["oid"]
        with core.store.lock:
            obj = core.store.visible(resource, oid)
            data = core.store.detail_bytes(resource, oid) if obj is not None and obj["shop_id"] == shop_id else None
        if data is None:
            raise ApiError(404, "not_found", f"{resource.rstrip('s').replace('_', ' ').capitalize()} {oid} not found.")
        return raw_response(object_body(data))

    async def write(request: Request) -> Response:
        core = core_ref()
        principal(request).require(scope)
        shop_id = request.path_params["shop_id"]
        shop_or_404(request, core, shop_id)
        body = await json_body(request) if op.method != "DELETE" else None
        oid = request.path_params.get("oid")
        args = (shop_id,) if oid is None else (shop_id, oid)
        with core.store.lock:
            backend = core.backend
            method = getattr(backend, op.backend_method)
            if op.method == "DELETE":
                method(*args)
                return Response(status_code=204)
            result = method(*args, body)
            data = orjson.dumps(backend.detail(op.detail_of, result) if op.detail_of else result)
        return raw_response(object_body(data), op.status)

    async def decode_vin(request: Request) -> Response:
        core = core_ref()
        principal(request).require(scope)
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

    async def list_webhooks(request: Request) -> Response:
        core = core_ref()
        who = principal(request)
        who.require(scope)
        q = parse_list_query(core.settings, "webhooks", query_params(request))
        rows = sorted(core.webhooks.list_for(who), key=lambda w: (w["id"] if q.sort == "id" else (w[q.sort], w["id"])),
                      reverse=q.order == "desc")
        start = (q.page - 1) * q.per_page
        total = len(rows)
        pages = math.ceil(total / q.per_page) if total else 0
        pagination = {"page": q.page, "per_page": q.per_page, "total": total}
        if not core.settings["legacy_pagination"]:
            pagination.update(pages=pages, has_more=q.page < pages)
        return json_response({"success": True, "data": rows[start:start + q.per_page], "pagination": pagination})

    async def create_webhook(request: Request) -> Response:
        core = core_ref()
        who = principal(request)
        who.require(scope)
        created = core.webhooks.create(who, await json_body(request))
        return raw_response(object_body(orjson.dumps(created)), 201)

    async def get_webhook(request: Request) -> Response:
        core = core_ref()
        who = principal(request)
        who.require(scope)
        return raw_response(object_body(orjson.dumps(core.webhooks.get_for(who, request.path_params["oid"]))))

    async def delete_webhook(request: Request) -> Response:
        core = core_ref()
        who = principal(request)
        who.require(scope)
        core.webhooks.delete_for(who, request.path_params["oid"])
        return Response(status_code=204)

    async def openapi(request: Request) -> Response:
        return raw_response(openapi_bytes())

    handlers = {"list_shops": list_shops, "get_shop": get_shop, "list": list_collection, "get": get_object,
                "write": write, "decode_vin": decode_vin, "oauth_token": oauth_token,
                "list_webhooks": list_webhooks, "create_webhook": create_webhook, "get_webhook": get_webhook,
                "delete_webhook": delete_webhook, "openapi": openapi}
    return handlers[op.handler]


def make_routes(core_ref: Callable[[], EmulatorCore]) -> list[Route]:
    """One Starlette route per path of the table (and per alias), dispatching on the method."""
    by_path: dict[str, dict[str, Handler]] = defaultdict(dict)
    for op in OPERATIONS:
        handler = make_handler(op, core_ref)
        for path in (op.path, *alias_paths(op)):
            by_path[starlette_path(path)][op.method] = handler
    routes = []
    for path, handlers in by_path.items():
        async def endpoint(request: Request, handlers: dict[str, Handler] = handlers) -> Response:
            return await handlers["GET" if request.method == "HEAD" else request.method](request)
        routes.append(Route(path, endpoint, methods=list(handlers)))
    return routes


def build_app(core_ref: Callable[[], EmulatorCore]):
    def error_response(request: Request, status: int, code: str | None, message: str,
                       field: str | None = None, headers: dict | None = None) -> Response:
        ctx = request.scope.get("autosync", {})
        body = envelope(status, code, message, ctx.get("request_id", "req_unknown"), field,
                        core_ref().settings["legacy_error_codes"])
        return Response(body, status_code=status, media_type=JSON, headers=headers)

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
            return error_response(request, 405, "invalid_request", f"Method {request.method} is not allowed here.",
                                  headers=getattr(exc, "headers", None))
        return error_response(request, status, None, str(getattr(exc, "detail", "Error.")))

    async def server_error(request: Request, exc: Exception) -> Response:
        logging.getLogger("autosync_emulator").exception("unhandled error", exc_info=exc)
        return error_response(request, 500, "server_error", "Internal server error.")

    routes = make_routes(core_ref) + [Mount("/_emulator", routes=control.routes(core_ref))]
    starlette = Starlette(routes=routes, exception_handlers={ApiError: api_error, HTTPException: http_error,
                                                             Exception: server_error})
    gated = GateMiddleware(starlette, core_ref)
    faulted = FaultMiddleware(gated, core_ref)
    return EdgeMiddleware(faulted, core_ref)

"""The OpenAPI 3.0 document of the emulated API, served at /v1/openapi.json.

Built from the route table (`routes.py`) that the app serves from, and the component schemas
of `openapi_schemas.py`: every operation with its scope (an API key, or an OAuth 2.0
client-credentials token with that scope), parameters and their limits, request body, every
status it can answer with the headers that come with it, and links from each create to the
operations that use the new id (for stateful testing).
"""
from __future__ import annotations

import functools

import orjson

from .openapi_schemas import REQUEST_EXAMPLES, SCHEMAS, enum, obj, ref
from .routes import (ALL_SCOPES, BOOL_FILTERS, DEFAULT_PER_PAGE, ENUM_FILTERS, INT_FILTERS, MAX_INT, MAX_PAGE,
                     MAX_PER_PAGE, OPERATIONS, SEARCH, STR_FILTERS, Operation)
from .vin import VIN_PATTERN

SCOPE_DESCRIPTIONS = {scope: f"{scope.split(':')[1]} {scope.split(':')[0]}" for scope in ALL_SCOPES}
RATE_HEADERS = {
    "X-RateLimit-Limit": {"description": "requests allowed per window for this credential (1000000: unlimited)",
                          "required": True, "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "requests left in the current window", "required": True,
                              "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "epoch second at which the window ends", "required": True,
                          "schema": {"type": "integer"}},
    "X-Request-Id": {"description": "also in the error envelope", "required": True, "schema": {"type": "string"}},
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "required": True,
                               "schema": {"type": "integer", "minimum": 0}}}
ERROR_DESCRIPTIONS = {400: "the body is not JSON (or not an object, or over 1 MB)", 401: "no valid credential",
                      403: "the credential lacks the scope", 404: "no such shop or object for this credential",
                      409: "the change breaks a business rule (state, references, duplicates)",
                      422: "a parameter or body field is invalid (`error.field` names it)",
                      429: "rate limit of this credential exhausted"}


def _param(name: str, schema: dict, where: str = "query", required: bool = False, description: str = "") -> dict:
    out = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        out["description"] = description
    return out


TS_PARAM = {"type": "string", "format": "date-time", "maxLength": 40}
LIST_PARAMS = [
    _param("page", {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_PAGE, "default": 1}),
    _param("per_page", {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_INT,
                        "default": DEFAULT_PER_PAGE}, description=f"values above {MAX_PER_PAGE} are clamped to it"),
    _param("sort", {**enum("created_at", "updated_at", "id"), "default": "created_at"}),
    _param("order", {**enum("asc", "desc"), "default": "desc"}),
    _param("created_after", TS_PARAM, description="strictly after (ISO 8601; an offset or fraction is accepted)"),
    _param("updated_after", TS_PARAM, description="strictly after (ISO 8601; an offset or fraction is accepted)"),
]
PATH_INT = {"type": "integer", "format": "int64", "minimum": 0}
# every world has shop 1, whose first customer (1) owns vehicle 1: the examples use them
SHOP_ID = {**_param("shop_id", PATH_INT, "path", True), "example": 1}
OBJ_ID = _param("id", PATH_INT, "path", True)
VIN = _param("vin", {"type": "string", "minLength": 17, "maxLength": 17, "pattern": VIN_PATTERN}, "path", True,
             "a 17-character VIN (any case); its check digit is verified (422 otherwise)")


def _filters(resource: str | None) -> list[dict]:
    if resource is None:
        return []
    out = [_param(f, enum(*values)) for f, values in ENUM_FILTERS.get(resource, {}).items()]
    out += [_param(f, {"type": "integer", "format": "int64"}) for f in INT_FILTERS.get(resource, ())]
    out += [_param(f, {"type": "string"}) for f in STR_FILTERS.get(resource, ())]
    out += [_param(f, {"type": "boolean"}) for f in BOOL_FILTERS.get(resource, ())]
    if resource in SEARCH:
        out.append(_param("search", {"type": "string"}, description="names, company, email or phone digits"))
    return out


def _error(status: int) -> dict:
    headers = {**RATE_HEADERS, **(RETRY_AFTER if status == 429 else {})}
    return {str(status): {"description": ERROR_DESCRIPTIONS[status], "headers": headers,
                          "content": {"application/json": {"schema": ref("Error")}}}}


def _success(op: Operation) -> dict:
    if op.status == 204:
        return {"204": {"description": "done", "headers": RATE_HEADERS}}
    if op.handler == "oauth_token":
        data = ref(op.response)
    elif op.handler in ("list", "list_shops", "list_webhooks"):
        data = obj({"success": {"type": "boolean"}, "data": {"type": "array", "items": ref(op.response)},
                    "pagination": ref("Pagination")})
    else:
        data = obj({"success": {"type": "boolean"}, "data": ref(op.response)})
    out = {"description": "OK" if op.status == 200 else "created", "headers": RATE_HEADERS,
           "content": {"application/json": {"schema": data}}}
    links = LINKS.get(op.operation_id)
    if links:
        out["links"] = links
    return {str(op.status): out}


def _statuses(op: Operation) -> list[int]:
    if op.handler == "oauth_token":
        return [400, 401]  # no bearer credential: neither scopes nor a rate limit apply
    statuses = {401, 403, 429}
    if "{shop_id}" in op.path or "{id}" in op.path or op.handler == "decode_vin":
        statuses.add(404)
    if op.handler in ("list", "list_shops", "list_webhooks", "decode_vin"):
        statuses.add(422)
    if op.request is not None:
        statuses |= {400, 422}
    if op.conflicts:
        statuses.add(409)
    return sorted(statuses)


def _link(op_id: str, **params: str) -> dict:
    return {"operationId": op_id, "parameters": params}


def _links() -> dict[str, dict]:
    """Each create links to the operations that take the new id; the id comes from the response."""
    new_id = "$response.body#/data/id"
    shop = "$request.path.shop_id"
    follow = {
        "createCustomer": ("getCustomer", "updateCustomer", "deleteCustomer"),
        "createVehicle": ("getVehicle", "updateVehicle"),
        "createWorkOrder": ("getWorkOrder", "updateWorkOrder", "setWorkOrderStatus", "addJob"),
        "createPayment": ("getPayment", "createRefund"),
        "createAppointment": ("getAppointment",),
    }
    out = {src: {dst: _link(dst, shop_id=shop, id=new_id) for dst in dsts} for src, dsts in follow.items()}
    out["createWebhook"] = {dst: _link(dst, id=new_id) for dst in ("getWebhook", "deleteWebhook")}
    out["listShops"] = {"getShop": _link("getShop", shop_id="$response.body#/data/0/id")}
    return out


LINKS = _links()


def _operation(op: Operation) -> dict:
    params: list[dict] = []
    if "{shop_id}" in op.path:
        params.append(SHOP_ID)
    if "{id}" in op.path:
        params.append(OBJ_ID)
    if op.handler == "decode_vin":
        params.append(VIN)
    if op.handler in ("list", "list_shops", "list_webhooks"):
        params += LIST_PARAMS + _filters(op.resource)
    out: dict = {"operationId": op.operation_id, "summary": op.summary, "parameters": params}
    if op.scope is None:
        out["security"] = [{"clientBasic": []}]
    else:
        out["security"] = [{"apiKey": []}, {"oauth2": [op.scope]}]
        out["description"] = f"Needs the `{op.scope}` scope (an API key carries every scope)."
    if op.request is not None:
        media = "application/x-www-form-urlencoded" if op.handler == "oauth_token" else "application/json"
        content = {"schema": ref(op.request)}
        if op.request in REQUEST_EXAMPLES:
            content["example"] = REQUEST_EXAMPLES[op.request]
        out["requestBody"] = {"required": True, "content": {media: content}}
    out["responses"] = {**_success(op), **{k: v for s in _statuses(op) for k, v in _error(s).items()}}
    return out


def build() -> dict:
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        if op.documented:
            paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.0.3",
        "info": {"title": "AutoSync Shop Manager API (emulator)", "version": "1.0.0",
                 "description": "The AutoSync Shop Manager API as the local emulator serves it. `work-orders` and "
                                "`work_orders` are accepted as aliases of `workorders`. Every response carries "
                                "`X-RateLimit-*` and `X-Request-Id`; errors use the `Error` envelope. Webhook "
                                "deliveries have the `WebhookDelivery` shape."},
        "servers": [{"url": "/v1"}],
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer",
                       "description": "an API key (sk_sandbox_... / sk_live_..., the environment's own) or an "
                                      "access token from /oauth/token"},
            "oauth2": {"type": "oauth2", "flows": {"clientCredentials": {
                "tokenUrl": "/v1/oauth/token", "scopes": SCOPE_DESCRIPTIONS}}},
            "clientBasic": {"type": "http", "scheme": "basic", "description": "OAuth client id and secret"}}},
        "security": [{"apiKey": []}],
        "paths": paths,
    }


@functools.lru_cache(maxsize=1)
def openapi_bytes() -> bytes:
    return orjson.dumps(build())

"""OpenAPI 3.0 description of the emulated API, served at /v1/openapi.json.

Built from the same tables the routes use (collections, filters, writes), so the two
cannot drift apart.
"""
from __future__ import annotations

import functools

import orjson

from .app import BOOL_FILTERS, ENUM_FILTERS, INT_FILTERS, READ_SCOPES, STR_FILTERS, WRITES
from .webhooks import EVENTS

TS = {"type": "string", "format": "date-time", "example": "2024-01-15T10:30:00Z"}
TS_NULL = {**TS, "nullable": True}
MONEY = {"type": "number", "multipleOf": 0.01}
MONEY_NULL = {**MONEY, "nullable": True}
INT = {"type": "integer"}
INT_NULL = {"type": "integer", "nullable": True}
STR = {"type": "string"}
STR_NULL = {"type": "string", "nullable": True}
BOOL = {"type": "boolean"}


def _obj(props: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": props, "required": required if required is not None else list(props)}


def _enum(*values: str) -> dict:
    return {"type": "string", "enum": list(values)}


ADDRESS = _obj({"street": STR_NULL, "city": STR_NULL, "state": STR_NULL, "zip": STR_NULL})
BASE = {"id": INT, "shop_id": INT, "created_at": TS, "updated_at": TS}
LINE_ITEM = _obj({"id": INT, "job_id": INT, "type": _enum("labor", "part", "fee"), "description": STR_NULL,
                  "technician_id": INT_NULL, "hours": MONEY_NULL, "rate": MONEY_NULL, "part_id": INT_NULL,
                  "part_number": STR_NULL, "quantity": MONEY_NULL, "unit_cost": MONEY_NULL,
                  "unit_price": MONEY_NULL, "taxable": BOOL, "total": MONEY})
JOB = _obj({"id": INT, "work_order_id": INT, "name": STR, "technician_id": INT_NULL,
            "status": _enum("pending", "approved", "declined", "completed"), "approved_at": TS_NULL,
            "labor_total": MONEY, "parts_total": MONEY, "total": MONEY,
            "line_items": {"type": "array", "items": {"$ref": "#/components/schemas/LineItem"}}})
REFUND = _obj({"id": INT, "amount": MONEY, "reason": STR_NULL, "created_at": TS})
PAYMENT = _obj({**BASE, "work_order_id": INT, "amount": MONEY, "method": _enum("card", "cash", "check", "text_to_pay"),
                "status": _enum("pending", "succeeded", "failed"), "card_brand": STR_NULL, "last4": STR_NULL,
                "refunded_amount": MONEY, "refunds": {"type": "array", "items": {"$ref": "#/components/schemas/Refund"}}})
WO_FIELDS = {**BASE, "number": INT, "customer_id": INT, "vehicle_id": INT, "technician_id": INT_NULL,
             "service_advisor_id": INT_NULL, "status": _enum("draft", "in_progress", "waiting_parts", "completed", "invoiced"),
             "notes": STR_NULL, "mileage_in": INT_NULL, "labor_total": MONEY, "parts_total": MONEY, "fees_total": MONEY,
             "subtotal": MONEY, "tax_total": MONEY, "total": MONEY, "amount_paid": MONEY, "balance_due": MONEY,
             "started_at": TS_NULL, "completed_at": TS_NULL, "invoiced_at": TS_NULL}
PHOTO = _obj({"id": INT, "url": STR, "caption": STR_NULL})
ITEM = _obj({"id": INT, "job_id": INT_NULL, "name": STR, "category": STR, "condition": _enum("green", "yellow", "red"),
             "notes": STR_NULL, "estimate_amount": MONEY_NULL,
             "approval": _enum("not_applicable", "pending", "approved", "declined"), "approved_at": TS_NULL,
             "photos": {"type": "array", "items": {"$ref": "#/components/schemas/Photo"}}})
INSPECTION_FIELDS = {**BASE, "work_order_id": INT, "vehicle_id": INT, "technician_id": INT_NULL,
                     "status": _enum("in_progress", "sent", "responded"), "sent_at": TS_NULL, "responded_at": TS_NULL}

SCHEMAS = {
    "Shop": _obj({**BASE, "name": STR, "slug": STR, "status": STR, "phone": STR_NULL, "email": STR_NULL,
                  "address": ADDRESS, "settings": _obj({"tax_rate": MONEY, "labor_rate": MONEY})}),
    "Employee": _obj({**BASE, "first_name": STR, "last_name": STR, "email": STR_NULL,
                      "role": _enum("technician", "service_advisor", "manager"), "active": BOOL, "hourly_rate": MONEY_NULL}),
    "Customer": _obj({**BASE, "first_name": STR, "last_name": STR, "email": STR_NULL, "phone": STR_NULL,
                      "is_business": BOOL, "company_name": STR_NULL, "address": {**ADDRESS, "nullable": True},
                      "notes": STR_NULL}),
    "Vehicle": _obj({**BASE, "customer_id": INT, "year": INT, "make": STR, "model": STR, "trim": STR_NULL,
                     "vin": {"type": "string", "minLength": 17, "maxLength": 17, "nullable": True},
                     "mileage": INT_NULL, "license_plate": STR_NULL}),
    "WorkOrderSummary": _obj(WO_FIELDS),
    "WorkOrder": _obj({**WO_FIELDS, "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                       "payments": {"type": "array", "items": {"$ref": "#/components/schemas/Payment"}}}),
    "Job": JOB, "LineItem": LINE_ITEM, "Payment": PAYMENT, "Refund": REFUND,
    "InspectionSummary": _obj(INSPECTION_FIELDS),
    "Inspection": _obj({**INSPECTION_FIELDS, "items": {"type": "array", "items": {"$ref": "#/components/schemas/InspectionItem"}}}),
    "InspectionItem": ITEM, "Photo": PHOTO,
    "Appointment": _obj({**BASE, "customer_id": INT, "vehicle_id": INT_NULL, "work_order_id": INT_NULL,
                         "starts_at": TS, "ends_at": TS,
                         "status": _enum("scheduled", "arrived", "completed", "cancelled", "no_show"), "title": STR_NULL}),
    "InventoryPart": _obj({**BASE, "part_number": STR, "name": STR, "brand": STR_NULL, "quantity_on_hand": INT,
                           "reorder_point": INT, "unit_cost": MONEY, "unit_price": MONEY, "location": STR_NULL}),
    "Webhook": _obj({"id": INT, "url": STR, "events": {"type": "array", "items": _enum(*EVENTS)}, "active": BOOL,
                     "created_at": TS, "updated_at": TS}),
    "Pagination": _obj({"page": INT, "per_page": INT, "total": INT, "pages": INT, "has_more": BOOL},
                       ["page", "per_page", "total"]),
    "Error": _obj({"success": {"type": "boolean", "enum": [False]},
                   "error": _obj({"code": _enum("validation_error", "invalid_parameter", "invalid_request", "unauthorized",
                                                "insufficient_scope", "not_found", "conflict", "rate_limited", "server_error"),
                                  "message": STR, "field": STR, "status": INT}, ["code", "message", "status"]),
                   "request_id": STR}),
    "VinDecode": _obj({"vin": STR, "year": INT_NULL, "make": STR, "model": STR, "trim": STR_NULL, "engine": STR,
                       "drive_type": STR, "body_style": STR}),
    "Token": _obj({"access_token": STR, "token_type": _enum("Bearer"), "expires_in": INT, "scope": STR}),
}

# resource -> (path segment, detail schema, list-row schema)
RESOURCE_PATHS = {
    "customers": ("customers", "Customer", "Customer"), "vehicles": ("vehicles", "Vehicle", "Vehicle"),
    "work_orders": ("workorders", "WorkOrder", "WorkOrderSummary"), "payments": ("payments", "Payment", "Payment"),
    "inspections": ("inspections", "Inspection", "InspectionSummary"),
    "appointments": ("appointments", "Appointment", "Appointment"),
    "inventory": ("inventory", "InventoryPart", "InventoryPart"), "employees": ("employees", "Employee", "Employee"),
}
HEADERS = {name: {"schema": {"type": "integer"}} for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")}
HEADERS["X-Request-Id"] = {"schema": {"type": "string"}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*statuses: int) -> dict:
    return {str(s): {"description": "error", "headers": HEADERS,
                     "content": {"application/json": {"schema": _ref("Error")}}} for s in statuses}


def _ok(schema: dict, status: int = 200, description: str = "OK") -> dict:
    return {str(status): {"description": description, "headers": HEADERS,
                          "content": {"application/json": {"schema": schema}}}}


def _envelope(name: str) -> dict:
    return _obj({"success": {"type": "boolean"}, "data": _ref(name)})


def _list_envelope(name: str) -> dict:
    return _obj({"success": {"type": "boolean"}, "data": {"type": "array", "items": _ref(name)},
                 "pagination": _ref("Pagination")})


def _param(name: str, schema: dict, where: str = "query", required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required, "schema": schema}


LIST_PARAMS = [_param("page", {"type": "integer", "minimum": 1, "default": 1}),
               _param("per_page", {"type": "integer", "minimum": 1, "default": 25, "description": "max 100 (larger is clamped)"}),
               _param("sort", _enum("created_at", "updated_at", "id")), _param("order", _enum("asc", "desc")),
               _param("created_after", TS), _param("updated_after", TS)]
SHOP_ID = _param("shop_id", INT, "path", True)
OBJ_ID = _param("id", INT, "path", True)


def _filters(resource: str) -> list[dict]:
    out = [_param(f, _enum(*values)) for f, values in ENUM_FILTERS.get(resource, {}).items()]
    out += [_param(f, INT) for f in INT_FILTERS.get(resource, ())]
    out += [_param(f, STR) for f in STR_FILTERS.get(resource, ())]
    out += [_param(f, BOOL) for f in BOOL_FILTERS.get(resource, ())]
    if resource == "customers":
        out.append(_param("search", STR))
    return out


def build() -> dict:
    paths: dict[str, dict] = {}
    sec = lambda scope: [{"bearer": [scope]}]  # noqa: E731
    paths["/oauth/token"] = {"post": {
        "summary": "OAuth 2.0 client credentials", "security": [{"basic": []}],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": _obj(
            {"grant_type": _enum("client_credentials"), "scope": STR}, ["grant_type"])}}},
        "responses": {**_ok(_ref("Token")), **_errors(400, 401)}}}
    paths["/shops"] = {"get": {"summary": "List shops", "security": sec("shops:read"), "parameters": LIST_PARAMS,
                               "responses": {**_ok(_list_envelope("Shop")), **_errors(401, 403, 422, 429)}}}
    paths["/shops/{shop_id}"] = {"get": {"summary": "Get a shop", "security": sec("shops:read"), "parameters": [SHOP_ID],
                                         "responses": {**_ok(_envelope("Shop")), **_errors(401, 403, 404, 429)}}}
    paths["/vehicles/decode/{vin}"] = {"get": {"summary": "Decode a VIN", "security": sec("vehicles:read"),
                                               "parameters": [_param("vin", STR, "path", True)],
                                               "responses": {**_ok(_envelope("VinDecode")), **_errors(401, 404, 422)}}}
    for resource, (segment, detail, row) in RESOURCE_PATHS.items():
        scope = READ_SCOPES[resource]
        coll = f"/shops/{{shop_id}}/{segment}"
        obj = coll + "/{id}"
        paths[coll] = {"get": {"summary": f"List {resource}", "security": sec(scope),
                               "parameters": [SHOP_ID, *LIST_PARAMS, *_filters(resource)],
                               "responses": {**_ok(_list_envelope(row)), **_errors(401, 403, 404, 422, 429)}}}
        paths[obj] = {"get": {"summary": f"Get one of {resource}", "security": sec(scope), "parameters": [SHOP_ID, OBJ_ID],
                              "responses": {**_ok(_envelope(detail)), **_errors(401, 403, 404, 429)}}}
    for (kind, resource), (scope, _method, status, shape) in WRITES.items():
        segment, detail, _row = RESOURCE_PATHS[resource]
        base = f"/shops/{{shop_id}}/{segment}"
        path, verb, params = {
            "create": (base, "post", [SHOP_ID]), "update": (base + "/{id}", "patch", [SHOP_ID, OBJ_ID]),
            "delete": (base + "/{id}", "delete", [SHOP_ID, OBJ_ID]), "status": (base + "/{id}/status", "patch", [SHOP_ID, OBJ_ID]),
            "jobs": (base + "/{id}/jobs", "post", [SHOP_ID, OBJ_ID]), "refunds": (base + "/{id}/refunds", "post", [SHOP_ID, OBJ_ID]),
        }[kind]
        result = {"jobs": "Job", "refunds": "Refund"}.get(kind, detail)
        op = {"summary": f"{kind} {resource}", "security": sec(scope), "parameters": params,
              "responses": ({"204": {"description": "deleted", "headers": HEADERS}} if status == 204 else _ok(_envelope(result), status))}
        op["responses"].update(_errors(400, 401, 403, 404, 409, 422, 429))
        if verb != "delete":
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(path, {})[verb] = op
    paths["/webhooks"] = {
        "get": {"summary": "List webhooks", "security": sec("webhooks:manage"), "parameters": LIST_PARAMS,
                "responses": {**_ok(_list_envelope("Webhook")), **_errors(401, 403, 422)}},
        "post": {"summary": "Create a webhook", "security": sec("webhooks:manage"),
                 "requestBody": {"required": True, "content": {"application/json": {"schema": _obj(
                     {"url": STR, "events": {"type": "array", "items": _enum(*EVENTS)}, "secret": STR, "active": BOOL},
                     ["url", "events"])}}},
                 "responses": {**_ok(_envelope("Webhook"), 201), **_errors(400, 401, 403, 422)}}}
    paths["/webhooks/{id}"] = {
        "get": {"summary": "Get a webhook", "security": sec("webhooks:manage"), "parameters": [OBJ_ID],
                "responses": {**_ok(_envelope("Webhook")), **_errors(401, 403, 404)}},
        "delete": {"summary": "Delete a webhook", "security": sec("webhooks:manage"), "parameters": [OBJ_ID],
                   "responses": {"204": {"description": "deleted"}, **_errors(401, 403, 404)}}}
    return {"openapi": "3.0.3",
            "info": {"title": "AutoSync Shop Manager API (emulator)", "version": "1.0.0",
                     "description": "The contract of CONTRACT.md as the emulator serves it. work-orders and work_orders "
                                    "are accepted as aliases of workorders."},
            "servers": [{"url": "/v1"}],
            "components": {"schemas": SCHEMAS, "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API key (sk_sandbox_/sk_live_) or OAuth token"},
                "basic": {"type": "http", "scheme": "basic"}}},
            "security": [{"bearer": []}],
            "paths": paths}


@functools.lru_cache(maxsize=1)
def openapi_bytes() -> bytes:
    return orjson.dumps(build())

"""The component schemas of the OpenAPI document: the objects the API answers with, and the
request bodies it accepts.

The request schemas restate, field by field, what the validators of `models/` enforce (types,
lengths, ranges, required fields, no unknown fields), so that a body the document calls
invalid is one the emulator refuses. Where a rule cannot be written in JSON Schema (a VIN's
check digit, at most two decimals in an amount, a year up to next year) the description says
it and the schema stays looser, never stricter.
"""
from __future__ import annotations

from .money import dollars
from .routes import WO_STATUSES
from .vin import VIN_PATTERN
from .webhooks import EVENTS, SIGNATURE_HEADER

TS = {"type": "string", "format": "date-time", "example": "2024-01-15T10:30:00Z"}
TS_NULL = {**TS, "nullable": True}
MONEY = {"type": "number", "description": "US dollars, rounded to the cent"}
MONEY_NULL = {**MONEY, "nullable": True}
INT = {"type": "integer", "format": "int64"}
INT_NULL = {**INT, "nullable": True}
STR = {"type": "string"}
STR_NULL = {"type": "string", "nullable": True}
BOOL = {"type": "boolean"}
BOOL_NULL = {"type": "boolean", "nullable": True}
ANY: dict = {}  # accepted and ignored


def obj(props: dict, required: list[str] | None = None, closed: bool = False) -> dict:
    out = {"type": "object", "properties": props, "required": required if required is not None else list(props)}
    if not out["required"]:
        del out["required"]
    if closed:
        out["additionalProperties"] = False
    return out


def enum(*values: str) -> dict:
    return {"type": "string", "enum": list(values)}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: dict, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


# ------------------------------------------------------------------ what the API answers with
ADDRESS = obj({"street": STR_NULL, "city": STR_NULL, "state": STR_NULL, "zip": STR_NULL})
BASE = {"id": INT, "shop_id": INT, "created_at": TS, "updated_at": TS}
WO_FIELDS = {**BASE, "number": INT, "customer_id": INT, "vehicle_id": INT, "technician_id": INT_NULL,
             "service_advisor_id": INT_NULL, "status": enum(*WO_STATUSES),
             "notes": STR_NULL, "mileage_in": INT_NULL, "labor_total": MONEY, "parts_total": MONEY, "fees_total": MONEY,
             "subtotal": MONEY, "tax_total": MONEY, "total": MONEY, "amount_paid": MONEY, "balance_due": MONEY,
             "started_at": TS_NULL, "completed_at": TS_NULL, "invoiced_at": TS_NULL}
INSPECTION_FIELDS = {**BASE, "work_order_id": INT, "vehicle_id": INT, "technician_id": INT_NULL,
                     "status": enum("in_progress", "sent", "responded"), "sent_at": TS_NULL, "responded_at": TS_NULL}
WEBHOOK_FIELDS = {"id": INT, "url": STR, "events": array(enum(*EVENTS)), "active": BOOL, "created_at": TS,
                  "updated_at": TS}
ERROR_CODES = ("validation_error", "invalid_parameter", "invalid_request", "unauthorized", "insufficient_scope",
               "not_found", "conflict", "rate_limited", "server_error")

RESPONSE_SCHEMAS = {
    "Shop": obj({**BASE, "name": STR, "slug": STR, "status": STR, "phone": STR_NULL, "email": STR_NULL,
                 "address": ADDRESS, "timezone": {"type": "string", "description": "IANA time zone of the shop",
                                                  "example": "America/Phoenix"},
                 "settings": obj({"tax_rate": {"type": "number", "description": "percent"},
                                  "labor_rate": MONEY})}),
    "Employee": obj({**BASE, "first_name": STR, "last_name": STR, "email": STR_NULL,
                     "role": enum("technician", "service_advisor", "manager"), "active": BOOL,
                     "hourly_rate": MONEY_NULL}),
    "Customer": obj({**BASE, "first_name": STR, "last_name": STR, "email": STR_NULL, "phone": STR_NULL,
                     "is_business": BOOL, "company_name": STR_NULL, "address": {**ADDRESS, "nullable": True},
                     "notes": STR_NULL}),
    "Vehicle": obj({**BASE, "customer_id": INT, "year": INT, "make": STR, "model": STR, "trim": STR_NULL,
                    "vin": {"type": "string", "minLength": 17, "maxLength": 17, "nullable": True},
                    "mileage": INT_NULL, "license_plate": STR_NULL}),
    "WorkOrderSummary": obj(WO_FIELDS),
    "WorkOrder": obj({**WO_FIELDS, "jobs": array(ref("Job")), "payments": array(ref("Payment"))}),
    "Job": obj({"id": INT, "work_order_id": INT, "name": STR, "technician_id": INT_NULL,
                "status": enum("pending", "approved", "declined", "completed"), "approved_at": TS_NULL,
                "labor_total": MONEY, "parts_total": MONEY, "total": MONEY, "line_items": array(ref("LineItem"))}),
    "LineItem": obj({"id": INT, "job_id": INT, "type": enum("labor", "part", "fee"), "description": STR_NULL,
                     "technician_id": INT_NULL, "hours": {"type": "number", "nullable": True}, "rate": MONEY_NULL,
                     "part_id": INT_NULL, "part_number": STR_NULL, "quantity": {"type": "number", "nullable": True},
                     "unit_cost": MONEY_NULL, "unit_price": MONEY_NULL, "taxable": BOOL, "total": MONEY}),
    "Payment": obj({**BASE, "work_order_id": INT, "amount": MONEY, "method": enum("card", "cash", "check", "text_to_pay"),
                    "status": enum("pending", "succeeded", "failed"), "card_brand": STR_NULL, "last4": STR_NULL,
                    "refunded_amount": MONEY, "refunds": array(ref("Refund"))}),
    "Refund": obj({"id": INT, "amount": MONEY, "reason": STR_NULL, "created_at": TS}),
    "InspectionSummary": obj(INSPECTION_FIELDS),
    "Inspection": obj({**INSPECTION_FIELDS, "items": array(ref("InspectionItem"))}),
    "InspectionItem": obj({"id": INT, "job_id": INT_NULL, "name": STR, "category": STR,
                           "condition": enum("green", "yellow", "red"), "notes": STR_NULL,
                           "estimate_amount": MONEY_NULL,
                           "approval": enum("not_applicable", "pending", "approved", "declined"),
                           "approved_at": TS_NULL, "photos": array(ref("Photo"))}),
    "Photo": obj({"id": INT, "url": STR, "caption": STR_NULL}),
    "Appointment": obj({**BASE, "customer_id": INT, "vehicle_id": INT_NULL, "work_order_id": INT_NULL,
                        "starts_at": TS, "ends_at": TS,
                        "status": enum("scheduled", "arrived", "completed", "cancelled", "no_show"),
                        "title": STR_NULL}),
    "InventoryPart": obj({**BASE, "part_number": STR, "name": STR, "brand": STR_NULL, "quantity_on_hand": INT,
                          "reorder_point": INT, "unit_cost": MONEY, "unit_price": MONEY, "location": STR_NULL}),
    "Webhook": obj(WEBHOOK_FIELDS),
    "WebhookCreated": obj({**WEBHOOK_FIELDS, "secret": {
        "type": "string", "description": "the signing secret, returned once when the API generated it "
                                         "(absent when the request set one)"}}, list(WEBHOOK_FIELDS)),
    "WebhookDelivery": {
        **obj({"id": {"type": "string", "pattern": "^evt_"}, "event": enum(*EVENTS), "created_at": TS,
               "shop_id": INT, "data": {"type": "object", "description": "the object as GET {id} returns it"}}),
        "description": f"The body of `POST <subscription url>` for each event. `{SIGNATURE_HEADER}` is the "
                       "lowercase hex HMAC-SHA256 of the raw body with the subscription's secret; "
                       "`X-AutoSync-Event` and `X-AutoSync-Delivery` (the event id) come along. A delivery "
                       "that does not get a 2xx is retried 5 times with exponential backoff; hard deletes "
                       "fire nothing."},
    "Pagination": obj({"page": INT, "per_page": INT, "total": INT, "pages": INT, "has_more": BOOL},
                      ["page", "per_page", "total"]),
    "Error": obj({"success": {"type": "boolean", "enum": [False]},
                  "error": obj({"code": enum(*ERROR_CODES), "message": STR, "field": STR, "status": INT},
                               ["code", "message", "status"]),
                  "request_id": STR}),
    "VinDecode": obj({"vin": STR, "year": INT_NULL, "make": STR, "model": STR, "trim": STR_NULL, "engine": STR,
                      "drive_type": STR, "body_style": STR}),
    "Token": obj({"access_token": STR, "token_type": enum("Bearer"), "expires_in": INT, "scope": STR}),
}


# ------------------------------------------------------------------ what the API accepts
ID_IN = {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**53}
ID_IN_NULL = {**ID_IN, "nullable": True}


def text(max_len: int) -> dict:
    """A required text field: a string with something besides spaces in it."""
    return {"type": "string", "minLength": 1, "maxLength": max_len, "pattern": r"\S"}


def text_null(max_len: int) -> dict:
    return {"type": "string", "maxLength": max_len, "nullable": True}


def amount(lo_cents: int, hi_cents: int, nullable: bool = False) -> dict:
    out = {"type": "number", "minimum": dollars(lo_cents), "maximum": dollars(hi_cents),
           "description": "at most 2 decimals"}
    if nullable:
        out["nullable"] = True
    return out


def int_in(lo: int, hi: int, nullable: bool = False) -> dict:
    out = {"type": "integer", "format": "int64", "minimum": lo, "maximum": hi}
    if nullable:
        out["nullable"] = True
    return out


TIMESTAMP_IN = {"type": "string", "format": "date-time", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
                "example": "2025-07-01T09:00:00Z", "description": "UTC, second precision"}
ADDRESS_IN = {**obj({k: text_null(200) for k in ("street", "city", "state", "zip")}, [], closed=True), "nullable": True}
CUSTOMER_IN = {"first_name": text(100), "last_name": text(100),
               "email": {"type": "string", "maxLength": 200, "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "nullable": True},
               "phone": text_null(40), "is_business": BOOL_NULL, "company_name": text_null(200),
               "address": ADDRESS_IN, "notes": text_null(2000)}
VEHICLE_IN = {"customer_id": ID_IN,
              "year": {"type": "integer", "format": "int64", "minimum": 1900, "maximum": 2**53,
                       "description": "at most next year (by the emulator clock)"},
              "make": text(60), "model": text(60), "trim": text_null(40), "license_plate": text_null(40),
              "mileage": int_in(0, 5_000_000, nullable=True),
              "vin": {"type": "string", "pattern": VIN_PATTERN, "nullable": True,
                      "description": "17 characters with a valid check digit, unique in the shop"}}
MILEAGE_IN = int_in(0, 5_000_000, nullable=True)
_LINE_COMMON = {"description": text_null(500), "taxable": BOOL_NULL}
LINE_ITEM_IN = {
    "description": "One line of a job; which fields count depends on `type` (the others are ignored).",
    "oneOf": [
        obj({"type": enum("labor"), "hours": amount(1, 100_00), "rate": amount(0, 10_000_00, nullable=True),
             "technician_id": ID_IN_NULL, **_LINE_COMMON, "part_id": ANY, "quantity": ANY, "unit_price": ANY},
            ["type", "hours"], closed=True),
        obj({"type": enum("part"), "part_id": ID_IN, "quantity": amount(1, 10_000_00),
             "unit_price": amount(0, 1_000_000_00, nullable=True), **_LINE_COMMON,
             "technician_id": ANY, "hours": ANY, "rate": ANY}, ["type", "part_id", "quantity"], closed=True),
        obj({"type": enum("fee"), "unit_price": amount(0, 1_000_000_00), "quantity": amount(1, 10_000_00, nullable=True),
             **_LINE_COMMON, "technician_id": ANY, "hours": ANY, "rate": ANY, "part_id": ANY},
            ["type", "unit_price"], closed=True),
    ]}
JOB_IN = obj({"name": text(200), "technician_id": ID_IN_NULL,
              "line_items": {**array(ref("LineItemCreate"), maxItems=100), "nullable": True}}, ["name"], closed=True)
INVENTORY_IN = {**obj({"quantity_on_hand": int_in(0, 10**7), "adjustment": int_in(-10**7, 10**7),
                       "reorder_point": int_in(0, 10**7), "unit_cost": amount(0, 10**9), "unit_price": amount(0, 10**9),
                       "location": text_null(100)}, [], closed=True),
                "not": {"required": ["quantity_on_hand", "adjustment"]},
                "description": "quantity_on_hand sets the stock, adjustment adds to it (never below 0): not both"}

REQUEST_SCHEMAS = {
    "CustomerCreate": obj(CUSTOMER_IN, ["first_name", "last_name"], closed=True),
    "CustomerUpdate": obj(CUSTOMER_IN, [], closed=True),
    "VehicleCreate": obj(VEHICLE_IN, ["customer_id", "year", "make", "model"], closed=True),
    "VehicleUpdate": obj(VEHICLE_IN, [], closed=True),
    "WorkOrderCreate": obj({"customer_id": ID_IN, "vehicle_id": ID_IN, "technician_id": ID_IN_NULL,
                            "service_advisor_id": ID_IN_NULL, "notes": text_null(2000), "mileage_in": MILEAGE_IN,
                            "jobs": {**array(ref("JobCreate"), maxItems=50), "nullable": True}},
                           ["customer_id", "vehicle_id"], closed=True),
    "WorkOrderUpdate": obj({"technician_id": ID_IN_NULL, "service_advisor_id": ID_IN_NULL, "notes": text_null(2000),
                            "mileage_in": MILEAGE_IN}, [], closed=True),
    "WorkOrderStatus": obj({"status": {**enum(*WO_STATUSES), "description":
                                       "draft -> in_progress -> (waiting_parts <-> in_progress) -> completed -> invoiced"}},
                           ["status"], closed=True),
    "JobCreate": JOB_IN,
    "LineItemCreate": LINE_ITEM_IN,
    "PaymentCreate": obj({"work_order_id": ID_IN, "amount": amount(1, 10**10),
                          "method": enum("card", "cash", "check", "text_to_pay"),
                          "card_number": {"type": "string", "maxLength": 19, "nullable": True,
                                          "description": "12-19 digits; 4000000000000002 is declined"},
                          "card_brand": ANY}, ["work_order_id", "amount", "method"], closed=True),
    "RefundCreate": obj({"amount": amount(1, 10**10, nullable=True), "reason": text_null(200)}, [], closed=True),
    "AppointmentCreate": obj({"customer_id": ID_IN, "vehicle_id": ID_IN_NULL, "work_order_id": ID_IN_NULL,
                              "starts_at": TIMESTAMP_IN, "ends_at": {**TIMESTAMP_IN, "nullable": True},
                              "title": text_null(200)}, ["customer_id", "starts_at"], closed=True),
    "InventoryUpdate": INVENTORY_IN,
    "WebhookCreate": obj({"url": {"type": "string", "maxLength": 2000, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]",
                                  "description": "an http(s) URL with a host"},
                          "events": array(enum(*EVENTS), minItems=1),
                          "secret": {"type": "string", "minLength": 8, "maxLength": 200, "nullable": True,
                                     "description": "signs deliveries; generated and returned once if absent"},
                          "active": BOOL}, ["url", "events"], closed=True),
    "TokenRequest": obj({"grant_type": enum("client_credentials"),
                         "scope": {"type": "string", "description": "space-separated scopes; all of the client's if absent"},
                         "client_id": STR, "client_secret": STR}, ["grant_type"]),
}

# bodies that succeed in any seeded world (shop 1's first customer is 1 and owns vehicle 1)
REQUEST_EXAMPLES = {
    "CustomerCreate": {"first_name": "Mike", "last_name": "Rodriguez", "email": "mike@example.com"},
    "CustomerUpdate": {"notes": "Prefers text"},
    "VehicleCreate": {"customer_id": 1, "year": 2019, "make": "Honda", "model": "Civic"},
    "VehicleUpdate": {"mileage": 42000},
    "WorkOrderCreate": {"customer_id": 1, "vehicle_id": 1, "notes": "Brake noise",
                        "jobs": [{"name": "Diagnostic", "line_items": [{"type": "labor", "hours": 1.5}]}]},
    "WorkOrderUpdate": {"notes": "Customer waiting"},
    "WorkOrderStatus": {"status": "in_progress"},
    "JobCreate": {"name": "Wiper blades", "line_items": [{"type": "fee", "description": "Shop supplies",
                                                          "unit_price": 4.95}]},
    "PaymentCreate": {"work_order_id": 1, "amount": 10.0, "method": "cash"},
    "RefundCreate": {"amount": 1.0, "reason": "goodwill"},
    "AppointmentCreate": {"customer_id": 1, "vehicle_id": 1, "starts_at": "2025-07-01T09:00:00Z"},
    "InventoryUpdate": {"adjustment": 5},
    "WebhookCreate": {"url": "http://127.0.0.1:9/hooks", "events": ["customer.created"]},
    "TokenRequest": {"grant_type": "client_credentials"},
}

SCHEMAS = {**RESPONSE_SCHEMAS, **REQUEST_SCHEMAS}

"""The route table of the emulated API: one list of operations that both the HTTP app
(`app.py`: which handler serves what, with which scope) and the OpenAPI document
(`openapi.py`: paths, parameters, bodies, responses) read, so the two cannot drift apart.

Plain data: this module imports neither of them.
"""
from __future__ import annotations

from dataclasses import dataclass

WO_STATUSES = ("draft", "in_progress", "waiting_parts", "completed", "invoiced")

# resource -> (canonical path segment, aliases the API also accepts)
SEGMENTS = {"customers": ("customers", ()), "vehicles": ("vehicles", ()),
            "work_orders": ("workorders", ("work-orders", "work_orders")), "payments": ("payments", ()),
            "inspections": ("inspections", ()), "appointments": ("appointments", ()),
            "inventory": ("inventory", ()), "employees": ("employees", ())}
READ_SCOPES = {"shops": "shops:read", "employees": "employees:read", "customers": "customers:read",
               "vehicles": "vehicles:read", "work_orders": "workorders:read", "payments": "payments:read",
               "inspections": "workorders:read", "appointments": "workorders:read",
               "inventory": "inventory:read"}

# list filters per resource, by kind of value
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

# limits of the list parameters (the parser enforces them; the document states them)
MAX_PAGE = 10**9
MAX_INT = 2**63 - 1
DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100  # larger values are clamped, not refused


@dataclass(frozen=True)
class Operation:
    method: str
    path: str                   # under /v1, in OpenAPI's template syntax
    handler: str                # which handler of app.py serves it
    operation_id: str
    summary: str
    scope: str | None           # None: no bearer credential (the token endpoint, the document itself)
    resource: str | None = None
    backend_method: str | None = None   # writes: the Backend method called with (shop_id[, id], body)
    status: int = 200
    request: str | None = None  # component schema of the JSON body
    response: str | None = None  # component schema of `data` (a list of it for "list" handlers)
    detail_of: str | None = None  # writes: answer with GET's shape of this resource (else the result as is)
    conflicts: bool = False     # can answer 409
    documented: bool = True


def _shop_path(resource: str, suffix: str = "") -> str:
    return f"/shops/{{shop_id}}/{SEGMENTS[resource][0]}{suffix}"


# resource -> (detail schema, list-row schema)
RESOURCE_SCHEMAS = {
    "customers": ("Customer", "Customer"), "vehicles": ("Vehicle", "Vehicle"),
    "work_orders": ("WorkOrder", "WorkOrderSummary"), "payments": ("Payment", "Payment"),
    "inspections": ("Inspection", "InspectionSummary"), "appointments": ("Appointment", "Appointment"),
    "inventory": ("InventoryPart", "InventoryPart"), "employees": ("Employee", "Employee"),
}
_OP_NAMES = {"customers": "Customer", "vehicles": "Vehicle", "work_orders": "WorkOrder", "payments": "Payment",
             "inspections": "Inspection", "appointments": "Appointment", "inventory": "InventoryPart",
             "employees": "Employee"}


def _reads() -> list[Operation]:
    ops = []
    for resource, (detail, row) in RESOURCE_SCHEMAS.items():
        name = _OP_NAMES[resource]
        ops.append(Operation("GET", _shop_path(resource), "list", f"list{name}s", f"List {resource}",
                             READ_SCOPES[resource], resource, response=row))
        ops.append(Operation("GET", _shop_path(resource, "/{id}"), "get", f"get{name}", f"Get one of {resource}",
                             READ_SCOPES[resource], resource, response=detail))
    return ops


def _write(method: str, resource: str, suffix: str, op_id: str, summary: str, scope: str, backend_method: str,
           status: int, request: str | None, response: str | None, detail_of: str | None,
           conflicts: bool = False) -> Operation:
    return Operation(method, _shop_path(resource, suffix), "write", op_id, summary, scope, resource,
                     backend_method, status, request, response, detail_of, conflicts)


OPERATIONS: list[Operation] = [
    Operation("GET", "/openapi.json", "openapi", "getOpenApi", "This document", None, documented=False),
    Operation("POST", "/oauth/token", "oauth_token", "createToken", "OAuth 2.0 client credentials", None,
              request="TokenRequest", response="Token"),
    Operation("GET", "/shops", "list_shops", "listShops", "List shops", "shops:read", "shops", response="Shop"),
    Operation("GET", "/shops/{shop_id}", "get_shop", "getShop", "Get a shop", "shops:read", "shops", response="Shop"),
    Operation("GET", "/vehicles/decode/{vin}", "decode_vin", "decodeVin", "Decode a VIN", "vehicles:read",
              response="VinDecode"),
    *_reads(),
    _write("POST", "customers", "", "createCustomer", "Create a customer", "customers:write", "create_customer",
           201, "CustomerCreate", "Customer", "customers"),
    _write("PATCH", "customers", "/{id}", "updateCustomer", "Update a customer", "customers:write",
           "update_customer", 200, "CustomerUpdate", "Customer", "customers"),
    _write("DELETE", "customers", "/{id}", "deleteCustomer", "Delete a customer (only one nothing refers to)",
           "customers:write", "delete_customer", 204, None, None, None, conflicts=True),
    _write("POST", "vehicles", "", "createVehicle", "Create a vehicle", "vehicles:write", "create_vehicle",
           201, "VehicleCreate", "Vehicle", "vehicles", conflicts=True),
    _write("PATCH", "vehicles", "/{id}", "updateVehicle", "Update a vehicle", "vehicles:write", "update_vehicle",
           200, "VehicleUpdate", "Vehicle", "vehicles", conflicts=True),
    _write("POST", "work_orders", "", "createWorkOrder", "Create a work order (a draft)", "workorders:write",
           "create_work_order", 201, "WorkOrderCreate", "WorkOrder", "work_orders"),
    _write("PATCH", "work_orders", "/{id}", "updateWorkOrder", "Update a work order", "workorders:write",
           "update_work_order", 200, "WorkOrderUpdate", "WorkOrder", "work_orders"),
    _write("PATCH", "work_orders", "/{id}/status", "setWorkOrderStatus", "Move a work order along its flow",
           "workorders:write", "set_status", 200, "WorkOrderStatus", "WorkOrder", "work_orders", conflicts=True),
    _write("POST", "work_orders", "/{id}/jobs", "addJob", "Add a job to an open work order", "workorders:write",
           "add_job", 201, "JobCreate", "Job", None, conflicts=True),
    _write("POST", "payments", "", "createPayment", "Take a payment", "payments:charge", "create_payment", 201,
           "PaymentCreate", "Payment", "payments", conflicts=True),
    _write("POST", "payments", "/{id}/refunds", "createRefund", "Refund a succeeded payment", "payments:charge",
           "refund", 201, "RefundCreate", "Refund", None, conflicts=True),
    _write("POST", "appointments", "", "createAppointment", "Book an appointment", "workorders:write",
           "create_appointment", 201, "AppointmentCreate", "Appointment", "appointments"),
    _write("PATCH", "inventory", "/{id}", "updateInventoryPart", "Change stock, prices or location",
           "inventory:write", "update_inventory", 200, "InventoryUpdate", "InventoryPart", "inventory"),
    Operation("GET", "/webhooks", "list_webhooks", "listWebhooks", "List this credential's webhooks",
              "webhooks:manage", response="Webhook"),
    Operation("POST", "/webhooks", "create_webhook", "createWebhook", "Subscribe to events", "webhooks:manage",
              status=201, request="WebhookCreate", response="WebhookCreated"),
    Operation("GET", "/webhooks/{id}", "get_webhook", "getWebhook", "Get a webhook", "webhooks:manage",
              response="Webhook"),
    Operation("DELETE", "/webhooks/{id}", "delete_webhook", "deleteWebhook", "Delete a webhook", "webhooks:manage",
              status=204),
]

# the credentials the API knows, and the scopes an OAuth client may be granted
ALL_SCOPES = ("shops:read", "customers:read", "customers:write", "vehicles:read", "vehicles:write",
              "workorders:read", "workorders:write", "payments:read", "payments:charge",
              "inventory:read", "inventory:write", "employees:read", "webhooks:manage")
PUBLIC_PATHS = tuple("/v1" + op.path for op in OPERATIONS if op.scope is None)


def starlette_path(path: str) -> str:
    """`/shops/{shop_id}/customers/{id}` -> `/v1/shops/{shop_id:int}/customers/{oid:int}`."""
    return "/v1" + path.replace("{shop_id}", "{shop_id:int}").replace("{id}", "{oid:int}")


def alias_paths(op: Operation) -> list[str]:
    """The OpenAPI path of an operation under each alias of its resource's segment."""
    if op.resource is None or op.resource not in SEGMENTS:
        return []
    segment, aliases = SEGMENTS[op.resource]
    return [op.path.replace(f"/{segment}", f"/{alias}", 1) for alias in aliases]

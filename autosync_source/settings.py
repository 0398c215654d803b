"""What the AutoSync API looks like to the connector: the endpoint table and its constants.

Everything the contract leaves open (paths, which rows are summaries, which children a
detail embeds, the scope an endpoint needs) is data here, so that a difference in the real
API is a change to this table, not to the code that loops over it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Tuple

SANDBOX_BASE_URL = "https://sandbox.api.autosyncshopmanager.com/v1"
LIVE_BASE_URL = "https://api.autosyncshopmanager.com/v1"
KEY_PREFIXES = {"sk_sandbox_": "sandbox", "sk_live_": "live"}
ENVIRONMENT_HOSTS = {
    "sandbox.api.autosyncshopmanager.com": "sandbox",
    "api.autosyncshopmanager.com": "live",
}
BASE_URLS = {"sandbox": SANDBOX_BASE_URL, "live": LIVE_BASE_URL}

DEFAULT_DATASET = "autosync_raw"
DEFAULT_START_DATE = "2000-01-01T00:00:00Z"
# Late commits: a record can become visible after its `updated_at` (replicated reads, long
# transactions, clock skew between the API's servers). Replica lag is seconds; a transaction
# that holds a batch of writes (an import, an end-of-day close) holds them for minutes. 15
# minutes covers both with margin. Its cost is small: rows updated within 15 minutes of a
# cursor are listed again (usually inside the one list page a run needs anyway: the README
# measures it) and, being remembered by fingerprint (cursors.py), cost no detail call and
# load nothing unless they changed.
DEFAULT_LAG_SECONDS = 15 * 60
PAGE_SIZE = 100  # the API's maximum; a larger per_page is clamped by the server anyway
UPDATED_AT = "updated_at"
SYNCED_AT = "_autosync_synced_at"
DELETED_AT = "_autosync_deleted_at"
TOKEN_PATH = "oauth/token"


@dataclass(frozen=True)
class Child:
    """A list embedded in a parent object that dlt turns into a child table.

    `parent_key` is the column the connector adds to each child row with its parent's id
    (the API does not always send it); descendants deeper down also get the root's id.
    """

    name: str
    parent_key: str
    children: Tuple["Child", ...] = ()


class ChildTable(NamedTuple):
    """A child table as dlt names and fills it, for one `Child` of the tree."""

    table: str  # the top-level table and the list fields down to it, joined by `__`
    path: Tuple[str, ...]  # those list fields: the key of Endpoint.child_columns
    parent_table: str
    child: Child


@dataclass(frozen=True)
class Endpoint:
    name: str  # resource and table name
    path: str  # relative to the base URL; {shop_id} for shop-scoped lists
    scope: str  # OAuth scope needed to read it
    primary_key: str = "id"
    cursor: str = UPDATED_AT
    # Children the detail (`GET {path}/{id}`) embeds and the list row may not. Checked per row:
    # when a changed list row lacks a child key, the connector fetches its detail; when the list
    # embeds them (payments' refunds, or the `embed_children` variant) no detail call is made.
    children: Tuple[Child, ...] = ()
    root_key: str = ""  # column name of this endpoint's id in its descendants' rows
    drop_fields: Tuple[str, ...] = ()  # embedded lists loaded elsewhere (work order payments)
    columns: Dict[str, dict] = field(default_factory=dict)
    child_columns: Dict[Tuple[str, ...], Dict[str, dict]] = field(default_factory=dict)

    @property
    def shop_scoped(self) -> bool:
        return "{shop_id}" in self.path

    def detail_path(self, shop_id: int, record_id: int) -> str:
        return f"{self.path.format(shop_id=shop_id)}/{record_id}"

    def child_tables(self) -> Tuple[ChildTable, ...]:
        """Every table under this endpoint's own, each after its parent."""
        tables: List[ChildTable] = []

        def walk(parent_path: Tuple[str, ...], children: Tuple[Child, ...]) -> None:
            for child in children:
                path = parent_path + (child.name,)
                tables.append(ChildTable(table_name(self.name, path), path, table_name(self.name, parent_path), child))
                walk(path, child.children)

        walk((), self.children)
        return tuple(tables)


def table_name(resource: str, path: Tuple[str, ...] = ()) -> str:
    """dlt's name for the table of the list at `path` in a resource's rows (the resource's own at ())."""
    return "__".join((resource,) + path)


def _cols(**types: str) -> Dict[str, dict]:
    """Column hints from short type names; money is decimal(12,2): cents exact in every warehouse."""
    columns: Dict[str, dict] = {}
    for name, short in types.items():
        if short == "money":
            columns[name] = {"data_type": "decimal", "precision": 12, "scale": 2, "nullable": True}
        elif short == "percent":
            # tax rates come with three decimals (8.875): two would silently round them
            columns[name] = {"data_type": "decimal", "precision": 12, "scale": 4, "nullable": True}
        else:
            columns[name] = {"data_type": short, "nullable": True}
    return columns


ID = "bigint"
TS = "timestamp"
TEXT = "text"
BOOL = "bool"
MONEY = "money"
PERCENT = "percent"

_TOP_LEVEL = _cols(**{SYNCED_AT: TS, DELETED_AT: TS})
_STAMPS = dict(created_at=TS, updated_at=TS)
_ADDRESS = {f"address__{part}": TEXT for part in ("street", "city", "state", "zip")}

ENDPOINTS: Tuple[Endpoint, ...] = (
    Endpoint(
        name="shops",
        path="shops",
        scope="shops:read",
        columns=_cols(
            id=ID, shop_id=ID, name=TEXT, slug=TEXT, status=TEXT, phone=TEXT, email=TEXT,
            **_ADDRESS, timezone=TEXT, settings__tax_rate=PERCENT, settings__labor_rate=MONEY, **_STAMPS,
        ),
    ),
    Endpoint(
        name="employees",
        path="shops/{shop_id}/employees",
        scope="employees:read",
        columns=_cols(
            id=ID, shop_id=ID, first_name=TEXT, last_name=TEXT, email=TEXT, role=TEXT,
            active=BOOL, hourly_rate=MONEY, **_STAMPS,
        ),
    ),
    Endpoint(
        name="customers",
        path="shops/{shop_id}/customers",
        scope="customers:read",
        columns=_cols(
            id=ID, shop_id=ID, first_name=TEXT, last_name=TEXT, email=TEXT, phone=TEXT,
            is_business=BOOL, company_name=TEXT, **_ADDRESS, notes=TEXT, **_STAMPS,
        ),
    ),
    Endpoint(
        name="vehicles",
        path="shops/{shop_id}/vehicles",
        scope="vehicles:read",
        columns=_cols(
            id=ID, shop_id=ID, customer_id=ID, year=ID, make=TEXT, model=TEXT, trim=TEXT,
            vin=TEXT, mileage=ID, license_plate=TEXT, **_STAMPS,
        ),
    ),
    Endpoint(
        name="work_orders",
        path="shops/{shop_id}/workorders",
        scope="workorders:read",
        root_key="work_order_id",
        children=(Child("jobs", "work_order_id", (Child("line_items", "job_id"),)),),
        drop_fields=("payments",),
        columns=_cols(
            id=ID, shop_id=ID, number=ID, customer_id=ID, vehicle_id=ID, technician_id=ID,
            service_advisor_id=ID, status=TEXT, notes=TEXT, mileage_in=ID,
            labor_total=MONEY, parts_total=MONEY, fees_total=MONEY, subtotal=MONEY,
            tax_total=MONEY, total=MONEY, amount_paid=MONEY, balance_due=MONEY,
            started_at=TS, completed_at=TS, invoiced_at=TS, **_STAMPS,
        ),
        child_columns={
            ("jobs",): _cols(
                id=ID, shop_id=ID, work_order_id=ID, name=TEXT, technician_id=ID, status=TEXT,
                approved_at=TS, labor_total=MONEY, parts_total=MONEY, total=MONEY,
            ),
            ("jobs", "line_items"): _cols(
                id=ID, shop_id=ID, work_order_id=ID, job_id=ID, type=TEXT, description=TEXT,
                technician_id=ID, hours=MONEY, rate=MONEY, part_id=ID, part_number=TEXT,
                quantity=MONEY, unit_cost=MONEY, unit_price=MONEY, taxable=BOOL, total=MONEY,
            ),
        },
    ),
    Endpoint(
        name="payments",
        path="shops/{shop_id}/payments",
        scope="payments:read",
        root_key="payment_id",
        children=(Child("refunds", "payment_id"),),
        columns=_cols(
            id=ID, shop_id=ID, work_order_id=ID, amount=MONEY, method=TEXT, status=TEXT,
            card_brand=TEXT, last4=TEXT, refunded_amount=MONEY, **_STAMPS,
        ),
        child_columns={
            ("refunds",): _cols(
                id=ID, shop_id=ID, payment_id=ID, amount=MONEY, reason=TEXT, created_at=TS,
            ),
        },
    ),
    Endpoint(
        name="inspections",
        path="shops/{shop_id}/inspections",
        scope="workorders:read",
        root_key="inspection_id",
        children=(Child("items", "inspection_id", (Child("photos", "inspection_item_id"),)),),
        columns=_cols(
            id=ID, shop_id=ID, work_order_id=ID, vehicle_id=ID, technician_id=ID, status=TEXT,
            sent_at=TS, responded_at=TS, **_STAMPS,
        ),
        child_columns={
            ("items",): _cols(
                id=ID, shop_id=ID, inspection_id=ID, job_id=ID, name=TEXT, category=TEXT,
                condition=TEXT, notes=TEXT, estimate_amount=MONEY, approval=TEXT,
                approved_at=TS,
            ),
            ("items", "photos"): _cols(
                id=ID, shop_id=ID, inspection_id=ID, inspection_item_id=ID, url=TEXT,
                caption=TEXT,
            ),
        },
    ),
    Endpoint(
        name="appointments",
        path="shops/{shop_id}/appointments",
        scope="workorders:read",
        columns=_cols(
            id=ID, shop_id=ID, customer_id=ID, vehicle_id=ID, work_order_id=ID, starts_at=TS,
            ends_at=TS, status=TEXT, title=TEXT, **_STAMPS,
        ),
    ),
    Endpoint(
        name="inventory",
        path="shops/{shop_id}/inventory",
        scope="inventory:read",
        columns=_cols(
            id=ID, shop_id=ID, part_number=TEXT, name=TEXT, brand=TEXT, quantity_on_hand=ID,
            reorder_point=ID, unit_cost=MONEY, unit_price=MONEY, location=TEXT, **_STAMPS,
        ),
    ),
)

ENDPOINTS_BY_NAME: Dict[str, Endpoint] = {endpoint.name: endpoint for endpoint in ENDPOINTS}
RESOURCE_NAMES: Tuple[str, ...] = tuple(ENDPOINTS_BY_NAME)


def table_columns(endpoint: Endpoint) -> Dict[str, dict]:
    """Declared columns of an endpoint's top-level table, with the connector's own columns."""
    return {**endpoint.columns, **_TOP_LEVEL}


def raw_tables() -> Dict[str, Dict[str, dict]]:
    """Every raw table the connector loads, each child after its parent, with its declared columns."""
    tables: Dict[str, Dict[str, dict]] = {}
    for endpoint in ENDPOINTS:
        tables[endpoint.name] = table_columns(endpoint)
        for child in endpoint.child_tables():
            tables[child.table] = endpoint.child_columns.get(child.path, {})
    return tables

"""Records as Arrow tables, one per raw table, children included: rows dlt loads without normalizing.

Why: dlt's relational normalizer walks every record value by value in Python (flatten,
coerce, a row id per row, child rows) and before that the extract step writes every record
as JSON; together they were most of the connector's CPU per row (docs/performance.md). An
Arrow table goes from extract to a parquet file as it is, and normalize only imports it.

So the rows the readers shape (sync.shape_record) are turned, many pages at a time, into
one Arrow table per raw table with the declared types (settings.py): ids bigint, money
decimal(12,2) from the Decimals the client parsed (never a float), timestamps as UTC
instants, and the same dlt columns the relational normalizer gives them:
- top-level tables: `_dlt_load_id` and a random `_dlt_id` (the row key);
- child tables: `_dlt_parent_id`, `_dlt_list_idx`, `_dlt_root_id` (the top-level row's
  `_dlt_id`, the key dlt's merge deletes and inserts children by) and `_dlt_id`, the
  hash dlt itself gives a child row (dlt's own helper, from the parent's id, the table and
  the position in the list).
Child tables are declared to dlt as table variants of the resource, nested under their
parent (`declare_tables`), so the merge of a record replaces its children as before. dlt 1.31
loads nested tables written by a resource correctly but fails counting their rows at the end
of extract; `_count_child_tables_by_their_root` fixes that one lookup.

A record that does not fit the declared tables (a field the API added, a value of another
type, a nested list we do not know) is not converted: it is handed to dlt as a dict, and
dlt's normalizer evolves the schema exactly as it always did (schema_changes.py reports
it). Only whole batches are converted, so a failed conversion hands the batch to dlt as dicts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import dlt
import pyarrow as pa
from dlt.common.normalizers.json.helpers import get_nested_row_hash
from dlt.common.normalizers.utils import generate_dlt_ids

from autosync_source.settings import Endpoint, table_columns

# Records converted at once: big enough that dlt's per-item work (a schema merge per Arrow
# item) is noise, small enough to hold little memory (a work order is about 17 rows).
BATCH_RECORDS = 1000

DLT_LOAD_ID, DLT_ID, DLT_PARENT_ID, DLT_LIST_IDX, DLT_ROOT_ID = (
    "_dlt_load_id", "_dlt_id", "_dlt_parent_id", "_dlt_list_idx", "_dlt_root_id")
# the hints dlt's relational normalizer puts on its own columns
ROOT_DLT_COLUMNS = {
    DLT_LOAD_ID: {"name": DLT_LOAD_ID, "data_type": "text", "nullable": False},
    DLT_ID: {"name": DLT_ID, "data_type": "text", "nullable": False, "unique": True, "row_key": True},
}
CHILD_DLT_COLUMNS = {
    DLT_ROOT_ID: {"name": DLT_ROOT_ID, "data_type": "text", "nullable": False, "root_key": True},
    DLT_PARENT_ID: {"name": DLT_PARENT_ID, "data_type": "text", "nullable": False, "parent_key": True},
    DLT_LIST_IDX: {"name": DLT_LIST_IDX, "data_type": "bigint", "nullable": False},
    DLT_ID: {"name": DLT_ID, "data_type": "text", "nullable": False, "unique": True, "row_key": True},
}
TIMESTAMP = pa.timestamp("us", tz="UTC")
NONE = type(None)
# Arrow type id -> the Python types a value of that declared column may have
_PYTHON_TYPES = {
    pa.int64().id: {int},
    pa.string().id: {str},
    pa.bool_().id: {bool},
    pa.decimal128(12, 2).id: {int, Decimal},
    TIMESTAMP.id: {str, datetime},
}
# what pyarrow raises for a value that is not of the column's type
CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError, ValueError)


def arrow_type(hint: Dict[str, Any]) -> pa.DataType:
    data_type = hint["data_type"]
    if data_type == "bigint":
        return pa.int64()
    if data_type == "text":
        return pa.string()
    if data_type == "bool":
        return pa.bool_()
    if data_type == "timestamp":
        return TIMESTAMP
    if data_type == "decimal":
        return pa.decimal128(hint["precision"], hint["scale"])
    raise ValueError(f"no Arrow type for the declared type {data_type}")


@dataclass
class TablePlan:
    """One raw table: its declared columns in order, and the list fields its rows hold children in."""

    name: str
    columns: Dict[str, pa.DataType]
    # declared `a__b` columns read from nested objects: column -> (a, b)
    paths: Dict[str, Tuple[str, ...]]
    # top-level keys a row may hold: plain columns, nested objects, child lists
    allowed: frozenset
    nested: Dict[str, frozenset]  # nested object key -> the keys it may hold
    children: List[Tuple[str, "TablePlan"]] = field(default_factory=list)
    is_root: bool = True


def _plan(name: str, declared: Dict[str, dict], child_lists: Sequence[Tuple[str, "TablePlan"]], is_root: bool) -> TablePlan:
    columns = {column: arrow_type(hint) for column, hint in declared.items()}
    paths: Dict[str, Tuple[str, ...]] = {}
    nested: Dict[str, set] = {}
    plain = set()
    for column in columns:
        parts = tuple(column.split("__"))
        if len(parts) == 2:
            paths[column] = parts
            nested.setdefault(parts[0], set()).add(parts[1])
        else:
            plain.add(column)
    allowed = frozenset(plain | set(nested) | {list_name for list_name, _ in child_lists})
    return TablePlan(name, columns, paths, allowed, {k: frozenset(v) for k, v in nested.items()},
                     list(child_lists), is_root)


def plan_tables(endpoint: Endpoint) -> TablePlan:
    """The tree of raw tables of an endpoint, as settings.py declares it."""
    by_path = {child.path: child for child in endpoint.child_tables()}

    def build(path: Tuple[str, ...]) -> TablePlan:
        below = [child for child in endpoint.child_tables() if child.path[:-1] == path]
        child_lists = [(child.child.name, build(child.path)) for child in below]
        if not path:
            return _plan(endpoint.name, table_columns(endpoint), child_lists, is_root=True)
        return _plan(by_path[path].table, endpoint.child_columns.get(path, {}), child_lists, is_root=False)

    return build(())


def _count_child_tables_by_their_root() -> None:
    """dlt 1.31's extract sums the rows it wrote per resource by reading each table's `resource`,
    which only top-level tables carry (a nested table must not: its root's is its resource), so
    a resource that writes its nested tables itself fails there with a KeyError. This answers
    that one lookup with the root table's resource. Installed once; dlt is pinned below 1.32."""
    from dlt.common.schema.utils import get_root_table
    from dlt.extract import extract as dlt_extract

    compute = dlt_extract.Extract._compute_metrics
    if getattr(compute, "_autosync_nested", False):
        return

    class _Schema:
        def __init__(self, schema: Any) -> None:
            self._schema = schema

        def __getattr__(self, name: str) -> Any:
            return getattr(self._schema, name)

        def get_table(self, table_name: str) -> Any:
            table = self._schema.get_table(table_name)
            if "resource" in table or "parent" not in table:
                return table
            return {**table, "resource": get_root_table(self._schema.tables, table_name)["resource"]}

    class _Source:
        def __init__(self, source: Any) -> None:
            self._source = source
            self.schema = _Schema(source.schema)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._source, name)

    def _compute_metrics(self: Any, load_id: str, source: Any) -> Any:
        return compute(self, load_id, _Source(source))

    _compute_metrics._autosync_nested = True  # type: ignore[attr-defined]
    dlt_extract.Extract._compute_metrics = _compute_metrics  # type: ignore[method-assign]


def declare_tables(resource: Any, endpoint: Endpoint) -> None:
    """Tell dlt the tables this resource's Arrow items go to, as table variants of the resource.

    The top-level table's variant is the resource's hints with dlt's own columns and without
    nested hints (dlt would give the nested tables it computes from them the columns of the
    top-level Arrow item); each child table's variant is nested under its parent, with the
    declared columns and dlt's keys. A variant starts as a copy of the resource's hints, so
    the child's are cleared first. Records handed over as dicts still use the resource's own
    hints, nested hints included."""
    _count_child_tables_by_their_root()
    resource.apply_hints(table_name=endpoint.name, nested_hints={}, columns=ROOT_DLT_COLUMNS, create_table_variant=True)
    for child in endpoint.child_tables():
        resource.apply_hints(table_name=child.table, columns={}, primary_key=[], nested_hints={},
                             create_table_variant=True)
        columns = {name: {"name": name, **hint} for name, hint in endpoint.child_columns.get(child.path, {}).items()}
        resource.apply_hints(table_name=child.table, parent_table_name=child.parent_table,
                             columns={**columns, **CHILD_DLT_COLUMNS}, create_table_variant=True)


class ArrowRows:
    """Turns an endpoint's shaped records into Arrow tables (with table names for dlt)."""

    def __init__(self, endpoint: Endpoint, load_id: Callable[[], str] = lambda: dlt.current.load_package_state()["load_id"]) -> None:
        self.endpoint = endpoint
        self.plan = plan_tables(endpoint)
        self._load_id = load_id

    def fits(self, record: Dict[str, Any], plan: Optional[TablePlan] = None) -> bool:
        """Every key of the record (and of its children) is a declared column, object or child list."""
        plan = plan or self.plan
        if not record.keys() <= plan.allowed:
            return False
        for key, keys in plan.nested.items():
            value = record.get(key)
            if value is not None and not (isinstance(value, dict) and value.keys() <= keys):
                return False
        for list_name, child in plan.children:
            rows = record.get(list_name)
            if rows is None:
                continue
            if not isinstance(rows, list):
                return False
            for row in rows:
                if not isinstance(row, dict) or not self.fits(row, child):
                    return False
        return True

    def tables(self, records: List[Dict[str, Any]]) -> List[Any]:
        """One Arrow table per raw table holding rows (each marked with its table name).

        Raises one of CONVERSION_ERRORS when a value is not of its column's type."""
        rows: Dict[str, List[Dict[str, Any]]] = {}
        keys: Dict[str, Dict[str, list]] = {}
        root_ids = generate_dlt_ids(len(records))
        rows[self.plan.name] = records
        keys[self.plan.name] = {DLT_ID: root_ids}
        for _, child in self.plan.children:
            self._collect(child, records, root_ids, root_ids, rows, keys)
        load_id = self._load_id()
        out = []
        for plan in self._walk(self.plan):
            table_rows = rows.get(plan.name)
            if not table_rows:
                continue
            table = self._table(plan, table_rows, keys[plan.name], load_id)
            out.append(dlt.mark.with_table_name(table, plan.name))
        return out

    def _walk(self, plan: TablePlan) -> Iterator[TablePlan]:
        yield plan
        for _, child in plan.children:
            yield from self._walk(child)

    def _collect(
        self,
        plan: TablePlan,
        parents: List[Dict[str, Any]],
        parent_ids: List[str],
        root_ids: List[str],
        rows: Dict[str, List[Dict[str, Any]]],
        keys: Dict[str, Dict[str, list]],
    ) -> None:
        list_name = plan.name.rsplit("__", 1)[1]
        table_rows = rows.setdefault(plan.name, [])
        table_keys = keys.setdefault(plan.name, {DLT_ROOT_ID: [], DLT_PARENT_ID: [], DLT_LIST_IDX: [], DLT_ID: []})
        root_of, parent_of, index_of, id_of = (table_keys[DLT_ROOT_ID], table_keys[DLT_PARENT_ID],
                                              table_keys[DLT_LIST_IDX], table_keys[DLT_ID])
        name = plan.name
        for parent, parent_id, root_id in zip(parents, parent_ids, root_ids):
            for index, row in enumerate(parent.get(list_name) or ()):
                table_rows.append(row)
                root_of.append(root_id)
                parent_of.append(parent_id)
                index_of.append(index)
                id_of.append(get_nested_row_hash(parent_id, name, index))
        for _, grandchild in plan.children:  # each table is collected once per batch: all its rows
            self._collect(grandchild, table_rows, id_of, root_of, rows, keys)

    def _table(self, plan: TablePlan, rows: List[Dict[str, Any]], dlt_keys: Dict[str, list], load_id: str) -> pa.Table:
        arrays, fields = [], []
        for column, column_type in plan.columns.items():
            path = plan.paths.get(column)
            if path is None:
                values = [row.get(column) for row in rows]
            else:
                outer, inner = path
                values = [(row.get(outer) or {}).get(inner) for row in rows]
            arrays.append(_array(values, column_type))
            fields.append(pa.field(column, column_type))
        if plan.is_root:
            arrays.append(pa.array([load_id] * len(rows), pa.string()))
            fields.append(pa.field(DLT_LOAD_ID, pa.string(), nullable=False))
        for column in (CHILD_DLT_COLUMNS if not plan.is_root else (DLT_ID,)):
            column_type = pa.int64() if column == DLT_LIST_IDX else pa.string()
            arrays.append(pa.array(dlt_keys[column], column_type))
            fields.append(pa.field(column, column_type, nullable=False))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _array(values: List[Any], column_type: pa.DataType) -> pa.Array:
    """The column as Arrow, or one of CONVERSION_ERRORS when a value is not of the declared type.

    Only the Python types the client's JSON parsing gives a declared column are taken (pyarrow
    alone would turn Decimal("1.5") into the bigint 1); decimals and timestamps go through
    their text, which Arrow parses exactly (a decimal with more places than the column's scale
    is refused, not rounded) and far faster than it converts Decimal or datetime objects."""
    kinds = set(map(type, values))
    kinds.discard(NONE)
    if not kinds <= _PYTHON_TYPES[column_type.id]:
        raise TypeError(f"{sorted(kind.__name__ for kind in kinds)} in a {column_type} column")
    if pa.types.is_decimal(column_type):
        return pa.array([None if value is None else str(value) for value in values], pa.string()).cast(column_type)
    if column_type == TIMESTAMP:
        if datetime in kinds:  # the connector's own stamps; the API's are ISO 8601 text
            values = [value.isoformat() if type(value) is datetime else value for value in values]
        return pa.array(values, pa.string()).cast(TIMESTAMP)  # a zone offset is required
    return pa.array(values, column_type)


def as_arrow(
    endpoint: Endpoint,
    pages: Iterable[List[Dict[str, Any]]],
    batch_records: int = BATCH_RECORDS,
    converter: Optional[ArrowRows] = None,
) -> Iterator[Any]:
    """Pages of shaped records in; Arrow tables (one item each, marked with its table) and the
    records that do not fit (a list of dicts, normalized by dlt as before) out."""
    converter = converter or ArrowRows(endpoint)
    pending: List[Dict[str, Any]] = []

    def flush() -> List[Any]:
        batch = pending[:]
        pending.clear()
        try:
            return converter.tables(batch)
        except CONVERSION_ERRORS:
            return [batch]  # a value of another type: dlt normalizes these records as before

    for page in pages:
        misfits = []
        for record in page:
            (pending if converter.fits(record) else misfits).append(record)
        if misfits:
            yield misfits
        if len(pending) >= batch_records:
            yield from flush()
    if pending:
        yield from flush()

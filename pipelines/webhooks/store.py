"""The `webhook_events` table, written through dlt's SQL client for the configured destination.

Why dlt's SQL client and not a dlt resource: a pipeline run (extract, normalize, load job files,
state) costs a second or more, far too slow to acknowledge a delivery before the sender times out,
and answering 200 before the row is in the warehouse would lose it on a crash. Dedupe must also
hold across restarts and several receivers, so it is decided by the database in one statement.
The SQL client is the destination's own connection (same credentials and config keys as the
pipeline), so DuckDB, Postgres and BigQuery all work; the writer batches deliveries so one
statement stores many of them (see writer.py).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipelines.webhooks.envelope import WebhookEvent

logger = logging.getLogger("pipelines.webhooks")

DEFAULT_DATASET = "autosync_raw"
EVENTS_TABLE = "webhook_events"
COLUMNS = (
    "event_id", "event", "shop_id", "resource", "object_id", "object_updated_at",
    "created_at", "received_at", "payload",
)


@dataclass(frozen=True)
class Dialect:
    """What differs between warehouses for this one table."""

    text: str
    bigint: str
    timestamp: str
    payload: str
    # "on_conflict": a primary key and INSERT ... ON CONFLICT DO NOTHING RETURNING (DuckDB,
    # Postgres). "merge": no enforced keys (BigQuery), so MERGE ... WHEN NOT MATCHED inserts
    # only ids not yet stored; BigQuery runs DML on one table one statement at a time.
    strategy: str


ON_CONFLICT = Dialect("VARCHAR", "BIGINT", "TIMESTAMPTZ", "JSON", "on_conflict")
# JSON on DuckDB and Postgres keeps the text verbatim (the exact body that was signed); BigQuery's
# JSON type normalises it, so the payload is a STRING there.
MERGE = Dialect("STRING", "INT64", "TIMESTAMP", "STRING", "merge")
DIALECTS = {"duckdb": ON_CONFLICT, "postgres": ON_CONFLICT, "bigquery": MERGE}


def _sql_client(destination: Any, dataset_name: str):
    """dlt's SQL client for `destination` and `dataset_name`, without a pipeline working dir.

    `destination.client()` resolves credentials exactly as a pipeline with this destination
    would (secrets.toml, DESTINATION__* env vars); the schema is only a name here.
    """
    from dlt.common.schema import Schema

    config = destination.spec()._bind_dataset_name(dataset_name=dataset_name)
    return destination.client(Schema("autosync_webhooks"), config).sql_client


class WebhookEventStore:
    """Append-only `webhook_events`: insert-if-new (in batches) and a few reads. Thread-safe.

    A connection is opened per statement, or held by the writer while deliveries keep coming
    (`held`), and closed when they stop, so a DuckDB file is not held between deliveries: the
    connector in another process can load into it meanwhile (DuckDB lets one process write a
    file at a time); a write that finds the file locked waits for it up to
    `lock_timeout_seconds`.
    """

    def __init__(self, destination: Any, dataset_name: str = DEFAULT_DATASET,
                 lock_timeout_seconds: float = 10.0, dialect: Dialect | None = None):
        self.destination = destination
        self.dataset_name = dataset_name
        self.lock_timeout_seconds = lock_timeout_seconds
        self.dialect = dialect or DIALECTS.get(destination.destination_name, ON_CONFLICT)
        self._sql = _sql_client(destination, dataset_name)
        self.qualified_table = self._sql.make_qualified_table_name(EVENTS_TABLE)
        self._lock = threading.Lock()
        self._held = False
        self._create_table()

    # -- connection ------------------------------------------------------------------------
    def _open(self) -> None:
        deadline = time.monotonic() + self.lock_timeout_seconds
        while True:
            try:
                self._sql.open_connection()
                return
            except Exception as exc:
                # Another process (a connector run) holds the DuckDB file's write lock: wait.
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep one connection open across several statements (opening a DuckDB file and
        closing it cost several times an insert), until the block ends."""
        with self._lock:
            self._open()
            self._held = True
        try:
            yield
        finally:
            with self._lock:
                self._held = False
                self._sql.close_connection()

    @contextmanager
    def _session(self) -> Iterator[Any]:
        with self._lock:
            if self._held:
                yield self._sql
                return
            self._open()
            try:
                yield self._sql
            finally:
                self._sql.close_connection()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one statement (`%s` placeholders) in its own session; its rows, if any."""
        with self._session() as client:
            return [tuple(row) for row in client.execute_sql(sql, *params) or []]

    def close(self) -> None:
        """Nothing is held between sessions; kept so callers can release a store uniformly."""

    # -- schema ----------------------------------------------------------------------------
    def _create_table_sql(self) -> str:
        d = self.dialect
        key = " PRIMARY KEY" if d.strategy == "on_conflict" else " NOT NULL"
        return (
            f"CREATE TABLE IF NOT EXISTS {self.qualified_table} ("
            f" event_id {d.text}{key},"
            f" event {d.text} NOT NULL,"
            f" shop_id {d.bigint} NOT NULL,"
            f" resource {d.text},"
            f" object_id {d.bigint},"
            f" object_updated_at {d.timestamp},"
            f" created_at {d.timestamp} NOT NULL,"
            f" received_at {d.timestamp} NOT NULL,"
            f" payload {d.payload} NOT NULL)"
        )

    def _create_table(self) -> None:
        for attempt in (1, 2, 3):
            try:
                with self._session() as client:
                    if not client.has_dataset():
                        client.create_dataset()
                    client.execute_sql(self._create_table_sql())
                return
            except Exception:
                # IF NOT EXISTS is not atomic on Postgres: a receiver starting at the same moment
                # may have won the race (unique violation), once for the schema and once for the
                # table. The next try sees what it created.
                if attempt == 3:
                    raise
                time.sleep(0.1 * attempt)

    # -- writes ----------------------------------------------------------------------------
    def insert_many(self, events: Iterable[WebhookEvent]) -> set[str]:
        """Store the events whose ids are not stored yet, in one statement. Returns those ids.

        The statement is atomic: on an error nothing of the batch is stored and the caller
        answers 503, so the sender retries every one of them.
        """
        unique: dict[str, WebhookEvent] = {}
        for event in events:
            unique.setdefault(event.event_id, event)  # the first delivery of an id in a batch wins
        if not unique:
            return set()
        rows = [[getattr(event, column) for column in COLUMNS] for event in unique.values()]
        if self.dialect.strategy == "merge":
            return self._merge(rows)
        values = ", ".join("(" + ", ".join(["%s"] * len(COLUMNS)) + ")" for _ in rows)
        sql = (
            f"INSERT INTO {self.qualified_table} ({', '.join(COLUMNS)}) VALUES {values}"
            " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        with self._session() as client:
            stored = client.execute_sql(sql, *[value for row in rows for value in row]) or []
        return {row[0] for row in stored}

    def _merge(self, rows: list[list[Any]]) -> set[str]:
        ids = [row[0] for row in rows]
        select = " UNION ALL ".join(
            "SELECT " + ", ".join(f"%s AS {column}" for column in COLUMNS) for _ in rows
        )
        columns = ", ".join(COLUMNS)
        sql = (
            f"MERGE INTO {self.qualified_table} AS t USING ({select}) AS s ON t.event_id = s.event_id"
            f" WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({', '.join('s.' + c for c in COLUMNS)})"
        )
        in_list = ", ".join(["%s"] * len(ids))
        with self._session() as client:
            # Under this store's lock: read what is there, then insert what is not. A second
            # receiver racing on the same ids still stores each once (MERGE), though both may
            # answer "new" for it.
            existing = client.execute_sql(
                f"SELECT event_id FROM {self.qualified_table} WHERE event_id IN ({in_list})", *ids) or []
            client.execute_sql(sql, *[value for row in rows for value in row])
        return set(ids) - {row[0] for row in existing}

    def insert(self, event: WebhookEvent) -> bool:
        """Store the event unless its id is already stored. True if it was new."""
        return event.event_id in self.insert_many([event])

    # -- reads -----------------------------------------------------------------------------
    def event_ids(self) -> list[str]:
        rows = self._execute(f"SELECT event_id FROM {self.qualified_table} ORDER BY received_at, event_id")
        return [row[0] for row in rows]

    def count(self) -> int:
        return int(self._execute(f"SELECT count(*) FROM {self.qualified_table}")[0][0])

    def latest_object_state(self, resource: str, object_id: int) -> dict | None:
        """The newest known state of an object, by the object's own `updated_at`.

        Deliveries arrive out of order, so arrival order (received_at) says nothing about which
        state is newer; the object's `updated_at` does (ties: the later event `created_at`).
        """
        rows = self._execute(
            f"SELECT payload FROM {self.qualified_table} WHERE resource = %s AND object_id = %s"
            " ORDER BY object_updated_at DESC NULLS LAST, created_at DESC, event_id DESC LIMIT 1",
            [resource, object_id],
        )
        if not rows:
            return None
        payload = rows[0][0]
        # DuckDB and BigQuery return the text; psycopg2 already decodes Postgres json.
        return (json.loads(payload) if isinstance(payload, str) else payload)["data"]


def duckdb_store(path: str, dataset_name: str = DEFAULT_DATASET, **kwargs: Any) -> WebhookEventStore:
    import dlt

    return WebhookEventStore(dlt.destinations.duckdb(str(path)), dataset_name, **kwargs)


def postgres_store(credentials: Any = None, dataset_name: str = DEFAULT_DATASET, **kwargs: Any) -> WebhookEventStore:
    """Postgres; credentials None resolves them as the pipeline does (destination.postgres.credentials)."""
    import dlt

    return WebhookEventStore(dlt.destinations.postgres(credentials), dataset_name, **kwargs)


def bigquery_store(dataset_name: str = DEFAULT_DATASET, **kwargs: Any) -> WebhookEventStore:
    """BigQuery; credentials as the pipeline resolves them (destination.bigquery.credentials)."""
    import dlt

    return WebhookEventStore(dlt.destinations.bigquery(), dataset_name, **kwargs)


# The names earlier versions exported: a store per warehouse kind.
DuckDBWebhookEventStore = duckdb_store
PostgresWebhookEventStore = postgres_store

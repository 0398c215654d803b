"""AutoSync webhook receiver: verify, deduplicate, store, and trigger an incremental sync.

AutoSync signs each delivery with `X-AutoSync-Signature` = lowercase hex HMAC-SHA256 of the raw
body under the subscription secret. The signature carries no timestamp, so a captured delivery
can be replayed at will: the receiver deduplicates on the event id, in the warehouse itself
(`webhook_events`, unique `event_id`), so dedupe survives restarts and holds across several
receivers writing to one Postgres. Deliveries may come out of order; the events are stored as
they arrive and the sync they trigger reads the API (the source of truth), so order never
matters for the raw tables. `latest_object_state` shows how to read the table order-safely.

Run it:  python -m pipelines.webhooks --port 8080 --duckdb-path warehouse.duckdb
(secret from $AUTOSYNC_WEBHOOK_SECRET or `[webhooks] secret` in .dlt/secrets.toml).
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# Named, not __name__: under `python -m pipelines.webhooks` that would be "__main__".
logger = logging.getLogger("pipelines.webhooks")

SIGNATURE_HEADER = "X-AutoSync-Signature"
DEFAULT_DATASET = "autosync_raw"
EVENTS_TABLE = "webhook_events"
DEFAULT_SECRET_ENV = "AUTOSYNC_WEBHOOK_SECRET"
# Deliveries carry one object; anything far larger is not AutoSync and is refused before hashing.
MAX_BODY_BYTES = 1_000_000

# Event name prefix -> connector resources whose rows the event changes. The first resource is
# the type of the object in `data`. A payment also changes its work order (the work order embeds
# `payments[]` and `amount_paid`/`balance_due`), so payment events resync both.
EVENT_RESOURCES: dict[str, tuple[str, ...]] = {
    "workorder": ("work_orders",),
    "payment": ("payments", "work_orders"),
    "customer": ("customers",),
    "appointment": ("appointments",),
    "inspection": ("inspections",),
    "inventory": ("inventory",),
}

OnEvents = Callable[[set[str], set[int]], None]


def resources_for_event(event_name: str) -> tuple[str, ...]:
    """Connector resources an event touches; empty for an event this receiver does not know."""
    prefix = event_name.split(".", 1)[0]
    return EVENT_RESOURCES.get(prefix, ())


def compute_signature(secret: str, raw_body: bytes) -> str:
    """The signature AutoSync sends: lowercase hex HMAC-SHA256 of the exact raw body."""
    return hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def signature_is_valid(secret: str, raw_body: bytes, provided: str | None) -> bool:
    if not provided:
        return False
    expected = compute_signature(secret, raw_body).encode("ascii")
    # Bytes on both sides: compare_digest refuses non-ASCII str, and a header is latin-1 text.
    # Constant time, so a forger cannot learn the signature byte by byte from response timing.
    return hmac.compare_digest(expected, provided.encode("latin-1"))


class InvalidEnvelope(ValueError):
    """The body is signed but is not an AutoSync event envelope."""


def _parse_timestamp(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise InvalidEnvelope(f"'{field}' must be an ISO-8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEnvelope(f"'{field}' is not an ISO-8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:  # the API sends UTC; a naive value is taken as UTC
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


@dataclass(frozen=True)
class WebhookEvent:
    """One verified delivery, in the shape of a `webhook_events` row."""

    event_id: str
    event: str
    shop_id: int
    resource: str | None
    object_id: int | None
    object_updated_at: datetime | None
    created_at: datetime
    received_at: datetime
    payload: str  # the raw body, verbatim JSON text

    @property
    def touched_resources(self) -> tuple[str, ...]:
        return resources_for_event(self.event)

    @classmethod
    def from_body(cls, raw_body: bytes, received_at: datetime | None = None) -> "WebhookEvent":
        try:
            text = raw_body.decode("utf-8")
            envelope = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidEnvelope("body is not UTF-8 JSON") from None
        if not isinstance(envelope, dict):
            raise InvalidEnvelope("body must be a JSON object")
        event_id = envelope.get("id")
        if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
            raise InvalidEnvelope("'id' must be a non-empty string (the event id, evt_...)")
        event = envelope.get("event")
        if not isinstance(event, str) or "." not in event:
            raise InvalidEnvelope("'event' must be an event name such as 'workorder.completed'")
        shop_id = envelope.get("shop_id")
        if not isinstance(shop_id, int) or isinstance(shop_id, bool):
            raise InvalidEnvelope("'shop_id' must be an integer")
        created_at = _parse_timestamp(envelope.get("created_at"), "created_at")
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise InvalidEnvelope("'data' must be an object (the resource as GET returns it)")
        object_id = data.get("id")
        if not isinstance(object_id, int) or isinstance(object_id, bool):
            object_id = None
        object_updated_at = None
        if data.get("updated_at"):
            try:
                object_updated_at = _parse_timestamp(data["updated_at"], "data.updated_at")
            except InvalidEnvelope:
                # The envelope is what we must understand; the object is AutoSync's business.
                # Keep the event (its sync reads the API anyway), just without an order key.
                pass
        resources = resources_for_event(event)
        return cls(
            event_id=event_id,
            event=event,
            shop_id=shop_id,
            resource=resources[0] if resources else None,
            object_id=object_id,
            object_updated_at=object_updated_at,
            created_at=created_at,
            received_at=received_at or datetime.now(timezone.utc),
            payload=text,
        )


# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------
# Why not dlt: a dlt pipeline run (extract, normalize, load job files, state) costs a second or
# more per call, far too slow to acknowledge each delivery before the sender times out, and
# batching deliveries in memory would lose them on a crash after we answered 200. Dedupe also
# has to be a database constraint to hold across restarts and several receivers. So each event
# is one `INSERT ... ON CONFLICT (event_id) DO NOTHING` through the destination's own DB-API
# driver, into the same warehouse and dataset as the raw tables.

_COLUMNS = (
    "event_id", "event", "shop_id", "resource", "object_id", "object_updated_at",
    "created_at", "received_at", "payload",
)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _create_table_sql(qualified: str, json_type: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {qualified} ("
        " event_id VARCHAR PRIMARY KEY,"
        " event VARCHAR NOT NULL,"
        " shop_id BIGINT NOT NULL,"
        " resource VARCHAR,"
        " object_id BIGINT,"
        " object_updated_at TIMESTAMPTZ,"
        " created_at TIMESTAMPTZ NOT NULL,"
        " received_at TIMESTAMPTZ NOT NULL,"
        f" payload {json_type} NOT NULL)"
    )


class WebhookEventStore(ABC):
    """Append-only `webhook_events` table: insert-if-new and a few reads. Thread-safe."""

    placeholder = "?"  # the driver's paramstyle marker

    def __init__(self, dataset_name: str = DEFAULT_DATASET) -> None:
        self.dataset_name = dataset_name
        self.qualified_table = f"{_quote_ident(dataset_name)}.{_quote_ident(EVENTS_TABLE)}"
        self._lock = threading.Lock()

    # -- driver specifics ----------------------------------------------------------------
    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one statement in its own transaction and return its rows (if any)."""

    def close(self) -> None:
        """Release a held connection (stores that hold none have nothing to do)."""

    # -- operations ----------------------------------------------------------------------
    def insert(self, event: WebhookEvent) -> bool:
        """Store the event unless its id is already stored. True if it was new."""
        placeholders = ", ".join(self.placeholder for _ in _COLUMNS)
        sql = (
            f"INSERT INTO {self.qualified_table} ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
            " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        params = [getattr(event, column) for column in _COLUMNS]
        return bool(self._execute(sql, params))

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
        p = self.placeholder
        rows = self._execute(
            f"SELECT payload FROM {self.qualified_table} WHERE resource = {p} AND object_id = {p}"
            " ORDER BY object_updated_at DESC NULLS LAST, created_at DESC, event_id DESC LIMIT 1",
            [resource, object_id],
        )
        if not rows:
            return None
        payload = rows[0][0]
        # DuckDB returns JSON as text; psycopg2 already decodes Postgres json.
        return (json.loads(payload) if isinstance(payload, str) else payload)["data"]


class DuckDBWebhookEventStore(WebhookEventStore):
    """`webhook_events` in a DuckDB file.

    A connection is opened per statement and closed right after, so the file is not held
    between deliveries: the connector in another process can load into it in the meantime
    (DuckDB lets one process write a file at a time). A connection in this process shares the
    database instance with the connector when the receiver triggers the sync itself.
    """

    def __init__(self, path: str, dataset_name: str = DEFAULT_DATASET, lock_timeout_seconds: float = 10.0):
        super().__init__(dataset_name)
        self.path = str(path)
        self.lock_timeout_seconds = lock_timeout_seconds
        with self._lock:
            con = self._connect()
            try:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(dataset_name)}")
                con.execute(_create_table_sql(self.qualified_table, "JSON"))
            finally:
                con.close()

    def _connect(self):
        import duckdb

        deadline = time.monotonic() + self.lock_timeout_seconds
        while True:
            try:
                return duckdb.connect(self.path)
            except duckdb.IOException as exc:
                # Another process (a connector run) holds the file's write lock: wait for it.
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            con = self._connect()
            try:
                cursor = con.execute(sql, list(params))
                return cursor.fetchall() if cursor.description else []
            finally:
                con.close()


class PostgresWebhookEventStore(WebhookEventStore):
    """`webhook_events` in a Postgres schema, through psycopg2 (autocommit: one row, one txn)."""

    placeholder = "%s"

    def __init__(self, dsn: str, dataset_name: str = DEFAULT_DATASET):
        super().__init__(dataset_name)
        self._dsn = dsn
        self._connection = None
        import psycopg2.errors

        for statement in (
            f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(dataset_name)}",
            # JSON, not JSONB: Postgres keeps the text verbatim (the exact body that was signed).
            _create_table_sql(self.qualified_table, "JSON"),
        ):
            try:
                self._execute(statement)
            except psycopg2.errors.UniqueViolation:
                # IF NOT EXISTS is not atomic: a receiver starting at the same moment won the race.
                pass

    def _connect(self):
        import psycopg2

        if self._connection is None or self._connection.closed:
            self._connection = psycopg2.connect(self._dsn)
            self._connection.autocommit = True
        return self._connection

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        import psycopg2

        with self._lock:
            for attempt in (1, 2):
                con = self._connect()
                try:
                    with con.cursor() as cursor:
                        cursor.execute(sql, list(params) or None)
                        return cursor.fetchall() if cursor.description else []
                except psycopg2.OperationalError:
                    # A dropped connection (server restart): reconnect once, then give up.
                    con.close()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


# --------------------------------------------------------------------------------------------
# Sync trigger
# --------------------------------------------------------------------------------------------
class SyncTriggerBatcher:
    """Collects the (resources, shops) that deliveries touch and hands them to `on_events` from
    one background thread, after `debounce_seconds` without a new delivery (or `max_delay_seconds`
    after the first one, so a steady stream still syncs).

    Why not in the request: a sync takes seconds to minutes and the sender times out and retries.
    Why one thread: two connector runs on one pipeline would fight over its state and the
    destination; deliveries that arrive during a run form the next batch.
    A failed `on_events` is logged, not retried: the events stay in `webhook_events` and the next
    incremental sync (scheduled or triggered) reads from its own cursor, so nothing is lost.
    """

    def __init__(self, on_events: OnEvents, debounce_seconds: float = 2.0, max_delay_seconds: float = 30.0):
        self.on_events = on_events
        self.debounce_seconds = debounce_seconds
        self.max_delay_seconds = max(max_delay_seconds, debounce_seconds)
        self._cond = threading.Condition()
        self._resources: set[str] = set()
        self._shop_ids: set[int] = set()
        self._first_at = 0.0
        self._last_at = 0.0
        self._submitted = 0  # submissions so far
        self._done = 0  # submissions whose batch on_events has returned for
        self._hurry = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="autosync-webhook-sync", daemon=True)
                self._thread.start()

    def submit(self, resources: Iterable[str], shop_ids: Iterable[int]) -> None:
        resources, shop_ids = set(resources), set(shop_ids)
        if not resources:
            return
        self.start()
        with self._cond:
            now = time.monotonic()
            if not self._resources:
                self._first_at = now
            self._last_at = now
            self._resources |= resources
            self._shop_ids |= shop_ids
            self._submitted += 1
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Run what is pending now (skip the debounce) and wait until on_events has returned."""
        with self._cond:
            target = self._submitted
            if self._done >= target:
                return True
            self._hurry = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Run the pending batch, if any, then end the worker thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._resources or self._stopping)
                if not self._resources:
                    return  # stopping with nothing pending
                while not (self._stopping or self._hurry):
                    due = min(self._last_at + self.debounce_seconds, self._first_at + self.max_delay_seconds)
                    remaining = due - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                resources, shop_ids, covered = self._resources, self._shop_ids, self._submitted
                self._resources, self._shop_ids, self._hurry = set(), set(), False
            try:
                logger.info("webhooks: syncing %s for shops %s", sorted(resources), sorted(shop_ids))
                self.on_events(resources, shop_ids)
            except (Exception, SystemExit):
                # SystemExit too: a CLI-style main() (argparse) exits, and that would end this
                # thread silently, leaving every later batch unsynced.
                logger.exception("webhooks: the triggered sync failed; the next sync will catch up")
            with self._cond:
                self._done = max(self._done, covered)
                self._cond.notify_all()


def connector_sync_trigger(destination_args: Sequence[str] = (), run_dbt: bool = False) -> OnEvents:
    """An `on_events` that runs the sync engine's incremental sync of the touched resources/shops.

    `destination_args` are `pipelines.run` flags that pick the destination (the same warehouse
    this receiver stores events in). dbt is off by default: a dbt build per webhook batch is heavy,
    and the marts refresh on the scheduled run. A failed sync raises `pipelines.engine.SyncFailed`.
    """

    def run_incremental_sync(resources: set[str], shop_ids: set[int]) -> None:
        # lazy: the connector is heavy and optional for receiving
        from pipelines.engine import run_sync
        from pipelines.run import job_from_flags

        job = job_from_flags(destination_args, door="webhook")
        job.resources, job.shops, job.run_dbt = sorted(resources), sorted(shop_ids), run_dbt
        run_sync(job)

    return run_incremental_sync


# --------------------------------------------------------------------------------------------
# ASGI app
# --------------------------------------------------------------------------------------------
def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"success": False, "error": {"code": code, "message": message, "status": status}}, status_code=status
    )


def create_app(
    secret: str,
    store: WebhookEventStore,
    on_events: OnEvents | None = None,
    debounce_seconds: float = 2.0,
    max_delay_seconds: float = 30.0,
    path: str = "/webhooks/autosync",
) -> Starlette:
    """The receiver. POST deliveries to `path`; `GET /healthz` answers 200 for load balancers.

    `on_events(resources, shop_ids)` runs in a background thread after a quiet period; None
    stores events without triggering anything.
    """
    if not secret:
        raise ValueError("the webhook secret is empty: set it to the secret given to POST /v1/webhooks")
    batcher = SyncTriggerBatcher(on_events, debounce_seconds, max_delay_seconds) if on_events else None

    async def receive(request: Request) -> JSONResponse:
        declared_length = request.headers.get("content-length")
        if declared_length and declared_length.isdigit() and int(declared_length) > MAX_BODY_BYTES:
            return _error(413, "payload_too_large", f"body over {MAX_BODY_BYTES} bytes")
        raw_body = await request.body()
        if len(raw_body) > MAX_BODY_BYTES:
            return _error(413, "payload_too_large", f"body over {MAX_BODY_BYTES} bytes")
        provided = request.headers.get(SIGNATURE_HEADER)
        if not signature_is_valid(secret, raw_body, provided):
            # Never log the secret or the signature; who sent what is enough to investigate.
            client = request.client.host if request.client else "?"
            logger.warning(
                "webhooks: refused a delivery from %s (%s signature, %d bytes)",
                client, "bad" if provided else "missing", len(raw_body),
            )
            return _error(403, "invalid_signature", f"missing or invalid {SIGNATURE_HEADER}")
        try:
            event = WebhookEvent.from_body(raw_body)
        except InvalidEnvelope as exc:
            return _error(400, "invalid_request", f"not an AutoSync event envelope: {exc}")
        try:
            is_new = await run_in_threadpool(store.insert, event)
        except Exception as exc:
            # 503 makes the sender retry later; answering 200 would lose the event.
            logger.error("webhooks: could not store %s: %s", event.event_id, type(exc).__name__)
            return _error(503, "storage_unavailable", "the event could not be stored; retry later")
        if not is_new:
            logger.info("webhooks: duplicate delivery of %s ignored", event.event_id)
            return JSONResponse({"success": True, "id": event.event_id, "duplicate": True})
        logger.info("webhooks: stored %s %s shop %s", event.event_id, event.event, event.shop_id)
        if event.resource is None:
            logger.warning("webhooks: unknown event %r stored, no sync triggered", event.event)
        elif batcher is not None:
            batcher.submit(event.touched_resources, {event.shop_id})
        return JSONResponse({"success": True, "id": event.event_id, "duplicate": False})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @asynccontextmanager
    async def lifespan(app: Starlette):
        if batcher is not None:
            batcher.start()
        try:
            yield
        finally:
            if batcher is not None:
                await run_in_threadpool(batcher.stop)
            await run_in_threadpool(store.close)

    app = Starlette(
        routes=[Route(path, receive, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.batcher = batcher
    return app


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def _read_secret(env_name: str) -> str | None:
    value = os.environ.get(env_name)
    if value:
        return value
    import dlt  # `[webhooks] secret` in .dlt/secrets.toml (or WEBHOOKS__SECRET)

    return dlt.secrets.get("webhooks.secret")


def _postgres_dsn() -> str:
    """The DSN the connector's dlt Postgres destination would use (same config keys and forms)."""
    from dlt.common.configuration import resolve_configuration
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

    credentials = resolve_configuration(PostgresCredentials(), sections=("destination", "postgres"))
    return credentials.to_native_representation()


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.webhooks",
        description="Receive AutoSync webhooks: verify, deduplicate, store in webhook_events, trigger a sync.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--path", default="/webhooks/autosync", help="URL path to subscribe (default %(default)s)")
    parser.add_argument(
        "--secret-env", default=DEFAULT_SECRET_ENV,
        help="environment variable holding the webhook secret (default %(default)s); falls back to "
        "[webhooks] secret in .dlt/secrets.toml. Never pass the secret itself on the command line.",
    )
    destination = parser.add_mutually_exclusive_group(required=True)
    destination.add_argument("--duckdb-path", help="DuckDB file of the warehouse")
    destination.add_argument(
        "--postgres", action="store_true",
        help="Postgres warehouse; credentials from destination.postgres.credentials (dlt secrets/env)",
    )
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="raw dataset/schema (default %(default)s)")
    parser.add_argument("--debounce-seconds", type=float, default=2.0)
    parser.add_argument("--max-delay-seconds", type=float, default=30.0)
    parser.add_argument("--no-sync", action="store_true", help="store events only, trigger no sync")
    parser.add_argument("--with-dbt", action="store_true", help="run dbt after each triggered sync")
    parser.add_argument(
        "--sync-arg", action="append", default=[], metavar="ARG",
        help="extra flag for the triggered `pipelines.run` (repeatable), e.g. --sync-arg=--base-url=...",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    secret = _read_secret(args.secret_env)
    if not secret:
        print(
            f"error: no webhook secret: set ${args.secret_env} or [webhooks] secret in .dlt/secrets.toml",
            file=sys.stderr,
        )
        return 2
    try:
        if args.duckdb_path:
            store: WebhookEventStore = DuckDBWebhookEventStore(args.duckdb_path, args.dataset)
            destination_args = ["--destination", "duckdb", "--duckdb-path", args.duckdb_path]
        else:
            from dlt.common.configuration.exceptions import ConfigFieldMissingException

            try:
                dsn = _postgres_dsn()
            except ConfigFieldMissingException:
                print(
                    "error: --postgres needs destination.postgres.credentials in .dlt/secrets.toml "
                    "or DESTINATION__POSTGRES__CREDENTIALS (a postgresql:// connection string)",
                    file=sys.stderr,
                )
                return 2
            store = PostgresWebhookEventStore(dsn, args.dataset)
            destination_args = ["--destination", "postgres"]
    except Exception as exc:  # a clear line, not a traceback (and no DSN in it)
        print(f"error: cannot open the webhook_events table: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    on_events = None
    if not args.no_sync:
        on_events = connector_sync_trigger(
            [*destination_args, "--dataset", args.dataset, *args.sync_arg], run_dbt=args.with_dbt
        )
    app = create_app(secret, store, on_events, args.debounce_seconds, args.max_delay_seconds, args.path)

    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())

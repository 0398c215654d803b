"""AutoSync webhook receiver: verify, deduplicate, store, and trigger an incremental sync.

The receiver deduplicates on the event id in the warehouse itself (`webhook_events`, one row per
`event_id`), so dedupe survives restarts and holds across several receivers writing to one
warehouse. Deliveries may come out of order; the events are stored as they arrive and the sync
they trigger reads the API (the source of truth), so order never matters for the raw tables.
`WebhookEventStore.latest_object_state` shows how to read the table order-safely.

Run it:  python -m pipelines.webhooks --port 8080 --duckdb-path warehouse.duckdb
(secret from $AUTOSYNC_WEBHOOK_SECRET or `[webhooks] secret` in .dlt/secrets.toml).

Modules: envelope (signature, event), store (the table, via dlt's SQL client), writer (bounded
queue, batched writes), batcher (debounced syncs), trigger (the one function that runs a sync),
limits, metrics, app (ASGI), server (uvicorn with header bounds), cli.
"""
from pipelines.webhooks.app import DEFAULT_PATH, create_app
from pipelines.webhooks.batcher import OnEvents, SyncTriggerBatcher
from pipelines.webhooks.cli import DEFAULT_SECRET_ENV, build_arg_parser, main
from pipelines.webhooks.envelope import (
    EVENT_RESOURCES,
    SIGNATURE_HEADER,
    InvalidEnvelope,
    UnknownEvent,
    WebhookEvent,
    compute_signature,
    resources_for_event,
    signature_is_valid,
)
from pipelines.webhooks.limits import ReceiverLimits
from pipelines.webhooks.metrics import ReceiverMetrics
from pipelines.webhooks.store import (
    DEFAULT_DATASET,
    EVENTS_TABLE,
    DuckDBWebhookEventStore,
    PostgresWebhookEventStore,
    WebhookEventStore,
    bigquery_store,
    duckdb_store,
    postgres_store,
)
from pipelines.webhooks.trigger import SyncOptions, connector_sync_trigger, sync_touched
from pipelines.webhooks.writer import EventWriter, QueueFull

__all__ = [
    "DEFAULT_DATASET", "DEFAULT_PATH", "DEFAULT_SECRET_ENV", "EVENTS_TABLE", "EVENT_RESOURCES",
    "SIGNATURE_HEADER", "DuckDBWebhookEventStore", "EventWriter", "InvalidEnvelope", "OnEvents",
    "PostgresWebhookEventStore", "QueueFull", "ReceiverLimits", "ReceiverMetrics", "SyncOptions",
    "SyncTriggerBatcher", "UnknownEvent", "WebhookEvent", "WebhookEventStore", "bigquery_store",
    "build_arg_parser", "compute_signature", "connector_sync_trigger", "create_app", "duckdb_store",
    "main", "postgres_store", "resources_for_event", "signature_is_valid", "sync_touched",
]

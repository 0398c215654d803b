"""`python -m pipelines.webhooks`: flags -> store, trigger, limits -> uvicorn."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from pipelines.webhooks.app import DEFAULT_PATH, create_app
from pipelines.webhooks.limits import ReceiverLimits
from pipelines.webhooks.metrics import ReceiverMetrics
from pipelines.webhooks.server import uvicorn_config
from pipelines.webhooks.store import DEFAULT_DATASET, WebhookEventStore, bigquery_store, duckdb_store, postgres_store
from pipelines.webhooks.trigger import connector_sync_trigger

DEFAULT_SECRET_ENV = "AUTOSYNC_WEBHOOK_SECRET"


def read_secret(env_name: str) -> str | None:
    value = os.environ.get(env_name)
    if value:
        return value
    import dlt  # `[webhooks] secret` in .dlt/secrets.toml (or WEBHOOKS__SECRET)

    return dlt.secrets.get("webhooks.secret")


def build_arg_parser(prog: str = "python -m pipelines.webhooks") -> argparse.ArgumentParser:
    defaults = ReceiverLimits()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Receive AutoSync webhooks: verify, deduplicate, store in webhook_events, trigger a sync.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default %(default)s); put a TLS reverse proxy in front of it")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--path", default=DEFAULT_PATH, help="URL path to subscribe (default %(default)s)")
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
    destination.add_argument(
        "--bigquery", action="store_true",
        help="BigQuery warehouse; credentials from destination.bigquery.credentials (dlt secrets/env)",
    )
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="raw dataset/schema (default %(default)s)")
    parser.add_argument("--debounce-seconds", type=float, default=2.0)
    parser.add_argument("--max-delay-seconds", type=float, default=30.0)
    parser.add_argument("--no-sync", action="store_true", help="store events only, trigger no sync")
    parser.add_argument("--with-dbt", action="store_true", help="run dbt after each triggered sync")
    parser.add_argument("--base-url", help="the API the triggered syncs read (default: from the key's environment)")
    parser.add_argument("--pipelines-dir", help="where the sync state lives (default: as for pipelines/run.py)")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes,
                        help="refuse a body past this many bytes, 413 (default %(default)s)")
    limits.add_argument("--header-timeout", type=float, default=defaults.header_timeout_seconds,
                        help="seconds to receive the headers (default %(default)s)")
    limits.add_argument("--body-timeout", type=float, default=defaults.body_timeout_seconds,
                        help="seconds to receive the body (default %(default)s)")
    limits.add_argument("--max-header-bytes", type=int, default=defaults.max_header_bytes,
                        help="request line and headers, 431 past it (default %(default)s)")
    limits.add_argument("--max-connections", type=int, default=defaults.max_connections,
                        help="open connections and requests; 503 past it (default %(default)s)")
    limits.add_argument("--max-pending-writes", type=int, default=defaults.max_pending_writes,
                        help="deliveries waiting for the warehouse; 503 + Retry-After past it (default %(default)s)")
    return parser


def _open_store(args: argparse.Namespace) -> tuple[WebhookEventStore, str]:
    """The store, and the destination the triggered syncs load into (the same warehouse)."""
    if args.duckdb_path:
        return duckdb_store(args.duckdb_path, args.dataset), "duckdb"
    if args.postgres:
        return postgres_store(None, args.dataset), "postgres"
    return bigquery_store(args.dataset), "bigquery"


def main(argv: Sequence[str] | None = None, prog: str = "python -m pipelines.webhooks") -> int:
    args = build_arg_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    secret = read_secret(args.secret_env)
    if not secret:
        print(
            f"error: no webhook secret: set ${args.secret_env} or [webhooks] secret in .dlt/secrets.toml",
            file=sys.stderr,
        )
        return 2
    try:
        limits = ReceiverLimits(
            max_body_bytes=args.max_body_bytes, header_timeout_seconds=args.header_timeout,
            body_timeout_seconds=args.body_timeout, max_header_bytes=args.max_header_bytes,
            max_connections=args.max_connections, max_pending_writes=args.max_pending_writes,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    try:
        store, destination = _open_store(args)
    except ConfigFieldMissingException:
        kind = "postgres" if args.postgres else "bigquery"
        print(
            f"error: --{kind} needs destination.{kind}.credentials in .dlt/secrets.toml "
            f"or DESTINATION__{kind.upper()}__CREDENTIALS (as for the pipeline)",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # a clear line, not a traceback (and no DSN in it)
        print(f"error: cannot open the webhook_events table: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    on_events = None
    if not args.no_sync:
        from pipelines.engine import Target

        target = Target(destination, args.dataset, args.duckdb_path, args.pipelines_dir)
        on_events = connector_sync_trigger(
            target, base_url=args.base_url, run_dbt=args.with_dbt,
            in_child_process=not args.duckdb_path,  # see SyncOptions: DuckDB takes one writing process
        )
    metrics = ReceiverMetrics()
    app = create_app(secret, store, on_events, args.debounce_seconds, args.max_delay_seconds, args.path,
                     limits=limits, metrics=metrics)

    import uvicorn

    uvicorn.Server(uvicorn_config(app, args.host, args.port, limits, metrics)).run()
    return 0

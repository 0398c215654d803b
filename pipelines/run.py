"""The command-line door to the sync engine (pipelines/engine.py): sync AutoSync into the
warehouse, then build the dbt models.

    python pipelines/run.py --demo                  # local emulator, seeded world, its own DuckDB file, dbt
    python pipelines/run.py                         # credentials and settings from .dlt/ or env
    python pipelines/run.py --destination postgres --resources work_orders,payments --json

Exit codes: 0 ok, 2 configuration/credentials/API problem, 3 destination problem,
4 dbt failed (the load itself was committed), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

if __package__ in (None, ""):
    # `python pipelines/run.py` puts pipelines/ on sys.path, not the project root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlt.common.runtime.collector import LogCollector  # noqa: E402

from autosync_source import RESOURCE_NAMES  # noqa: E402
from autosync_source.logs import JsonLogFormatter, json_line  # noqa: E402
from autosync_source.settings import DEFAULT_DATASET  # noqa: E402
from pipelines.engine import (  # noqa: E402
    DEFAULT_DUCKDB_PATH,
    DEMO_API_LABEL,
    EXIT_DBT_FAILED,
    SyncFailed,
    SyncJob,
    SyncSummary,
    Target,
    demo_target,
    duckdb_destination,
    raise_on_interrupts,
    refuse_non_demo_warehouse,
    run_sync,
    world_today,
)

logger = logging.getLogger("autosync.run")

# duckdb_destination: benchmarks/worker.py builds the connector's DuckDB destination from here
__all__ = ["DEMO_WORLD", "build_parser", "duckdb_destination", "job_from_args", "main"]

DEMO_WORLD = dict(seed=42, shops=3, work_orders=200)


def build_parser(prog: str = "pipelines/run.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Sync the AutoSync Shop Manager API into a warehouse (dlt), then run dbt.",
    )
    parser.add_argument("--demo", action="store_true",
                        help="start the local emulator with a seeded world and sync it into its own DuckDB file "
                        "(autosync_demo.duckdb, dataset autosync_demo_raw)")
    parser.add_argument("--base-url",
                        help="API base URL, e.g. https://sandbox.api.autosyncshopmanager.com/v1 (default: from the key prefix)")
    parser.add_argument("--api-key", help="API key (better: SOURCES__AUTOSYNC__API_KEY or .dlt/secrets.toml; a flag shows in `ps`)")
    parser.add_argument("--destination", choices=("duckdb", "postgres", "bigquery"), default=None, help="default duckdb")
    parser.add_argument("--duckdb-path", help=f"DuckDB file (default {DEFAULT_DUCKDB_PATH})")
    parser.add_argument("--dataset", help=f"raw dataset/schema name (default {DEFAULT_DATASET})")
    parser.add_argument("--resources", help=f"comma-separated subset of: {','.join(RESOURCE_NAMES)}")
    parser.add_argument("--shops", help="comma-separated shop ids (default: every shop the credentials see)")
    parser.add_argument("--start-date", help="a first sync reads records updated from this date (ISO 8601); "
                        "ignored, with a warning, once cursors exist")
    parser.add_argument("--end-date", help="bound a backfill: nothing updated after this is read")
    parser.add_argument("--window", action="store_true",
                        help="read exactly [--start-date, --end-date] with throwaway cursors "
                        "(a backfill that leaves the incremental cursors alone)")
    parser.add_argument("--full-refresh", action="store_true",
                        help="drop the selected tables and their cursors, reload everything, rebuild the marts whole")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON on stdout; every stderr line is a JSON object (ts, level, event)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr (warnings and errors only)")
    parser.add_argument("--checkpoint-minutes", type=float,
                        help="a long sync commits what it has loaded at least this often (default 10; 0: only at the end)")
    parser.add_argument("--checkpoint-requests", type=int, help="... or after this many requests (default: no bound)")
    parser.add_argument("--max-workers", type=int,
                        help="shops synced at once, sharing one rate budget per key (default 4, or SOURCES__AUTOSYNC__MAX_WORKERS)")
    parser.add_argument("--processes", type=int,
                        help="read shops in this many worker processes, beside the loads (many small shops: use the "
                        "machine's cores; default 0, in this process; or SOURCES__AUTOSYNC__PROCESSES)")
    parser.add_argument("--no-dbt", action="store_true", help="do not run dbt after the load")
    parser.add_argument("--reconcile-deletes", action="store_true",
                        help="after the load, list every id at the source and mark rows deleted there (_autosync_deleted_at); "
                        "scheduled runs do it every [autosync] reconcile_deletes_every_hours (default 24)")
    parser.add_argument("--pipelines-dir",
                        help="where dlt keeps pipeline state (default .dlt/pipelines in the working directory, or DLT_DATA_DIR)")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging, and dlt's extract/normalize/load progress blocks")
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: str = "pipelines/run.py") -> int:
    args = build_parser(prog).parse_args(argv)
    _configure_logging(args.verbose, args.json)
    previous_handlers = raise_on_interrupts()
    started = time.monotonic()
    try:
        job = job_from_args(args)
        if args.demo:
            return _run_demo(job, args, started)
        return _run(job, args)
    except SyncFailed as failure:
        return _report_failure(failure, args, started)
    except KeyboardInterrupt as interrupt:  # between steps, outside the engine
        from pipelines.engine import as_sync_failed

        return _report_failure(as_sync_failed(interrupt), args, started)
    finally:
        for sig, handler in (previous_handlers or {}).items():  # main() may run inside a longer-lived process
            signal.signal(sig, handler)


def job_from_args(args: argparse.Namespace) -> SyncJob:
    shops: Optional[List[int]] = None
    if args.shops:
        try:
            shops = [int(shop) for shop in args.shops.split(",") if shop.strip()]
        except ValueError:
            raise SyncFailed(f"--shops takes comma-separated shop ids, not '{args.shops}'.", category="configuration") from None
    resources = [name.strip() for name in args.resources.split(",") if name.strip()] if args.resources else None
    return SyncJob(
        target=Target(args.destination, args.dataset, args.duckdb_path, args.pipelines_dir),
        door="demo" if args.demo else "cli",
        shops=shops, resources=resources, start_date=args.start_date, end_date=args.end_date,
        window=args.window, full_refresh=args.full_refresh, reconcile_deletes=args.reconcile_deletes,
        run_dbt=not args.no_dbt, base_url=args.base_url, api_key=args.api_key,
        # dlt's own extract/normalize/load blocks (about 170 stderr lines a sync) only when asked:
        # the connector's progress lines say what a user needs. Never with --json (not JSON).
        progress=LogCollector(log_period=5.0, logger=sys.stderr, dump_system_stats=False)
        if args.verbose and not (args.quiet or args.json) else None,
        source_options=_long_sync_options(args),
    )


def _long_sync_options(args: argparse.Namespace) -> dict:
    """Checkpoints and progress (autosync_source/checkpoints.py, progress.py): only what was given."""
    options: dict = {}
    if args.quiet or args.json:
        options["progress"] = "quiet" if args.quiet else "json"
    if args.checkpoint_minutes is not None:
        options["checkpoint_minutes"] = args.checkpoint_minutes
    if args.checkpoint_requests is not None:
        options["checkpoint_requests"] = args.checkpoint_requests
    if args.max_workers is not None:
        if args.max_workers < 1:
            raise SyncFailed(f"--max-workers takes a whole number of 1 or more, not {args.max_workers}.", category="configuration")
        options["max_workers"] = args.max_workers
    if args.processes is not None:
        if args.processes < 0:
            raise SyncFailed(f"--processes takes a whole number of 0 or more, not {args.processes}.", category="configuration")
        options["processes"] = args.processes
    return options


def _run_demo(job: SyncJob, args: argparse.Namespace, started: float) -> int:
    from autosync_emulator import Emulator

    job.target = demo_target(job.target).resolved()
    refuse_non_demo_warehouse(job.target)  # before the emulator starts: nothing is touched
    job.api_label = DEMO_API_LABEL  # the demo's cursors are never a real account's (same shop ids)
    logger.info("starting the AutoSync emulator (seed %s, %s shops, %s work orders per shop)",
                DEMO_WORLD["seed"], DEMO_WORLD["shops"], DEMO_WORLD["work_orders"])
    with Emulator(**DEMO_WORLD) as emulator:
        job.base_url = job.base_url or emulator.base_url
        job.api_key = job.api_key or emulator.api_key
        # the marts (receivables' ages) and the report are as of the world's today, not the machine's
        job.dbt_vars = {**job.dbt_vars, "as_of_date": world_today(emulator).isoformat()}
        code = _run(job, args)
    if code != 0 or args.no_dbt:
        return code
    from pipelines.dbt_runner import preview_marts
    from pipelines.engine import marts_pipeline

    try:
        preview = preview_marts(marts_pipeline(job.target))
    except Exception as failure:
        print(f"error: the marts were built but could not be previewed: {str(failure).splitlines()[0][:300]}", file=sys.stderr)
        return EXIT_DBT_FAILED
    from pipelines.report import report_for_pipeline  # the owner's report of the demo warehouse

    report_line = report_for_pipeline(marts_pipeline(job.target))
    if args.json:  # stdout keeps the one JSON summary; stderr lines stay JSON objects
        logger.info("%s", json.dumps({"event": "marts preview", "text": preview}))
        logger.info("%s", json.dumps({"event": "report", "text": report_line}))
    else:
        print(preview)
        print(report_line)
    return 0


def _run(job: SyncJob, args: argparse.Namespace) -> int:
    summary = run_sync(job)
    _print_summary(summary, args.json)
    return 0


def _report_failure(failure: SyncFailed, args: argparse.Namespace, started: float) -> int:
    if args.json:
        print(json_line("sync failed", "error", error=failure.message, category=failure.category,
                        exit_code=failure.exit_code), file=sys.stderr)
    else:
        print(f"error: {failure.message}", file=sys.stderr)
    if args.json:
        done = failure.summary.as_dict() if failure.summary is not None else {}
        print(json.dumps({**done, "status": "failed", "error": failure.message,
                          "duration_seconds": round(time.monotonic() - started, 2)}, default=str))
    return failure.exit_code


def _print_summary(summary: SyncSummary, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary.as_dict(), indent=2, default=str))
    else:
        print(summary.describe())


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (main() may run many times in one process)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _configure_logging(verbose: bool, as_json: bool = False) -> None:
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _CurrentStderrHandler)), None)
    if handler is None:
        handler = _CurrentStderrHandler()
        root.addHandler(handler)
    handler.setFormatter(JsonLogFormatter() if as_json
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("urllib3", "dlt", "uvicorn", "uvicorn.access", "airflow"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    # dlt logs through its own "dlt" logger with a handler of its own once it sets up logging;
    # send its lines through ours so --json holds for them too, and Python's warnings likewise.
    dlt_logger = logging.getLogger("dlt")
    for own in list(dlt_logger.handlers):
        dlt_logger.removeHandler(own)
    dlt_logger.propagate = True
    logging.captureWarnings(as_json)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


if __name__ == "__main__":
    sys.exit(main())

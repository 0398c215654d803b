"""The scheduled entry point: sync AutoSync into the warehouse, then build the dbt models.

    python pipelines/run.py --demo                  # local emulator, seeded world, DuckDB, dbt
    python pipelines/run.py                         # credentials and settings from .dlt/ or env
    python pipelines/run.py --destination postgres --resources work_orders,payments --json

Exit codes: 0 ok, 2 configuration/credentials/API problem, 3 destination problem,
4 dbt failed (the load itself was committed), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

if __package__ in (None, ""):
    # `python pipelines/run.py` puts pipelines/ on sys.path, not the project root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dlt  # noqa: E402
from dlt.common.runtime.collector import LogCollector  # noqa: E402

from autosync_source import RESOURCE_NAMES, RequestStats, autosync_source  # noqa: E402
from autosync_source.errors import AutosyncError, DestinationError  # noqa: E402
from autosync_source.deletes import reconcile_deletes, reconciliation_due  # noqa: E402
from autosync_source.schema_changes import columns_snapshot, schema_changes  # noqa: E402
from autosync_source.schema_changes import describe as describe_schema_change  # noqa: E402
from autosync_source.settings import DEFAULT_DATASET  # noqa: E402

logger = logging.getLogger("autosync.run")

PIPELINE_NAME = "autosync"
DEMO_PIPELINE_NAME = "autosync_demo"
DEFAULT_DUCKDB_PATH = "warehouse.duckdb"
DEMO_WORLD = dict(seed=42, shops=3, work_orders=200)
EXIT_DBT_FAILED = 4
DEFAULT_RECONCILE_EVERY_HOURS = 24.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipelines/run.py",
        description="Sync the AutoSync Shop Manager API into a warehouse (dlt), then run dbt.",
    )
    parser.add_argument("--demo", action="store_true", help="start the local emulator with a seeded world and sync it (DuckDB)")
    parser.add_argument("--base-url", help="API base URL, e.g. https://sandbox.api.autosyncshopmanager.com/v1 (default: from the key prefix)")
    parser.add_argument("--api-key", help="API key (better: SOURCES__AUTOSYNC__API_KEY or .dlt/secrets.toml; a flag shows in `ps`)")
    parser.add_argument("--destination", choices=("duckdb", "postgres", "bigquery"), default=None, help="default duckdb")
    parser.add_argument("--duckdb-path", help=f"DuckDB file (default {DEFAULT_DUCKDB_PATH})")
    parser.add_argument("--dataset", help=f"raw dataset/schema name (default {DEFAULT_DATASET})")
    parser.add_argument("--resources", help=f"comma-separated subset of: {','.join(RESOURCE_NAMES)}")
    parser.add_argument("--shops", help="comma-separated shop ids (default: every shop the credentials see)")
    parser.add_argument("--start-date", help="first run reads records updated from this date (ISO 8601)")
    parser.add_argument("--end-date", help="bound a backfill: nothing updated after this is read")
    parser.add_argument("--full-refresh", action="store_true", help="drop the selected tables and their cursors, then reload everything")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.add_argument("--no-dbt", action="store_true", help="do not run dbt after the load")
    parser.add_argument("--reconcile-deletes", action="store_true", help="after the load, list every id at the source and mark rows deleted there (_autosync_deleted_at); scheduled runs do it every [autosync] reconcile_deletes_every_hours (default 24)")
    parser.add_argument("--pipelines-dir", help="where dlt keeps pipeline state (default ~/.dlt/pipelines, or DLT_DATA_DIR)")
    parser.add_argument("--pipeline-name", default=PIPELINE_NAME, help=argparse.SUPPRESS)
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    started = time.monotonic()
    try:
        if args.demo:
            return _run_demo(args, started)
        return _run(args, started)
    except KeyboardInterrupt:
        print("interrupted: nothing was committed by the interrupted step", file=sys.stderr)
        return 130


def _run_demo(args: argparse.Namespace, started: float) -> int:
    from autosync_emulator import Emulator

    logger.info("starting the AutoSync emulator (seed %s, %s shops, %s work orders per shop)", DEMO_WORLD["seed"], DEMO_WORLD["shops"], DEMO_WORLD["work_orders"])
    with Emulator(**DEMO_WORLD) as emulator:
        args.base_url = args.base_url or emulator.base_url
        args.api_key = args.api_key or emulator.api_key
        args.destination = args.destination or "duckdb"
        if args.pipeline_name == PIPELINE_NAME:
            # The demo's cursors must never be mistaken for a real account's (same shop ids).
            args.pipeline_name = DEMO_PIPELINE_NAME
        return _run(args, started, demo=True)


def _run(args: argparse.Namespace, started: float, demo: bool = False) -> int:
    stats = RequestStats()
    pipeline = None
    try:
        pipeline = _pipeline(args)
        source = autosync_source(**_source_arguments(args), request_stats=stats)
        logger.info("syncing into %s, dataset %s", pipeline.destination.destination_name, pipeline.dataset_name)
        refresh = "drop_resources" if args.full_refresh else None
        _finish_interrupted_run(pipeline)
        schema_before = columns_snapshot(pipeline)
        load_info = pipeline.run(source, refresh=refresh)
        changes = schema_changes(schema_before, pipeline)
    except Exception as failure:  # every path ends in one message and an exit code
        return _report_failure(failure, pipeline, args, stats, started)

    summary = _summary(pipeline, load_info, stats, started)
    summary["schema_changes"] = changes
    for change in changes:
        logger.warning("schema change: %s", describe_schema_change(change))
    try:
        reconciliation = _reconcile_deletes(pipeline, args)
    except Exception as failure:
        message = str(_autosync_error_in(failure) or f"{type(failure).__name__}: {_short_reason(failure)}")
        print(f"error: the delete reconciliation failed (the load itself is committed): {message}", file=sys.stderr)
        if args.json:
            print(json.dumps({**summary, "status": "failed", "error": message}, default=str))
        return 2
    if reconciliation is not None:
        summary["reconciliation"] = reconciliation
    exit_code = 0
    if not args.no_dbt:
        summary["dbt"], exit_code = _run_dbt(pipeline)
    summary["duration_seconds"] = round(time.monotonic() - started, 2)
    _print_summary(summary, args.json)
    if demo and exit_code == 0 and not args.no_dbt:
        from pipelines.dbt_runner import preview_marts

        try:
            preview = preview_marts(pipeline)
        except Exception as failure:
            print(f"error: the marts were built but could not be previewed: {_short_reason(failure)}", file=sys.stderr)
            return EXIT_DBT_FAILED
        print(preview, file=sys.stderr if args.json else sys.stdout)
    return exit_code


def _pipeline(args: argparse.Namespace) -> dlt.Pipeline:
    # Flags win over [autosync] in .dlt/config.toml (or AUTOSYNC__DESTINATION etc. in the env).
    destination_name = args.destination or dlt.config.get("autosync.destination", str) or "duckdb"
    if destination_name == "duckdb":
        path = args.duckdb_path or dlt.config.get("autosync.duckdb_path", str) or DEFAULT_DUCKDB_PATH
        destination: Any = duckdb_destination(str(Path(path).resolve()))
    elif destination_name == "postgres":
        destination = dlt.destinations.postgres()  # DESTINATION__POSTGRES__CREDENTIALS or secrets.toml
    elif destination_name == "bigquery":
        from pipelines.bigquery_destination import bigquery_destination

        destination = bigquery_destination()  # DESTINATION__BIGQUERY__CREDENTIALS__* or secrets.toml
    else:
        raise AutosyncError(f"Unknown destination '{destination_name}': use duckdb, postgres or bigquery.")
    dataset = args.dataset or dlt.config.get("autosync.dataset", str) or DEFAULT_DATASET
    kwargs: Dict[str, Any] = {}
    if args.pipelines_dir:
        kwargs["pipelines_dir"] = args.pipelines_dir
    return dlt.pipeline(
        pipeline_name=args.pipeline_name,
        destination=destination,
        dataset_name=dataset,
        # Progress on stderr (stdout carries only the summary, which --json keeps parseable).
        progress=LogCollector(log_period=5.0, logger=sys.stderr, dump_system_stats=False),
        **kwargs,
    )


def duckdb_destination(path: str) -> Any:
    """DuckDB, loading parquet files: dlt's default for DuckDB (insert_values) made the load the
    largest cost of a sync and its memory grow with the world (benchmarks/README.md)."""
    return dlt.destinations.duckdb(path, preferred_loader_file_format="parquet")


def _source_arguments(args: argparse.Namespace) -> Dict[str, Any]:
    """Only what was given on the command line: the rest comes from dlt config and secrets."""
    given: Dict[str, Any] = {}
    if args.base_url:
        given["base_url"] = args.base_url
    if args.api_key:
        given["api_key"] = args.api_key
    if args.resources:
        given["resources"] = [name.strip() for name in args.resources.split(",") if name.strip()]
    if args.shops:
        try:
            given["shops"] = [int(shop) for shop in args.shops.split(",") if shop.strip()]
        except ValueError:
            raise AutosyncError(f"--shops takes comma-separated shop ids, not '{args.shops}'.") from None
    if args.start_date:
        given["start_date"] = args.start_date
    if args.end_date:
        given["end_date"] = args.end_date
    return given


def _finish_interrupted_run(pipeline: dlt.Pipeline) -> None:
    """Deal with what a killed run left behind, before this run extracts anything.

    dlt's `run()` loads pending packages and then returns without extracting: a run after a
    crash would report success having synced nothing new. So pending packages are handled
    here first:
    - not yet loading (killed in extract's end or in normalize): normalized and loaded; their
      rows and cursors are what the killed run read;
    - killed while loading: not resumed. A job whose insert committed but whose completion
      was not recorded runs again on resume, its rows land twice in the staging table with
      the same _dlt_id, and dlt's merge (which picks rows by _dlt_id) then inserts both. So
      the local working state is dropped and this run starts from the state the destination
      committed with its last complete load (dlt restores it), re-reading what the killed run
      read. Rows a partial merge already wrote are merged again by key: no duplicates.
    """
    for load_id in pipeline.list_normalized_load_packages():
        jobs = pipeline.get_load_package_info(load_id).jobs
        if any(jobs.get(state) for state in ("started_jobs", "completed_jobs", "failed_jobs")):
            logger.warning(
                "the previous run was interrupted while loading package %s; it is dropped and this "
                "run starts from what the destination committed", load_id,
            )
            pipeline.drop()
            return
    if pipeline.list_extracted_load_packages():
        logger.info("normalizing the package an interrupted run left behind")
        pipeline.normalize()
    if pipeline.list_normalized_load_packages():
        logger.info("loading the package an interrupted run left behind")
        pipeline.load()


def _reconcile_deletes(pipeline: dlt.Pipeline, args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    """Run the delete reconciliation when forced or due; its summary, or None when skipped."""
    every_hours = dlt.config.get("autosync.reconcile_deletes_every_hours", float)
    every_hours = DEFAULT_RECONCILE_EVERY_HOURS if every_hours is None else every_hours
    if not args.reconcile_deletes and not reconciliation_due(pipeline, every_hours):
        return None
    given = {k: v for k, v in _source_arguments(args).items() if k in ("base_url", "api_key", "resources", "shops")}
    logger.info("reconciling deletes (listing every id at the source)")
    report = reconcile_deletes(pipeline, **given)
    return report.as_dict()


def _report_failure(
    failure: BaseException,
    pipeline: Optional[dlt.Pipeline],
    args: argparse.Namespace,
    stats: RequestStats,
    started: float,
) -> int:
    known = _autosync_error_in(failure)
    step = getattr(failure, "step", None)
    missing = _missing_configuration_in(failure)
    if known is None and missing is not None:
        spec, fields = missing
        where = "destination" if "Client" in spec or "Credentials" in spec else "configuration"
        error_type = DestinationError if where == "destination" else AutosyncError
        known = error_type(
            f"Missing {where} setting(s) {', '.join(fields)} ({spec}). Put them in .dlt/secrets.toml "
            "or environment variables (see .dlt/example.secrets.toml), then run again."
        )
    if known is None and step == "load" and pipeline is not None:
        known = DestinationError(
            f"The destination {pipeline.destination.destination_name} refused or could not be "
            f"reached: {_short_reason(failure)}. Nothing was committed and no cursor moved; check "
            f"it is up and its credentials ({_credentials_hint(pipeline)}), then run again."
        )
    if step == "load" and pipeline is not None:
        # dlt keeps the failed package to retry it and has already saved the advanced cursors
        # locally. Drop both, so the next run starts from the state the destination committed
        # (restored from it) and re-reads exactly what this run could not load.
        try:
            pipeline.drop()
        except Exception:  # the message below matters more than the clean-up
            logger.debug("could not drop the failed package", exc_info=True)
    if known is None and pipeline is not None and step in (None, "sync") and _looks_like_destination(failure):
        known = DestinationError(
            f"The destination {pipeline.destination.destination_name} could not be reached: "
            f"{_short_reason(failure)}. Nothing was loaded; check it is up and its credentials "
            f"({_credentials_hint(pipeline)})."
        )
    if known is None:
        known = AutosyncError(f"The sync failed unexpectedly: {type(failure).__name__}: {_short_reason(failure)}")
        logger.debug("unexpected failure", exc_info=failure)
    message = str(known)
    print(f"error: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps({"status": "failed", "error": message, "requests": stats.as_dict(),
                          "duration_seconds": round(time.monotonic() - started, 2)}))
    return known.exit_code


def _autosync_error_in(failure: BaseException) -> Optional[AutosyncError]:
    seen = set()
    current: Optional[BaseException] = failure
    while current is not None and id(current) not in seen:
        if isinstance(current, AutosyncError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _missing_configuration_in(failure: BaseException) -> Optional[tuple]:
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    current: Optional[BaseException] = failure
    while current is not None:
        if isinstance(current, ConfigFieldMissingException):
            return current.spec_name, list(current.fields)
        current = current.__cause__ or current.__context__
    return None


def _looks_like_destination(failure: BaseException) -> bool:
    from dlt.destinations.exceptions import DestinationTerminalException, DestinationTransientException

    current: Optional[BaseException] = failure
    while current is not None:
        if isinstance(current, (DestinationTerminalException, DestinationTransientException)):
            return True
        module = type(current).__module__
        if module.startswith(("psycopg2", "duckdb", "google")):
            return True
        current = current.__cause__ or current.__context__
    return False


def _short_reason(failure: BaseException) -> str:
    root: BaseException = failure
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    text = str(root).strip().splitlines()
    return text[0][:300] if text else type(root).__name__


def _credentials_hint(pipeline: dlt.Pipeline) -> str:
    name = pipeline.destination.destination_name
    if name == "postgres":
        return "DESTINATION__POSTGRES__CREDENTIALS"
    if name == "bigquery":
        return "DESTINATION__BIGQUERY__CREDENTIALS__*"
    return "--duckdb-path"


def _summary(pipeline: dlt.Pipeline, load_info: Any, stats: RequestStats, started: float) -> Dict[str, Any]:
    trace = pipeline.last_trace
    row_counts: Dict[str, int] = {}
    if trace is not None and trace.last_normalize_info is not None:
        row_counts = {
            table: count
            for table, count in sorted(trace.last_normalize_info.row_counts.items())
            if not table.startswith("_dlt")
        }
    counts = stats.as_dict()
    return {
        "status": "ok",
        "destination": pipeline.destination.destination_name,
        "dataset": pipeline.dataset_name,
        "load_ids": list(getattr(load_info, "loads_ids", []) or []),
        "rows": row_counts,
        "rows_total": sum(row_counts.values()),
        "requests": counts["requests"],
        "rate_limited_429": counts["rate_limited"],
        "retries": counts["retries"],
        "tokens_fetched": counts["tokens_fetched"],
        "requests_by_resource": counts["by_resource"],
        "api_quirks": counts["api_quirks"],
        "duration_seconds": round(time.monotonic() - started, 2),
    }


def _run_dbt(pipeline: dlt.Pipeline) -> tuple:
    try:
        from pipelines.dbt_runner import run_dbt  # lazy: dbt is heavy and optional per run
    except ImportError as missing:
        print(f"error: dbt could not start ({missing}); the load itself is committed. Use --no-dbt to skip dbt.", file=sys.stderr)
        return {"success": False, "error": str(missing)}, EXIT_DBT_FAILED
    logger.info("running dbt build")
    try:
        result = run_dbt(pipeline)
    except Exception as failure:
        print(f"error: dbt failed: {failure} (the load itself is committed)", file=sys.stderr)
        return {"success": False, "error": str(failure)}, EXIT_DBT_FAILED
    success = bool(getattr(result, "success", False))
    outcome = {"success": success, "summary": str(getattr(result, "summary", "") or "")}
    if not success:
        print(f"error: dbt build failed: {outcome['summary']} (the load itself is committed)", file=sys.stderr)
        return outcome, EXIT_DBT_FAILED
    return outcome, 0


def _print_summary(summary: Dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    lines: List[str] = [
        f"Loaded into {summary['destination']} dataset {summary['dataset']} in {summary['duration_seconds']}s",
        f"  requests: {summary['requests']}  (429s met: {summary['rate_limited_429']}, retries: {summary['retries']})",
        "  rows per table:",
    ]
    if summary["rows"]:
        width = max(len(table) for table in summary["rows"])
        lines += [f"    {table.ljust(width)}  {count}" for table, count in summary["rows"].items()]
    else:
        lines.append("    (nothing changed since the last sync)")
    for change in summary.get("schema_changes") or []:
        lines.append(f"  schema change: {describe_schema_change(change)}")
    if "reconciliation" in summary:
        rec = summary["reconciliation"]
        lines.append(
            f"  deletes reconciled: {sum(rec['marked_deleted'].values())} marked deleted, "
            f"{sum(rec['restored'].values())} restored, {rec['requests']} requests"
        )
    if "dbt" in summary:
        lines.append(f"  dbt: {'ok' if summary['dbt'].get('success') else 'FAILED'} {summary['dbt'].get('summary', '')}".rstrip())
    print("\n".join(lines))


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (main() may run many times in one process)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _configure_logging(verbose: bool) -> None:
    root = logging.getLogger()
    if not any(isinstance(handler, _CurrentStderrHandler) for handler in root.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("urllib3", "dlt", "uvicorn", "uvicorn.access", "airflow"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


if __name__ == "__main__":
    sys.exit(main())

"""The owner's report: one self-contained HTML page of the marts, readable in a minute.

    python pipelines/report.py                                    # warehouse.duckdb -> autosync-report.html
    python pipelines/report.py --duckdb-path demo.duckdb --shops 1,2 --output shops.html
    python pipelines/report.py --destination postgres --as-of 2025-05-31 --weeks 8 --months 6

The warehouse is configured as for pipelines/run.py: flags, then `[autosync]` destination /
duckdb_path / dataset in .dlt/config.toml or AUTOSYNC__* variables, and
DESTINATION__POSTGRES__CREDENTIALS for Postgres. The page (headline figures, trends, follow-up
lists, data freshness, per shop and for all shops) inlines plotly.js: it opens offline, and reads on a
phone as on a desktop.
Needs the report extra: pip install -e ".[report]".

Exit codes: 0 written, 2 bad arguments or configuration (destination, credentials), 3 warehouse
unreachable, not built yet or without the shops asked for.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

if __package__ in (None, ""):
    # `python pipelines/report.py` puts pipelines/ on sys.path, not the project root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.report_warehouse import (  # noqa: E402
    DEFAULT_MODEL_SCHEMA, DEFAULT_RAW_DATASET, Warehouse, WarehouseConfigurationError, WarehouseError)

DEFAULT_OUTPUT = "autosync-report.html"
EXIT_CONFIGURATION, EXIT_WAREHOUSE = 2, 3


class ReportError(RuntimeError):
    def __init__(self, message: str, exit_code: int = EXIT_CONFIGURATION):
        super().__init__(message)
        self.exit_code = exit_code


def build_parser(prog: str = "pipelines/report.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog,
                                     description="Write the owner's report (one HTML file) from the warehouse's marts.")
    parser.add_argument("--destination", choices=("duckdb", "postgres"), help="default: [autosync] destination, else duckdb")
    parser.add_argument("--duckdb-path", help="DuckDB file (default: [autosync] duckdb_path, else warehouse.duckdb)")
    parser.add_argument("--schema", help=f"schema dbt builds the marts into (default $AUTOSYNC_DBT_SCHEMA or {DEFAULT_MODEL_SCHEMA})")
    parser.add_argument("--dataset", help="raw dataset the pipeline loads, for data freshness "
                        f"(default [autosync] dataset or {DEFAULT_RAW_DATASET})")
    parser.add_argument("--shops", help="comma-separated shop ids (default: every shop in the warehouse)")
    parser.add_argument("--weeks", type=int, default=12, help="weekly trends cover this many weeks (default 12)")
    parser.add_argument("--months", type=int, default=12, help="monthly trends and headline figures cover this many months (default 12)")
    parser.add_argument("--as-of", help="the one date the page is as of, YYYY-MM-DD; receivables are aged on it (default: the day "
                        "the marts were built for, dbt var as_of_date, else the last day with an invoice)")
    parser.add_argument("--output", "-o", default=DEFAULT_OUTPUT, help=f"HTML file to write (default {DEFAULT_OUTPUT})")
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: str = "pipelines/report.py") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        path = write_report(
            output=args.output, destination=args.destination, duckdb_path=args.duckdb_path, schema=args.schema,
            dataset=args.dataset, shops=_shop_ids(args.shops), weeks=args.weeks, months=args.months,
            as_of=_as_of(args.as_of))
    except ReportError as failure:
        print(f"error: {failure}", file=sys.stderr)
        return failure.exit_code
    print(path)
    return 0


def write_report(output: str | os.PathLike = DEFAULT_OUTPUT, *, destination: Optional[str] = None,
                 duckdb_path: Optional[str] = None, schema: Optional[str] = None, dataset: Optional[str] = None,
                 shops: Optional[Sequence[int]] = None, weeks: int = 12, months: int = 12,
                 as_of: Optional[dt.date] = None) -> Path:
    """Read the marts and write the report; returns the file's absolute path. Raises ReportError."""
    import dlt

    if not 1 <= weeks <= 260 or not 1 <= months <= 120:
        raise ReportError(f"--weeks must be 1-260 and --months 1-120 (got {weeks} and {months})")
    try:
        from pipelines import report_data, report_render
    except ImportError as missing:
        raise ReportError(f'the report needs the report extra ({missing.name} is missing): pip install -e ".[report]"') from None
    schema = schema or os.environ.get("AUTOSYNC_DBT_SCHEMA") or DEFAULT_MODEL_SCHEMA
    dataset = dataset or dlt.config.get("autosync.dataset", str) or DEFAULT_RAW_DATASET
    try:
        with Warehouse.connect(destination, duckdb_path) as warehouse:
            data = report_data.collect(warehouse, schema, dataset, shops, weeks, months, as_of)
    except WarehouseConfigurationError as failure:
        raise ReportError(str(failure), EXIT_CONFIGURATION) from None
    except WarehouseError as failure:
        raise ReportError(str(failure), EXIT_WAREHOUSE) from None
    except LookupError as failure:
        raise ReportError(str(failure.args[0]), EXIT_WAREHOUSE) from None
    html = report_render.render(data)
    path = Path(output).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(path)  # a reader never sees half a page
    return path


def report_for_pipeline(pipeline: Any, output: str | os.PathLike = DEFAULT_OUTPUT) -> str:
    """Write the report of the warehouse a dlt pipeline loads (run.py --demo ends with it); one
    line to show the user: where the page is, or why it could not be written (the sync and the
    marts it follows are committed either way, so this never fails the run)."""
    destination = pipeline.destination.destination_name
    duckdb_path = None
    if destination == "duckdb":
        duckdb_path = pipeline.destination_client().config.credentials.database
    try:
        path = write_report(output, destination=destination, duckdb_path=duckdb_path, dataset=pipeline.dataset_name)
    except ReportError as failure:
        return f"The owner's report was not written: {failure}"
    return f"The owner's report: {path} (open it in a browser; python pipelines/report.py --help for more)"


def _shop_ids(text: Optional[str]) -> Optional[list[int]]:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ReportError(f"--shops takes comma-separated shop ids, like 1,2, not {text!r}") from None


def _as_of(text: Optional[str]) -> Optional[dt.date]:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"--as-of takes a date like 2025-05-31, not {text!r}") from None


if __name__ == "__main__":
    sys.exit(main())

"""Run the project's dbt models on the warehouse a dlt pipeline just loaded.

dbt runs in-process through `dbt.cli.main.dbtRunner` rather than dlt's dbt runner: dlt's runner
starts `python` from PATH in a subprocess and its built-in DuckDB profile asks for the httpfs
extension, whose download hangs offline; in-process it is also about 3x faster. The project ships
its own `dbt_project/profiles.yml`; this module only fills in the environment variables it reads
(target, DuckDB path, Postgres connection, model schema) and the `raw_schema` var, so dbt reads
exactly the dataset the pipeline loaded.

    from pipelines.dbt_runner import run_dbt, preview_marts
    result = run_dbt(pipeline)            # dbt build; raises DbtRunError naming failing nodes
    print(preview_marts(pipeline))
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
DEFAULT_MODEL_SCHEMA = "autosync"
MAIN_MARTS = ("fct_revenue_daily", "fct_technician_throughput_weekly", "fct_inspection_approval_monthly")
SUPPORTED_TARGETS = ("duckdb", "postgres", "bigquery")  # dlt destination names

# dbt node statuses that mean the build did not do what was asked.
_FAILED_STATUSES = {"error", "fail", "runtime error"}


class DbtRunError(RuntimeError):
    """dbt ran but did not succeed; `failures` lists (node, status, message) of the failing nodes."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str, str]] = (), result: "DbtRunResult | None" = None):
        super().__init__(message)
        self.failures = list(failures)
        self.result = result


class DbtConfigurationError(ValueError):
    """The pipeline's destination cannot be mapped to a dbt target of this project."""


@dataclass
class DbtTarget:
    """Where dbt runs: a target of dbt_project/profiles.yml plus the environment it reads."""

    name: str
    raw_schema: str
    model_schema: str = DEFAULT_MODEL_SCHEMA
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold a password: never shown
    work_dir: str | None = None  # dbt's target/ and logs/ go here (default: a fresh temp dir)

    @property
    def profile_env(self) -> dict[str, str]:
        """The environment variables dbt_project/profiles.yml reads for this target."""
        return {"AUTOSYNC_DBT_TARGET": self.name, "AUTOSYNC_DBT_SCHEMA": self.model_schema, **self.env}

    @classmethod
    def duckdb(cls, path: str | os.PathLike, raw_schema: str, model_schema: str = DEFAULT_MODEL_SCHEMA,
               work_dir: str | None = None) -> "DbtTarget":
        return cls("duckdb", raw_schema, model_schema, {"AUTOSYNC_DUCKDB_PATH": str(Path(path).resolve())}, work_dir)

    @classmethod
    def postgres(cls, raw_schema: str, model_schema: str = DEFAULT_MODEL_SCHEMA, host: str = "127.0.0.1",
                 port: int = 5432, user: str = "postgres", password: str | None = None, database: str = "test",
                 work_dir: str | None = None) -> "DbtTarget":
        env = {"AUTOSYNC_PG_HOST": host, "AUTOSYNC_PG_PORT": str(port), "AUTOSYNC_PG_USER": user,
               "AUTOSYNC_PG_DATABASE": database,
               # the DBT_ENV_SECRET_ prefix makes dbt scrub the value from its logs and errors
               "DBT_ENV_SECRET_AUTOSYNC_PG_PASSWORD": password or ""}
        return cls("postgres", raw_schema, model_schema, env, work_dir)

    @classmethod
    def bigquery(cls, raw_schema: str, project: str, keyfile: str, model_schema: str = DEFAULT_MODEL_SCHEMA,
                 location: str | None = None, work_dir: str | None = None) -> "DbtTarget":
        env = {"AUTOSYNC_BIGQUERY_PROJECT": project, "AUTOSYNC_BIGQUERY_KEYFILE": str(keyfile)}
        if location:
            env["AUTOSYNC_BIGQUERY_LOCATION"] = location
        return cls("bigquery", raw_schema, model_schema, env, work_dir)

    @classmethod
    def bigquery_service_account(cls, raw_schema: str, project: str, client_email: str, private_key: str,
                                 private_key_id: str | None = None, model_schema: str = DEFAULT_MODEL_SCHEMA,
                                 location: str | None = None, work_dir: str | None = None) -> "DbtTarget":
        """BigQuery with the key itself (e.g. from dlt's credentials), passed in the environment."""
        env = {"AUTOSYNC_BIGQUERY_PROJECT": project, "AUTOSYNC_BIGQUERY_CLIENT_EMAIL": client_email,
               "AUTOSYNC_BIGQUERY_PRIVATE_KEY_ID": private_key_id or "",
               "DBT_ENV_SECRET_AUTOSYNC_BIGQUERY_PRIVATE_KEY": private_key}
        if location:
            env["AUTOSYNC_BIGQUERY_LOCATION"] = location
        return cls("bigquery_json", raw_schema, model_schema, env, work_dir)

    @classmethod
    def bigquery_token(cls, raw_schema: str, project: str, token: str, model_schema: str = DEFAULT_MODEL_SCHEMA,
                       location: str | None = None, work_dir: str | None = None) -> "DbtTarget":
        """BigQuery with an OAuth access token (pipelines/bigquery_destination.py), used until it expires."""
        env = {"AUTOSYNC_BIGQUERY_PROJECT": project, "DBT_ENV_SECRET_AUTOSYNC_BIGQUERY_TOKEN": token}
        if location:
            env["AUTOSYNC_BIGQUERY_LOCATION"] = location
        return cls("bigquery_token", raw_schema, model_schema, env, work_dir)


@dataclass
class DbtRunResult:
    success: bool
    command: str
    target: str
    elapsed_seconds: float
    counts: dict[str, int]
    failures: list[tuple[str, str, str]]
    dbt_result: Any = None  # dbt's own dbtRunnerResult, for callers that need node details

    @property
    def summary(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts.items())) or "nothing to do"
        state = "ok" if self.success else "FAILED"
        return f"dbt {self.command} on {self.target}: {state} ({counts}) in {self.elapsed_seconds:.1f}s"

    def __str__(self) -> str:
        return self.summary


# ----------------------------------------------------------------------------------------------
def target_for_pipeline(pipeline: Any, model_schema: str | None = None) -> DbtTarget:
    """The dbt target for a dlt pipeline's destination and dataset."""
    destination = getattr(pipeline, "destination", None)
    if destination is None:
        raise DbtConfigurationError("the pipeline has no destination: create it with destination=duckdb/postgres/bigquery")
    name = destination.destination_name
    if name not in SUPPORTED_TARGETS:
        raise DbtConfigurationError(
            f"dbt models run on {', '.join(SUPPORTED_TARGETS)}; the pipeline's destination is {name!r}")
    schema = model_schema or os.environ.get("AUTOSYNC_DBT_SCHEMA") or DEFAULT_MODEL_SCHEMA
    credentials = pipeline.destination_client().config.credentials
    work_dir = os.path.join(pipeline.working_dir, "dbt")
    if name == "duckdb":
        return DbtTarget.duckdb(credentials.database, pipeline.dataset_name, schema, work_dir)
    if name == "postgres":
        return DbtTarget.postgres(pipeline.dataset_name, schema, host=credentials.host, port=credentials.port or 5432,
                                  user=credentials.username, password=credentials.password,
                                  database=credentials.database, work_dir=work_dir)
    location = getattr(pipeline.destination_client().config, "location", None)
    token = _access_token_of(credentials)
    if token:  # the credential the load just used, before any key file the environment names
        return DbtTarget.bigquery_token(pipeline.dataset_name, credentials.project_id, token, schema, location, work_dir)
    keyfile = os.environ.get("AUTOSYNC_BIGQUERY_KEYFILE") or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if keyfile:
        return DbtTarget.bigquery(pipeline.dataset_name, credentials.project_id, keyfile, schema, location, work_dir)
    if getattr(credentials, "private_key", None):
        return DbtTarget.bigquery_service_account(
            pipeline.dataset_name, credentials.project_id, credentials.client_email, credentials.private_key,
            getattr(credentials, "private_key_id", None), schema, location, work_dir)
    raise DbtConfigurationError(
        "dbt on BigQuery needs a service account or an access token: give the pipeline service-account "
        "credentials (private_key, client_email, project_id), set AUTOSYNC_BIGQUERY_KEYFILE to a key "
        "file, or set DESTINATION__BIGQUERY__CREDENTIALS__TOKEN and __PROJECT_ID")


def _access_token_of(credentials: Any) -> str | None:
    """The static access token of OAuth credentials without a refresh token (dlt's OAuth client
    flow, with a refresh token, is not something dbt's profile can follow), else None."""
    if getattr(credentials, "refresh_token", None):
        return None
    token = getattr(credentials, "token", None)
    return str(token) if token else None


@contextlib.contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (None: unset) environment variables inside the block, and put back what was there.

    dbt's env_var() reads os.environ: invoke_dbt sets a target's values for one invocation only
    (dbtRunner is in-process and not thread-safe, so this is not made concurrent either)."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def dbt_command(target: DbtTarget, command: str = "build", extra_args: Sequence[str] | None = None,
                quiet: bool = True) -> tuple[list[str], dict[str, str]]:
    """The arguments and environment of `dbt <command>` on `target`: what invoke_dbt runs in-process,
    for a caller that runs dbt in a process of its own."""
    work_dir = target.work_dir or tempfile.mkdtemp(prefix="autosync-dbt-")
    os.makedirs(work_dir, exist_ok=True)
    extra_args, given_vars = _split_vars(list(extra_args or ()))
    args = command.split() + [
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target", target.name,
        "--target-path", os.path.join(work_dir, "target"),
        "--vars", json.dumps({"raw_schema": target.raw_schema, **given_vars}),
    ]
    global_flags = ["--log-path", os.path.join(work_dir, "logs"), "--no-use-colors", "--no-send-anonymous-usage-stats"]
    if quiet:
        global_flags.append("--quiet")
    env = {**target.profile_env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    return global_flags + args + extra_args, env


def invoke_dbt(target: DbtTarget, command: str = "build", extra_args: Sequence[str] | None = None,
               quiet: bool = True, raise_on_failure: bool = True) -> DbtRunResult:
    """Run one dbt command in-process against `target`."""
    from dbt.cli.main import dbtRunner

    args, env = dbt_command(target, command, extra_args, quiet)
    started = time.monotonic()
    with environment(env):
        try:
            outcome = dbtRunner().invoke(args)
        finally:
            if target.name == "duckdb":
                _release_duckdb_file()
    elapsed = time.monotonic() - started

    counts: dict[str, int] = {}
    failures: list[tuple[str, str, str]] = []
    for node_result in _node_results(outcome):
        status = str(getattr(node_result.status, "value", node_result.status))
        counts[status] = counts.get(status, 0) + 1
        if status in _FAILED_STATUSES:
            node = getattr(node_result, "node", None)
            node_id = getattr(node, "unique_id", None) or getattr(node_result, "unique_id", "?")
            failures.append((node_id, status, (node_result.message or "").strip()[:500]))
    result = DbtRunResult(bool(outcome.success), command, target.name, elapsed, counts, failures, outcome)

    if not outcome.success and raise_on_failure:
        if failures:
            listed = "\n".join(f"  - {node} ({status}): {message}" for node, status, message in failures[:20])
            more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
            raise DbtRunError(f"{result.summary}; failing nodes:\n{listed}{more}", failures, result)
        reason = outcome.exception or "see the dbt output above"
        raise DbtRunError(f"{result.summary}: dbt could not run: {reason}", failures, result)
    return result


def _split_vars(extra_args: list[str]) -> tuple[list[str], dict[str, Any]]:
    # dbt keeps only the last --vars it is given: a caller's --vars would silently drop the
    # raw_schema this module sets, so merge them into one (the caller's keys win).
    import yaml

    rest, given = [], {}
    iterator = iter(extra_args)
    for arg in iterator:
        if arg == "--vars" or arg.startswith("--vars="):
            text = arg.split("=", 1)[1] if "=" in arg else next(iterator, "{}")
            parsed = yaml.safe_load(text) or {}
            if not isinstance(parsed, dict):
                raise DbtConfigurationError(f"--vars must be a mapping, got {text!r}")
            given.update(parsed)
        else:
            rest.append(arg)
    return rest, given


def _release_duckdb_file() -> None:
    # dbt-duckdb keeps its DuckDB connection open at class level after an in-process invocation.
    # Left open, the database file keeps that configuration: dlt's next load in this process, or a
    # read-only reader, then fails with "Can't open a connection to same database file with a
    # different configuration". Close it; the next dbt invocation simply opens it again.
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing was opened
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if environment is not None and hasattr(environment, "close"):
            environment.close()


def _node_results(outcome: Any) -> list[Any]:
    results = getattr(outcome.result, "results", None)
    return list(results) if results else []


def run_dbt(pipeline: Any, command: str = "build", extra_args: Sequence[str] | None = None, *,
            model_schema: str | None = None, quiet: bool = True, raise_on_failure: bool = True) -> DbtRunResult:
    """Run `dbt <command>` on the pipeline's destination, reading the pipeline's dataset.

    Models land in `model_schema` (default: $AUTOSYNC_DBT_SCHEMA or `autosync`). Raises
    DbtRunError (naming the failing nodes) when dbt fails, unless raise_on_failure=False."""
    target = target_for_pipeline(pipeline, model_schema)
    return invoke_dbt(target, command, extra_args, quiet=quiet, raise_on_failure=raise_on_failure)


# ----------------------------------------------------------------------------------------------
def fetch_mart(pipeline: Any, mart: str, limit: int | None = None, model_schema: str | None = None,
               order_by: str | None = None, columns: Sequence[str] | None = None) -> tuple[list[str], list[tuple]]:
    """Column names and rows of a mart, read through the pipeline's own SQL client."""
    schema = model_schema or os.environ.get("AUTOSYNC_DBT_SCHEMA") or DEFAULT_MODEL_SCHEMA
    selected = ", ".join(columns) if columns else "*"
    query = f"select {selected} from {_qualified_schema(pipeline, schema)}.{mart}"
    if order_by:
        query += f" order by {order_by}"
    if limit is not None:
        query += f" limit {int(limit)}"
    with pipeline.sql_client() as client:
        with client.execute_query(query) as cursor:
            columns = [d[0] for d in cursor.description]
            return columns, [tuple(r) for r in cursor.fetchall()]


def _qualified_schema(pipeline: Any, schema: str) -> str:
    # DuckDB names the catalog after the file: in a file named autosync.duckdb, `autosync.<mart>` is ambiguous
    # between catalog and schema (a binder error). Qualify with the catalog there. A schema given
    # already qualified or quoted is used as it is.
    if "." in schema or '"' in schema or pipeline.destination.destination_name != "duckdb":
        return schema
    with pipeline.sql_client() as client:
        catalog = client.execute_sql("select current_database()")[0][0]
    return f'"{catalog}"."{schema}"'


_PREVIEW_ORDER = {
    "fct_revenue_daily": "date desc, shop_id",
    "fct_technician_throughput_weekly": "week_start desc, shop_id, technician_id",
    "fct_inspection_approval_monthly": "month_start desc, shop_id, technician_id",
}
# The columns that answer each mart's question, so a preview fits a terminal; all_columns=True shows all.
_PREVIEW_COLUMNS = {
    "fct_revenue_daily": ("shop_id", "date", "work_orders_invoiced", "invoiced_revenue", "invoiced_total",
                          "average_repair_order", "parts_gross_profit", "payments_collected", "refunds",
                          "net_collected"),
    "fct_technician_throughput_weekly": ("shop_id", "week_start", "technician_id", "technician_name",
                                         "work_orders_completed", "jobs_completed", "billed_labor_hours",
                                         "labor_revenue", "avg_cycle_time_hours"),
    "fct_inspection_approval_monthly": ("shop_id", "month_start", "technician_id", "inspections_sent",
                                        "items_recommended", "items_approved", "item_approval_rate",
                                        "red_item_approval_rate", "dollar_approval_rate"),
}


def preview_marts(pipeline: Any, limit: int = 5, model_schema: str | None = None, all_columns: bool = False) -> str:
    """The latest few rows of each of the three main marts, as plain text tables."""
    blocks = []
    for mart in MAIN_MARTS:
        columns, rows = fetch_mart(pipeline, mart, limit, model_schema, _PREVIEW_ORDER[mart],
                                   None if all_columns else _PREVIEW_COLUMNS[mart])
        blocks.append(format_table(mart, columns, rows))
    return "\n\n".join(blocks)


def format_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.rjust(w) for v, w in zip(values, widths))  # noqa: E731
    out = [f"{title} ({len(rows)} rows shown)", line(list(columns)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells] or ["(no rows)"]
    return "\n".join(out)

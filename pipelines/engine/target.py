"""Where a sync lands (`Target`) and where its state lives: one working directory per target,
one pipeline per (API, shop) inside it (`state_home`)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional
from urllib.parse import urlparse

import dlt

from autosync_source.auth import key_environment
from autosync_source.settings import BASE_URLS, DEFAULT_DATASET, ENVIRONMENT_HOSTS
from pipelines.engine.errors import SyncFailed

DEFAULT_DUCKDB_PATH = "warehouse.duckdb"
DESTINATIONS = ("duckdb", "postgres", "bigquery")


@dataclass(frozen=True)
class Target:
    """Where a sync lands. Unset fields come from dlt config (`[autosync] destination`, `dataset`,
    `duckdb_path`, `pipelines_dir`, or AUTOSYNC__... variables), then the defaults."""

    destination: Optional[str] = None  # duckdb, postgres or bigquery
    dataset: Optional[str] = None
    duckdb_path: Optional[str] = None
    pipelines_dir: Optional[str] = None  # the root; each target works in a directory of its own below it

    def resolved(self) -> "Target":
        destination = self.destination or dlt.config.get("autosync.destination", str) or "duckdb"
        if destination not in DESTINATIONS:
            raise SyncFailed(f"Unknown destination '{destination}': use duckdb, postgres or bigquery.",
                             category="configuration")
        duckdb_path = None
        if destination == "duckdb":
            path = self.duckdb_path or dlt.config.get("autosync.duckdb_path", str) or DEFAULT_DUCKDB_PATH
            duckdb_path = str(Path(path).expanduser().resolve())
        dataset = self.dataset or dlt.config.get("autosync.dataset", str) or DEFAULT_DATASET
        refuse_renamed_dataset(destination, dataset)
        return Target(
            destination=destination,
            dataset=dataset,
            duckdb_path=duckdb_path,
            pipelines_dir=str(Path(self.pipelines_dir or default_pipelines_dir()).expanduser().resolve()),
        )

    def location(self) -> str:
        """Which warehouse of its kind (never a secret): the DuckDB file, the Postgres
        host:port/database, the BigQuery project."""
        if self.destination == "duckdb":
            return str(self.duckdb_path)
        if self.destination == "postgres":
            try:
                from dlt.common.configuration import resolve_configuration
                from dlt.destinations.impl.postgres.configuration import PostgresCredentials

                credentials = resolve_configuration(PostgresCredentials(), sections=("destination", "postgres", "credentials"))
                return f"{credentials.host}:{credentials.port}/{credentials.database}"
            except Exception:  # unresolved: the load step will say what is missing
                return "postgres"
        project = dlt.secrets.get("destination.bigquery.credentials.project_id") or dlt.config.get("destination.bigquery.project_id")
        return str(project or "bigquery")

    def key(self) -> str:
        """The name of this target's working directory: readable, and unique per warehouse."""
        identity = "|".join([str(self.destination), self.location(), str(self.dataset)])
        digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
        return f"{self.destination}_{_slug(str(self.dataset))}_{digest}"

    def working_dir(self) -> str:
        return str(Path(str(self.pipelines_dir)) / self.key())

    def destination_factory(self, staging_layout: Optional[str] = None) -> Any:
        if self.destination == "duckdb":
            factory: Any = duckdb_destination(str(self.duckdb_path))
        elif self.destination == "postgres":
            factory = dlt.destinations.postgres()  # DESTINATION__POSTGRES__CREDENTIALS or secrets.toml
        else:
            from pipelines.bigquery_destination import bigquery_destination

            factory = bigquery_destination()  # DESTINATION__BIGQUERY__CREDENTIALS__* or secrets.toml
        if staging_layout and self.destination != "duckdb":
            # Factories keep explicit settings in config_params, read when the load step
            # resolves the destination configuration. Not on DuckDB: one process at a time can
            # write a DuckDB file, so shops never load into it at once, and a staging schema per
            # shop put a dozen tables per shop into the file's catalog, which DuckDB reads on every
            # connect (100 shops: 1,325 tables, a 449 MB file, each shop slower than the last).
            factory.config_params["staging_dataset_name_layout"] = staging_layout
        return factory

    def pipeline(self, pipeline_name: str, staging_layout: Optional[str] = None, progress: Any = None) -> dlt.Pipeline:
        """A dlt pipeline of this target (resolved first), in the target's working directory."""
        target = self.resolved()  # idempotent: paths absolute, defaults filled
        kwargs: Dict[str, Any] = {"progress": progress} if progress is not None else {}
        return dlt.pipeline(
            pipeline_name=pipeline_name,
            destination=target.destination_factory(staging_layout),
            dataset_name=target.dataset,
            pipelines_dir=target.working_dir(),
            **kwargs,
        )

    def describe(self) -> str:
        where = f" {self.duckdb_path}" if self.destination == "duckdb" else ""
        return f"{self.destination}{where} dataset {self.dataset}"


def refuse_renamed_dataset(destination: str, dataset: str) -> None:
    """A dataset name the warehouse cannot take as it is, refused before any request: dlt would
    quietly load into its normalized form ('UPPER Case' -> 'upper_case') while dbt's sources and a
    user's queries look for the name given, so the sync would commit where nothing reads it."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    normalized = NamingConvention().normalize_identifier(dataset)
    if normalized != dataset:
        raise SyncFailed(
            f"The dataset name '{dataset}' would be renamed to '{normalized}' in {destination} (names are lower "
            f"case letters, digits and underscores). Use --dataset {normalized} (or set [autosync] dataset), then run again.",
            category="configuration")


def duckdb_destination(path: str) -> Any:
    """DuckDB, loading parquet files: dlt's default for DuckDB (insert_values) made the load the
    largest cost of a sync and its memory grow with the world (benchmarks/README.md). Inside
    `one_duckdb_connection(path)` on the run's open connection (dlt hands each job a cursor of it)."""
    shared = _OPEN_DUCKDB.get(str(path))
    return dlt.destinations.duckdb(shared[0] if shared else path, preferred_loader_file_format="parquet")


# Path -> [connection, users]: the DuckDB files a run in this process holds open.
_OPEN_DUCKDB: Dict[str, list] = {}
_OPEN_DUCKDB_GUARD = threading.Lock()


@contextlib.contextmanager
def one_duckdb_connection(target: "Target") -> Iterator[None]:
    """While inside, every pipeline of this DuckDB file in this process works on one open
    connection instead of opening and closing the file per load job and per query. dlt's own pool
    opens the file on every job and closes it after (a checkpoint of the file each time): about 25
    opens a shop, 1.3 CPU-s of a shop's 2.4 (benchmarks/long_sync.py shops120). Nothing for
    Postgres and BigQuery. Closed when the last user leaves (dbt, which opens the file itself,
    runs after)."""
    if target.destination != "duckdb":
        yield
        return
    import duckdb

    path = str(target.duckdb_path)
    with _OPEN_DUCKDB_GUARD:
        if path in _OPEN_DUCKDB:
            _OPEN_DUCKDB[path][1] += 1
        else:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                connection = duckdb.connect(path)
                # DuckDB keeps every file it reads in its external file cache, here each shop's
                # parquet load files: held open for a run, that grew 1.7 MB a shop (2.5 GB at 1,000
                # shops; 60 shops: 381 MB with it, 267 MB without)
                connection.execute("SET enable_external_file_cache = false")
                _OPEN_DUCKDB[path] = [connection, 1]
            except Exception:  # the shops' loads, on dlt's own connections, say what is wrong (exit 3)
                pass
        shared = path in _OPEN_DUCKDB
    if not shared:
        yield
        return
    try:
        yield
    finally:
        with _OPEN_DUCKDB_GUARD:
            entry = _OPEN_DUCKDB[path]
            entry[1] -= 1
            if entry[1] == 0:
                del _OPEN_DUCKDB[path]
                entry[0].close()


def default_pipelines_dir() -> str:
    """`[autosync] pipelines_dir`, else DLT_DATA_DIR's pipelines dir, else `.dlt/pipelines` in the
    working directory (the project, next to `.dlt/config.toml`; git-ignored). Never dlt's
    default under the home directory: run as root that is one directory for every checkout on
    the machine, and one checkout's state would be another's."""
    configured = dlt.config.get("autosync.pipelines_dir", str)
    if configured:
        return configured
    if os.environ.get("DLT_DATA_DIR"):
        return str(Path(os.environ["DLT_DATA_DIR"]) / "pipelines")
    return str(Path.cwd() / ".dlt" / "pipelines")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")[:40] or "x"


def api_label(base_url: Optional[str] = None, api_key: Optional[str] = None, environment: Optional[str] = None) -> str:
    """Which API the cursors belong to: `sandbox`, `live`, or `api<hash>` for any other base URL
    (an emulator, a proxy). Values not given come from dlt config, as the source reads them."""
    base_url = base_url or dlt.config.get("sources.autosync.base_url", str)
    if base_url:
        host = urlparse(base_url).hostname or ""
        if host in ENVIRONMENT_HOSTS and base_url.rstrip("/") == BASE_URLS[ENVIRONMENT_HOSTS[host]]:
            return ENVIRONMENT_HOSTS[host]
        return "api" + hashlib.sha256(base_url.rstrip("/").encode()).hexdigest()[:8]
    api_key = api_key or dlt.secrets.get("sources.autosync.api_key", str)
    if api_key and key_environment(api_key):
        return str(key_environment(api_key))
    environment = environment or dlt.config.get("sources.autosync.environment", str)
    return environment if environment in BASE_URLS else "sandbox"


def state_home(label: str, shop_id: int, window: bool = False) -> str:
    """The pipeline name that holds one shop's cursors for one API (its home, in every door)."""
    return f"autosync_{label}_shop_{int(shop_id)}" + ("_window" if window else "")


def shop_staging_layout(shop_id: int) -> str:
    # dlt merges through staging tables it truncates at the start of each load: one per shop, so
    # two workers loading different shops into one dataset never empty each other's rows
    # (Postgres, BigQuery; DuckDB keeps dlt's one staging dataset: see destination_factory).
    return f"%s_staging_shop_{int(shop_id)}"

"""Read-only SQL access to the warehouse the pipeline loads, for the owner's report.

The report reads the same warehouse as `pipelines/run.py`, configured the same way (flags, then
`AUTOSYNC__*` environment variables or `[autosync]` in .dlt/config.toml, and
`DESTINATION__POSTGRES__CREDENTIALS` or .dlt/secrets.toml for Postgres). It talks to DuckDB and
Postgres through their own drivers with a read-only connection: the report must never change
the warehouse, and a dlt pipeline object would create local pipeline state just to read.

    with Warehouse.connect(destination="duckdb", duckdb_path="warehouse.duckdb") as wh:
        rows = wh.query(f"select * from {wh.table('autosync', 'dim_shops')}")
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DUCKDB_PATH = "warehouse.duckdb"
DEFAULT_MODEL_SCHEMA = "autosync"
DEFAULT_RAW_DATASET = "autosync_raw"
SUPPORTED = ("duckdb", "postgres")


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or read; the message says what to do."""


class WarehouseConfigurationError(WarehouseError):
    """The warehouse is not configured (destination, credentials, driver): fix the settings."""


@dataclass
class Warehouse:
    dialect: str
    connection: Any = field(repr=False)
    catalog: str | None = None  # DuckDB: the file's catalog, to qualify names unambiguously
    description: str = ""  # where it is, without secrets (shown in the report)

    # ------------------------------------------------------------------------------------------
    @classmethod
    def connect(cls, destination: str | None = None, duckdb_path: str | None = None) -> "Warehouse":
        import dlt

        name = destination or dlt.config.get("autosync.destination", str) or "duckdb"
        if name not in SUPPORTED:
            raise WarehouseConfigurationError(f"the report reads DuckDB or Postgres, not {name!r}: pass --destination duckdb or postgres")
        if name == "duckdb":
            path = duckdb_path or dlt.config.get("autosync.duckdb_path", str) or DEFAULT_DUCKDB_PATH
            return cls._duckdb(Path(path))
        return cls._postgres()

    @classmethod
    def _duckdb(cls, path: Path) -> "Warehouse":
        import duckdb

        if not path.is_file():
            raise WarehouseError(f"no DuckDB warehouse at {path}: run `python pipelines/run.py` first, "
                                 "or point --duckdb-path at the file it loads")
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as failure:
            raise WarehouseError(f"cannot open the DuckDB warehouse {path} read-only ({str(failure).splitlines()[0]}); "
                                 "if a sync is writing to it, run the report when it has finished") from None
        con.execute("set TimeZone = 'UTC'")
        catalog = con.execute("select current_database()").fetchone()[0]
        return cls("duckdb", con, catalog, f"DuckDB {path.resolve()}")

    @classmethod
    def _postgres(cls) -> "Warehouse":
        import dlt
        from dlt.common.configuration import resolve_configuration
        from dlt.common.configuration.exceptions import ConfigurationException
        from dlt.destinations.impl.postgres.configuration import PostgresCredentials

        try:
            import psycopg2
        except ImportError:
            raise WarehouseConfigurationError('Postgres needs the postgres extra: pip install -e ".[postgres]"') from None
        try:
            native = dlt.secrets.get("destination.postgres.credentials")
            credentials = PostgresCredentials()
            if isinstance(native, str):
                credentials.parse_native_representation(native)
            credentials = resolve_configuration(credentials, sections=("destination", "postgres"))
        except ConfigurationException:
            raise WarehouseConfigurationError("no Postgres credentials: set DESTINATION__POSTGRES__CREDENTIALS="
                                 "postgresql://user:password@host:5432/database (or [destination.postgres] in "
                                 ".dlt/secrets.toml)") from None
        where = f"{credentials.host}:{credentials.port or 5432}/{credentials.database}"
        try:
            con = psycopg2.connect(host=credentials.host, port=credentials.port or 5432, user=credentials.username,
                                   password=credentials.password, dbname=credentials.database,
                                   connect_timeout=int(credentials.connect_timeout or 15))
        except psycopg2.Error as failure:
            # psycopg2's message names host and user, never the password
            reason = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
            raise WarehouseError(f"cannot connect to Postgres at {where} ({reason}): check it is up and "
                                 "DESTINATION__POSTGRES__CREDENTIALS") from None
        con.set_session(readonly=True, autocommit=True)
        with con.cursor() as cur:
            cur.execute("set time zone 'UTC'")
        return cls("postgres", con, None, f"Postgres {where}")

    # ------------------------------------------------------------------------------------------
    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def table(self, schema: str, name: str) -> str:
        """A fully qualified, quoted table name (DuckDB: the catalog too, so a file named like the
        schema does not make the name ambiguous)."""
        quoted = f'"{schema}"."{name}"'
        return f'"{self.catalog}".{quoted}' if self.catalog else quoted

    def query(self, sql: str) -> list[dict[str, Any]]:
        if self.dialect == "duckdb":
            cursor = self.connection.execute(sql)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def columns(self, schema: str, name: str) -> set[str]:
        """Column names of a table or view, empty when it does not exist."""
        catalog = f" and table_catalog = '{self.catalog}'" if self.catalog else ""
        rows = self.query(
            "select column_name from information_schema.columns "
            f"where table_schema = '{_literal(schema)}' and table_name = '{_literal(name)}'{catalog}")
        return {r["column_name"] for r in rows}

    def has(self, schema: str, name: str) -> bool:
        return bool(self.columns(schema, name))


def _literal(text: str) -> str:
    return text.replace("'", "''")

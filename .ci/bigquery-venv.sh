#!/usr/bin/env bash
# Build .venv-bq: the local BigQuery emulator (bqemulator, from PyPI) that the BigQuery test tier
# (tests/test_bigquery_end_to_end.py) loads into and runs dbt on. Its own venv: bqemulator pins
# sqlglot<30.12, which the project's dlt stack does not want.
#
#   bash .ci/bigquery-venv.sh            # builds .venv-bq unless it is already complete
#   bash .ci/bigquery-venv.sh DIR        # or another folder
#
# Offline-safe: DuckDB's spatial extension, which bqemulator loads at start and would otherwise
# try to download, comes from the duckdb-extension-spatial wheel and is INSTALLed from that file
# into DIR/home/.duckdb (the emulator is started with HOME=DIR/home). sqlglotc is sqlglot's
# compiled parser: the emulator parses every query with sqlglot, and compiled it spends less CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-bq}"

if [ -x "$VENV/bin/bqemulator" ] && [ -f "$VENV/.complete" ]; then
  exit 0
fi
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check \
  "bqemulator==1.4.0" "sqlglot==30.11.0" "sqlglotc==30.11.0" numpy \
  "duckdb==1.5.5" "duckdb-extension-spatial==1.5.5"

mkdir -p "$VENV/home"
HOME="$PWD/$VENV/home" "$VENV/bin/python" - <<'PY'
import glob
import os

import duckdb
import duckdb_extension_spatial

folder = os.path.dirname(duckdb_extension_spatial.__file__)
files = glob.glob(os.path.join(folder, "extensions", "*", "spatial.duckdb_extension"))
if not files:
    raise SystemExit(f"no spatial.duckdb_extension under {folder}")
connection = duckdb.connect()
connection.execute(f"INSTALL '{files[0]}'")  # a local file: nothing is downloaded
connection.execute("LOAD spatial")
PY
touch "$VENV/.complete"
echo "built $VENV ($("$VENV/bin/bqemulator" version 2>/dev/null | tail -n 1))"

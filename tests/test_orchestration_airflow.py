"""Airflow: `airflow dags test autosync` runs the DAG end to end against the emulator (DuckDB).

Airflow lives in its own virtualenv (`.venv-airflow`, see README): installed beside dlt it
switches on dlt's Airflow config provider in every process, which then looks every setting up
in an Airflow metadata database. The test drives that venv's `airflow` CLI in a subprocess with
a throwaway AIRFLOW_HOME (SQLite) and is skipped when no Airflow installation is found.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from autosync_emulator import Emulator
from source_helpers import compare_with_truth

ROOT = Path(__file__).resolve().parents[1]


def _airflow_bin() -> str | None:
    candidates = [os.environ.get("AUTOSYNC_AIRFLOW_BIN"), str(ROOT / ".venv-airflow" / "bin" / "airflow"),
                  shutil.which("airflow")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


AIRFLOW = _airflow_bin()
pytestmark = pytest.mark.skipif(AIRFLOW is None, reason="no Airflow: python3 -m venv .venv-airflow && "
                                ".venv-airflow/bin/pip install -e '.[airflow]' (README)")


def _airflow_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SOURCES__", "DESTINATION__", "AUTOSYNC__", "AIRFLOW", "DLT_", "VIRTUAL_ENV"))}
    bin_dir = str(Path(AIRFLOW).parent)
    env.update(
        PATH=bin_dir + os.pathsep + env.get("PATH", ""),
        AIRFLOW_HOME=str(tmp_path / "airflow_home"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "pipelines"),
        RUNTIME__DLTHUB_TELEMETRY="false", DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1",
        # what a deployment sets: the warehouse and the dlt data dir (the API key comes below)
        AUTOSYNC__DESTINATION="duckdb", AUTOSYNC__DUCKDB_PATH=str(tmp_path / "warehouse.duckdb"),
        DLT_DATA_DIR=str(tmp_path / "dlt"),
    )
    return env


def _run(args, env, timeout, cwd):
    result = subprocess.run([AIRFLOW, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"airflow {' '.join(args)} failed ({result.returncode}):\n{output[-6000:]}"
    return output


@pytest.mark.slow
def test_airflow_dags_test_syncs_every_shop_then_builds_the_marts(tmp_path):
    env = _airflow_env(tmp_path)
    _run(["db", "migrate"], env, 180, tmp_path)
    with Emulator(seed=5, shops=2, work_orders=10, rate_limit=0) as emulator:
        # credentials as a deployment passes them: dlt's environment variables, not the DAG file
        env.update(SOURCES__AUTOSYNC__API_KEY=emulator.api_key, SOURCES__AUTOSYNC__BASE_URL=emulator.base_url)
        output = _run(["dags", "test", "autosync", "-f", str(ROOT / "pipelines" / "airflow_dag.py")], env, 420, tmp_path)
        truth = emulator.truth()
        base_url = emulator.base_url

    assert re.search(r"Marking run <DagRun autosync .*> successful", output), output[-3000:]
    assert emulator.api_key not in output  # the key never reaches the task logs
    for task_id in ("shops_to_sync", "sync_shop", "build_marts"):
        assert f"task_id='{task_id}'" in output or f"task_id={task_id}" in output, task_id

    from pipelines.orchestration import Warehouse, make_pipeline, shop_pipeline_name

    reader = make_pipeline(Warehouse("duckdb", "autosync_raw", str(tmp_path / "warehouse.duckdb"),
                                     str(tmp_path / "reader")), pipeline_name="reader")
    assert compare_with_truth(reader, truth) == []  # every shop, every table (one mapped task each)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as connection:
        states = connection.execute("select distinct pipeline_name from autosync_raw._dlt_pipeline_state").fetchall()
        revenue = connection.execute("select count(*) from autosync.fct_revenue_daily").fetchone()[0]
    # each shop's one state home, the one the CLI and Dagster use for that shop too
    assert sorted(name for (name,) in states) == [shop_pipeline_name(shop, base_url=base_url) for shop in (1, 2)]
    assert revenue > 0

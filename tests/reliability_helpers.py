"""Checks the reliability tests share: no duplicate keys, no orphan children, deletes marked
exactly as the truth says, secrets nowhere, and run.py as a user (or a scheduler) runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import dlt

from source_helpers import CHILD_TABLES, RESOURCES, all_tables, compare_with_truth, load_truth, read_table, table_exists

ROOT = Path(__file__).resolve().parent.parent
# child table -> (its parent table, the column holding the parent's id), from the endpoint table
PARENT_OF = {child.table: (child.parent_table, child.child.parent_key)
             for children in CHILD_TABLES.values() for child in children}


def duckdb_at(path: Path, dataset: str = "autosync_raw", name: str = "probe") -> dlt.Pipeline:
    """A pipeline object that only reads an existing DuckDB file (its own state dir)."""
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(path)),
        dataset_name=dataset,
        pipelines_dir=str(path.parent / f"{name}_pipelines"),
    )


def engine_homes(pipelines_dir: Path) -> List[dlt.Pipeline]:
    """Every shop's state home the engine keeps under a pipelines dir (<dir>/<target>/<pipeline>)."""
    return [dlt.pipeline(home.name, pipelines_dir=str(home.parent))
            for home in sorted(Path(pipelines_dir).glob("*/autosync_*_shop_*"))]


def engine_cursors(pipelines_dir: Path) -> Dict[str, Dict[str, Any]]:
    """{resource: {shop: cursor}} over every shop's state home (what the next run continues from)."""
    merged: Dict[str, Dict[str, Any]] = {}
    for home in engine_homes(pipelines_dir):
        resources = home.state.get("sources", {}).get("autosync", {}).get("resources", {})
        for name, state in resources.items():
            merged.setdefault(name, {}).update(state.get("shops") or {})
    return merged


def integrity_problems(pipeline: dlt.Pipeline, resources: Iterable[str] = RESOURCES) -> List[str]:
    """Duplicate primary keys or dlt ids in any table, and child rows without their parent."""
    problems: List[str] = []
    tables = [t for t in all_tables(resources) if table_exists(pipeline, t)]
    rows = {table: read_table(pipeline, table) for table in tables}
    for table, table_rows in rows.items():
        ids = [row["id"] for row in table_rows]
        if len(ids) != len(set(ids)):
            problems.append(f"{table}: {len(ids) - len(set(ids))} duplicate ids")
        dlt_ids = [row["_dlt_id"] for row in table_rows]
        if len(dlt_ids) != len(set(dlt_ids)):
            problems.append(f"{table}: duplicate _dlt_id")
        if table in PARENT_OF:
            parent, key = PARENT_OF[table]
            parent_ids = {row["id"] for row in rows.get(parent, [])}
            parent_dlt_ids = {row["_dlt_id"] for row in rows.get(parent, [])}
            orphans = [row["id"] for row in table_rows if row[key] not in parent_ids or row["_dlt_parent_id"] not in parent_dlt_ids]
            if orphans:
                problems.append(f"{table}: {len(orphans)} rows without their parent row (e.g. {orphans[:3]})")
    return problems


def deletion_problems(pipeline: dlt.Pipeline, truth: Dict[str, Any], resources: Iterable[str] = RESOURCES) -> List[str]:
    """After a reconciliation: a row is marked deleted exactly when the truth lists it deleted."""
    truth = load_truth(truth)
    problems: List[str] = []
    for resource in resources:
        if resource == "shops" or not table_exists(pipeline, resource):
            continue
        deleted = set(truth["deleted"].get(resource, []))
        for row in read_table(pipeline, resource):
            marked = row["_autosync_deleted_at"] is not None
            if marked and row["id"] not in deleted:
                problems.append(f"{resource} id {row['id']} is marked deleted but exists at the source")
            if not marked and row["id"] in deleted:
                problems.append(f"{resource} id {row['id']} is deleted at the source but not marked")
    return problems


def assert_exactly_truth(pipeline: dlt.Pipeline, truth: Dict[str, Any], resources: Iterable[str] = RESOURCES, **kwargs: Any) -> None:
    """The raw tables equal the truth row for row and value for value, with no duplicates."""
    resources = list(resources)
    problems = compare_with_truth(pipeline, truth, resources=resources, **kwargs) + integrity_problems(pipeline, resources)
    assert not problems, "raw tables differ from the emulator's truth:\n" + "\n".join(problems)


def run_cli_process(args: List[str], env: Optional[Dict[str, str]] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python pipelines/run.py ...` in its own process, as a scheduler runs it."""
    full_env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "pipelines" / "run.py"), *args],
        cwd=str(ROOT), env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def cli_args(emu: Any, tmp_path: Path, *extra: str, db: str = "raw.duckdb") -> List[str]:
    return [
        "--base-url", emu.base_url, "--api-key", emu.api_key, "--no-dbt",
        "--duckdb-path", str(tmp_path / db), "--pipelines-dir", str(tmp_path / "pipelines"), *extra,
    ]


def json_summary(stdout: str) -> Dict[str, Any]:
    return json.loads(stdout)


def assert_interrupted_in_one_line_then_whole(err_file: Path, emu: Any, args: List[str], env: Optional[Dict[str, str]] = None) -> None:
    """An interrupted CLI run said so in one last line and no traceback (its stderr in `err_file`);
    the next run, faults cleared, ends complete: the warehouse equals the truth."""
    from pipelines.engine import INTERRUPTED_MESSAGE

    lines = err_file.read_text().strip().splitlines()
    assert lines[-1] == "error: " + INTERRUPTED_MESSAGE
    assert not any("Traceback" in line for line in lines)
    emu.set_faults([])
    done = subprocess.run([sys.executable, str(ROOT / "pipelines" / "run.py"), *args], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_exactly_truth(duckdb_at(Path(args[args.index("--duckdb-path") + 1])), emu.truth())

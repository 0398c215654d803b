"""Scenario 5: the sync process is killed (SIGKILL, no clean-up of any kind) in extract,
normalize and load, again and again, while the source keeps changing; every completed rerun
ends equal to the truth, with no duplicate keys in any table and no orphan child rows.

The emulator runs in this process; each door (the CLI, a Dagster partition materialization, the
Airflow task's function, the webhook receiver's trigger: tests/door_process.py) runs in a child
process, as its host runs it. Kill points come from a seeded random source and from watching dlt's
working directory, so each phase is hit on purpose:
  extract   - the engine logged "syncing shop" and no package is extracted yet
  normalize - a package sits in normalize/extracted (or load/new is being written)
  load      - a package sits in load/normalized (jobs are being loaded / merged)
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autosync_emulator import Emulator
from pipelines.engine import sync_log
from reliability_helpers import ROOT, assert_exactly_truth, deletion_problems, duckdb_at

PHASE_WINDOWS = {"extract": 1.0, "normalize": 0.05, "load": 0.3}  # random delay after the phase shows


def _entries(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def current_phase(pipelines_dir: Path, stderr_file: Path) -> str:
    # every shop's pipeline: <pipelines dir>/<target>/<pipeline>/ (pipelines/engine/target.py)
    works = list(pipelines_dir.glob("*/autosync_*"))
    if any(_entries(work / "load" / "normalized") for work in works):
        return "load"
    if any(_entries(work / "normalize" / "extracted") or _entries(work / "load" / "new") for work in works):
        return "normalize"
    if stderr_file.exists() and "syncing shop" in stderr_file.read_text(errors="replace"):
        return "extract"
    return "starting"


DROPPED = "interrupted while loading"  # run.py's log line when it drops a half-loaded package


def run_and_kill(command, tmp_path: Path, target: str, rng: random.Random, deadline: float = 120,
                 env=None) -> str:
    """Start the door's process, SIGKILL it once `target` is reached (plus a random delay); the phase hit."""
    hit = _run_and_kill(command, tmp_path, target, rng, deadline, env)
    if DROPPED in (tmp_path / "stderr.txt").read_text(errors="replace"):
        hit += " (after dropping a half-loaded package)"
    return hit


def _run_and_kill(command, tmp_path: Path, target: str, rng: random.Random, deadline: float, env) -> str:
    stderr_file = tmp_path / "stderr.txt"
    with open(stderr_file, "w") as err, open(tmp_path / "stdout.txt", "w") as out:
        proc = subprocess.Popen(command, cwd=str(ROOT), stdout=out, stderr=err,
                                env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", **(env or {})})
        started = time.monotonic()
        kill_at = None
        hit = "completed"
        seen = set()
        while proc.poll() is None and time.monotonic() - started < deadline:
            phase = current_phase(tmp_path / "pipelines", stderr_file)
            seen.add(phase)
            if kill_at is None and phase == target:
                kill_at = time.monotonic() + rng.uniform(0, PHASE_WINDOWS[target])
            if kill_at is not None and time.monotonic() >= kill_at:
                hit = current_phase(tmp_path / "pipelines", stderr_file)
                if hit == "extract" and "load" in seen:
                    hit = "after load"  # the package is loaded; state and trace are being written
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return hit
            time.sleep(0.005)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{command[2]} did not finish in {deadline}s")
        return hit


def door_command(door: str, emu, tmp_path: Path, shops, *flags: str):
    config = {"base_url": emu.base_url, "duckdb_path": str(tmp_path / "raw.duckdb"),
              "pipelines_dir": str(tmp_path / "pipelines"), "shops": list(shops), "flags": list(flags)}
    return [sys.executable, str(ROOT / "tests" / "door_process.py"), door, json.dumps(config)]


@pytest.mark.timeout(900)
# the CLI in the suite; the other doors (the same engine behind another entry point) in the slow set
@pytest.mark.parametrize("door", ["cli"] + [pytest.param(door, marks=pytest.mark.slow) for door in ("dagster", "airflow", "webhook")])
def test_sigkill_in_every_phase_then_one_more_run_of_the_door_equals_the_truth(tmp_path, door):
    """Every door runs the same engine, so every door recovers: killed in extract, in normalize
    (after the kill in extract) and in load (after the kill in normalize), one more run of the
    same door leaves the raw tables equal to the truth, without duplicate keys or orphans."""
    if door == "dagster":
        pytest.importorskip("dagster", reason="the [dagster] extra is not installed")
    rng = random.Random(5)
    hits = []
    shops = [1, 2] if door == "cli" else [1]  # the CLI syncs shop after shop; one is enough elsewhere
    with Emulator(seed=95, shops=2, work_orders=30) as emu:
        # list pages take a little while, so extract lasts long enough to be hit anywhere
        emu.set_faults([{"method": "GET", "path": "/v1/shops/*/*", "behaviour": "slow", "delay": 0.01}])
        env = {"SOURCES__AUTOSYNC__API_KEY": emu.api_key, "SOURCES__AUTOSYNC__BASE_URL": emu.base_url}
        command = door_command(door, emu, tmp_path, shops)
        for target in ("extract", "normalize", "load"):
            emu.advance(hours=3)
            hits.append((target, run_and_kill(command, tmp_path, target, rng, env=env)))
        final = door_command(door, emu, tmp_path, shops, *(["--reconcile-deletes"] if door == "cli" else []))
        done = subprocess.run(final, cwd=str(ROOT), capture_output=True, text=True, timeout=300,
                              env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", **env})
        assert done.returncode == 0, done.stderr[-3000:]
        raw = duckdb_at(tmp_path / "raw.duckdb")
        truth = emu.truth()
        print(door, "kills:", hits, file=sys.stderr)
        assert_exactly_truth(raw, truth, shops=shops)
        if door == "cli":
            assert deletion_problems(raw, truth) == []
        # the completed run is in the sync log, under its door, one row per shop and resource
        logged = [row for row in sync_log.read(raw) if row["door"] == door and row["status"] == "ok"]
        assert {(row["shop_id"], row["resource"]) for row in logged} >= {(shop, "work_orders") for shop in shops}
    killed_in = {hit.split(" (")[0] for _, hit in hits}
    assert {"extract", "normalize", "load"} <= killed_in, f"not every phase was hit: {hits}"

"""Scenario 5: the sync process is killed (SIGKILL, no clean-up of any kind) in extract,
normalize and load, again and again, while the source keeps changing; every completed rerun
ends equal to the truth, with no duplicate keys in any table and no orphan child rows.

The emulator runs in this process; `python pipelines/run.py` runs in a child process, as a
scheduler runs it. Kill points come from a seeded random source and from watching dlt's
working directory, so each phase is hit on purpose:
  extract   - run.py logged "syncing into" and no package is extracted yet
  normalize - a package sits in normalize/extracted (or load/new is being written)
  load      - a package sits in load/normalized (jobs are being loaded / merged)
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from autosync_emulator import Emulator
from reliability_helpers import ROOT, assert_exactly_truth, cli_args, deletion_problems, duckdb_at

PHASE_WINDOWS = {"extract": 1.0, "normalize": 0.05, "load": 0.3}  # random delay after the phase shows


def _entries(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def current_phase(pipelines_dir: Path, stderr_file: Path) -> str:
    work = pipelines_dir / "autosync"
    if _entries(work / "load" / "normalized"):
        return "load"
    if _entries(work / "normalize" / "extracted") or _entries(work / "load" / "new"):
        return "normalize"
    if stderr_file.exists() and "syncing into" in stderr_file.read_text(errors="replace"):
        return "extract"
    return "starting"


DROPPED = "interrupted while loading"  # run.py's log line when it drops a half-loaded package


def run_and_kill(args, tmp_path: Path, target: str, rng: random.Random, deadline: float = 60) -> str:
    """Start run.py, SIGKILL it once `target` is reached (plus a random delay); the phase hit."""
    hit = _run_and_kill(args, tmp_path, target, rng, deadline)
    if DROPPED in (tmp_path / "stderr.txt").read_text(errors="replace"):
        hit += " (after dropping a half-loaded package)"
    return hit


def _run_and_kill(args, tmp_path: Path, target: str, rng: random.Random, deadline: float) -> str:
    stderr_file = tmp_path / "stderr.txt"
    with open(stderr_file, "w") as err, open(tmp_path / "stdout.txt", "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "run.py"), *args],
                                cwd=str(ROOT), stdout=out, stderr=err,
                                env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"})
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
            raise AssertionError(f"run.py did not finish in {deadline}s")
        return hit


def test_sigkill_in_every_phase_then_a_rerun_equals_the_truth(tmp_path):
    rng = random.Random(5)
    hits = []
    restarted_from_destination = []  # reruns that dropped a half-loaded package
    with Emulator(seed=95, shops=2, work_orders=30) as emu:
        # list pages take a little while, so extract lasts long enough to be hit anywhere
        emu.set_faults([{"method": "GET", "path": "/v1/shops/*/*", "behaviour": "slow", "delay": 0.01}])
        args = cli_args(emu, tmp_path)
        # one kill per phase, then two kills in a row (the rerun finishes a package left behind
        # while a newer one is interrupted), each followed by a completed run that must be exact
        for targets in (["extract"], ["normalize"], ["load", "extract"], ["normalize", "load"]):
            for target in targets:
                emu.advance(hours=3)
                hits.append((target, run_and_kill(args, tmp_path, target, rng)))
            done = subprocess.run([sys.executable, str(ROOT / "pipelines" / "run.py"), *args, "--reconcile-deletes"],
                                  cwd=str(ROOT), capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr[-2000:]
            if DROPPED in done.stderr:
                restarted_from_destination.append(targets)
            raw = duckdb_at(tmp_path / "raw.duckdb")
            truth = emu.truth()
            print("cycle", targets, hits[-len(targets):], file=sys.stderr)
            assert_exactly_truth(raw, truth)
            assert deletion_problems(raw, truth) == []
        print("kills:", hits)
        killed_in = {hit.split(" (")[0] for _, hit in hits}
        restarted_from_destination += [hit for _, hit in hits if DROPPED.split()[0] in hit or "dropping" in hit]
        assert {"extract", "normalize", "load"} <= killed_in, f"not every phase was hit: {hits}"
        assert restarted_from_destination, "no rerun met a half-loaded package: the load kills missed"

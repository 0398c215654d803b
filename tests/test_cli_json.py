"""`--json`: stdout is one JSON summary and every stderr line is a JSON object with `ts`, `level`
and `event`, on a sync, a failure and an interrupt (engine, progress and dlt lines alike)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autosync_emulator import Emulator
from pipelines.engine import INTERRUPTED_MESSAGE
from pipelines.run import main

ROOT = Path(__file__).resolve().parent.parent


def json_lines(text: str) -> list:
    lines = [line for line in text.splitlines() if line.strip()]
    objects = []
    for line in lines:
        parsed = json.loads(line)  # raises on any line that is not JSON
        assert isinstance(parsed, dict) and {"ts", "level", "event"} <= parsed.keys(), line
        objects.append(parsed)
    return objects


def test_a_json_sync_and_a_json_failure_write_only_json_lines(tmp_path, capsys):
    with Emulator(seed=81, shops=2, work_orders=8) as emu:
        args = ["--duckdb-path", str(tmp_path / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
                "--base-url", emu.base_url, "--json", "--no-dbt"]
        assert main([*args, "--api-key", emu.api_key]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out)["status"] == "ok"
        events = json_lines(err)
        estimate = next(event for event in events if event["event"] == "estimate")
        # a first sync into a target says so (switching destinations never reads the history silently)
        assert estimate["first_sync_into"] == f"duckdb {tmp_path / 'raw.duckdb'} dataset autosync_raw"
        assert any(event["logger"] == "autosync.engine" for event in events)

        assert main([*args, "--api-key", emu.api_key]) == 0  # the next sync continues: no "first sync"
        later = [event for event in json_lines(capsys.readouterr().err) if event["event"] == "estimate"]
        assert later and "first_sync_into" not in later[0]

        assert main([*args, "--api-key", "sk_sandbox_" + "0" * 32]) == 2
        out, err = capsys.readouterr()
        assert json.loads(out)["status"] == "failed"
        last = json_lines(err)[-1]
        assert last["level"] == "error" and last["event"] == "sync failed" and last["exit_code"] == 2
        assert "key" in last["error"].lower()


def test_an_interrupted_json_run_writes_only_json_lines(tmp_path):
    with Emulator(seed=82, shops=1, work_orders=20) as emu:
        # slow list pages: the sync is still extracting when the first progress line appears
        emu.set_faults([{"method": "GET", "path": "/v1/shops/*/*", "behaviour": "slow", "delay": 0.3}])
        args = ["--duckdb-path", str(tmp_path / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
                "--base-url", emu.base_url, "--api-key", emu.api_key, "--json", "--no-dbt"]
        with open(tmp_path / "err.txt", "w") as err:
            proc = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "run.py"), *args], cwd=str(ROOT),
                                    stdout=subprocess.DEVNULL, stderr=err,
                                    env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"})
            deadline = time.monotonic() + 120
            # the signal follows an event of the run (its estimate, written once the first pages
            # are read), not a timer
            while '"estimate"' not in (tmp_path / "err.txt").read_text():
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "err.txt").read_text()
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGINT)
            assert proc.wait(timeout=120) == 130
    events = json_lines((tmp_path / "err.txt").read_text())
    assert events[-1]["error"] == INTERRUPTED_MESSAGE and events[-1]["exit_code"] == 130

"""Each row of the README's exit-code table, provoked through the CLI: the table is read from the
README, so a row added there without a way to provoke it here fails."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autosync_emulator import Emulator
from pipelines.run import main

ROOT = Path(__file__).resolve().parent.parent


def readme_exit_codes() -> dict:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| exit code | meaning |"):].split("\n\n")[0]
    return {int(code): meaning for code, meaning in re.findall(r"^\| (\d+) \| (.+?) \|$", table, re.M)}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _in_process(code: int, emu: Emulator, tmp_path: Path, monkeypatch) -> int:
    args = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--pipelines-dir", str(tmp_path / "p"),
            "--resources", "customers,work_orders"]
    duckdb = ["--duckdb-path", str(tmp_path / "raw.duckdb")]
    if code == 0:
        return main([*args, *duckdb, "--no-dbt"])
    if code == 2:
        return main([*args, *duckdb, "--no-dbt", "--api-key", "sk_sandbox_" + "0" * 32])
    if code == 3:
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", f"postgresql://postgres:x@127.0.0.1:{_closed_port()}/test")
        return main([*args, "--destination", "postgres", "--no-dbt"])
    if code == 4:
        monkeypatch.setenv("AUTOSYNC__DBT_VARS", '{"as_of_date": "not a date"}')  # the marts cannot be built
        return main([*args, *duckdb])
    raise AssertionError(f"no way to provoke exit code {code} in process")


def _by_signal(code: int, emu: Emulator, tmp_path: Path) -> int:
    emu.set_faults([{"method": "GET", "path": "/v1/shops/*/*", "behaviour": "slow", "delay": 0.3}])
    args = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--pipelines-dir", str(tmp_path / "p"),
            "--duckdb-path", str(tmp_path / "raw.duckdb"), "--no-dbt", "--json"]
    with open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "run.py"), *args], cwd=str(ROOT),
                                stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"})
        deadline = time.monotonic() + 120
        while '"estimate"' not in (tmp_path / "err.txt").read_text():  # inside the extract: an event, not a timer
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "err.txt").read_text()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT if code == 130 else signal.SIGTERM)
        return proc.wait(timeout=120)


def test_the_readme_has_the_exit_code_table():
    assert set(readme_exit_codes()) == {0, 2, 3, 4, 130, 143}


@pytest.mark.parametrize("code", sorted(readme_exit_codes()))
def test_each_exit_code_of_the_readme_is_what_the_cli_returns(code, tmp_path, monkeypatch, capsys):
    with Emulator(seed=84, shops=1, work_orders=6) as emu:
        got = _by_signal(code, emu, tmp_path) if code in (130, 143) else _in_process(code, emu, tmp_path, monkeypatch)
    assert got == code, capsys.readouterr().err[-2000:]

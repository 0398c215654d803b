"""A local BigQuery emulator (bqemulator, from PyPI) in its own process, for the BigQuery tier.

bqemulator speaks BigQuery's REST API on 127.0.0.1 and runs the SQL on DuckDB (translated by
sqlglot). It lives in its own venv, `.venv-bq`, built by `bash .ci/bigquery-venv.sh` (`.ci/run`
builds it when missing); `AUTOSYNC_BQEMULATOR_BIN` may point at another `bqemulator`. Without
it the tier is skipped, with that reason.

    with BigQueryEmulator() as bq:       # free ports, /healthz answered, stopped on exit
        bq.endpoint                      # http://127.0.0.1:PORT, for BIGQUERY_EMULATOR_HOST
        bq.project                       # the project id it serves
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = ROOT / ".venv-bq"
PROJECT = "test-proj"
START_DEADLINE_SECONDS = 90.0  # about 6 s on a quiet machine; the shared 2-core one can be slow


def emulator_bin() -> Optional[str]:
    """The bqemulator executable to use, or None when none is installed."""
    given = os.environ.get("AUTOSYNC_BQEMULATOR_BIN")
    if given:
        return given if os.access(given, os.X_OK) else None
    candidate = DEFAULT_VENV / "bin" / "bqemulator"
    if os.access(candidate, os.X_OK) and (DEFAULT_VENV / ".complete").exists():
        return str(candidate)
    return None


SKIP_REASON = ("no BigQuery emulator: build it with `bash .ci/bigquery-venv.sh` (.venv-bq, about a "
               "minute; .ci/run does it) or set AUTOSYNC_BQEMULATOR_BIN")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BigQueryEmulator:
    def __init__(self, executable: Optional[str] = None, project: str = PROJECT) -> None:
        self.executable = executable or emulator_bin()
        if self.executable is None:
            raise RuntimeError(SKIP_REASON)
        self.project = project
        self.rest_port = _free_port()
        self.grpc_port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.rest_port}"
        self.process: Optional[subprocess.Popen] = None
        self._log = tempfile.NamedTemporaryFile(prefix="bqemulator-", suffix=".log", delete=False)

    def start(self) -> "BigQueryEmulator":
        venv = Path(self.executable).resolve().parent.parent
        env = {
            **os.environ,
            # DuckDB finds the spatial extension .ci/bigquery-venv.sh installed under <venv>/home
            # (~/.duckdb/extensions); it would otherwise try to download it.
            "HOME": str(venv / "home"),
            # the avro extension is only for Avro loads, which nothing here uses; enabled, the
            # emulator tries to download it at every start
            "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",
            "BQEMU_METRICS_ENABLED": "false",
        }
        self.process = subprocess.Popen(
            [self.executable, "start", "--rest-host", "127.0.0.1", "--rest-port", str(self.rest_port),
             "--grpc-host", "127.0.0.1", "--grpc-port", str(self.grpc_port), "--project", self.project,
             "--ephemeral", "--log-level", "warning"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bqemulator exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"bqemulator did not answer /healthz within {START_DEADLINE_SECONDS:.0f} s:\n{self.log_tail()}")

    def log_tail(self, characters: int = 4000) -> str:
        return Path(self._log.name).read_text(errors="replace")[-characters:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> "BigQueryEmulator":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

"""The emulator in a child process (its CLI), so neither its CPU time nor its memory counts as the sync's.

    with EmulatorProcess(shops=4, work_orders=2000) as emu:
        emu.base_url, emu.api_key, emu.request_log(), emu.advance(hours=1)

AUTOSYNC_BENCH_EMULATOR_DIR, if set, is a directory holding another copy of `autosync_emulator`
(e.g. `git archive <commit> autosync_emulator | tar -x -C DIR`) to serve from instead of this
checkout: it pins the emulator while the work tree changes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional

ROOT = Path(__file__).resolve().parent.parent


class EmulatorProcess:
    def __init__(self, seed: int = 42, shops: int = 4, work_orders: int = 100, rate_limit: int = 0,
                 rate_window_seconds: float = 60, startup_timeout: float = 600) -> None:
        self.params = dict(seed=seed, shops=shops, work_orders=work_orders, rate_limit=rate_limit,
                           rate_window_seconds=rate_window_seconds)
        self.startup_timeout = startup_timeout
        self.process: Optional[subprocess.Popen] = None
        self.base_url = ""
        self.root_url = ""
        self.api_key = ""
        self.build_seconds = 0.0

    def start(self) -> "EmulatorProcess":
        argv = [sys.executable, "-m", "autosync_emulator", "--port", "0"]
        for name, value in self.params.items():
            argv += [f"--{name.replace('_', '-')}", str(value)]
        began = time.perf_counter()
        cwd = os.environ.get("AUTOSYNC_BENCH_EMULATOR_DIR") or ROOT
        self.process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # blocks while the world is built
        if not line:
            err = self.process.stderr.read()
            raise RuntimeError(f"the emulator did not start: {err.strip()[-2000:]}")
        info = json.loads(line)
        self.build_seconds = time.perf_counter() - began
        self.base_url, self.api_key = info["base_url"], info["api_key"]
        self.root_url = self.base_url.rsplit("/v1", 1)[0]
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "EmulatorProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ control plane
    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.root_url}/_emulator/{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def request_log(self) -> Dict[str, Any]:
        return self.control("GET", "requests")

    def reset_request_log(self) -> None:
        self.control("DELETE", "requests")

    def advance(self, hours: float = 0, minutes: float = 0) -> Dict[str, Any]:
        return self.control("POST", "advance", {"hours": hours, "minutes": minutes})

    def truth(self) -> Dict[str, Any]:
        return self.control("GET", "truth")

    def configure(self, **settings: Any) -> Dict[str, Any]:
        return self.control("PATCH", "settings", settings)

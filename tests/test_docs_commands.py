"""Every shell command in README.md and docs/ runs as written, against the emulator, in a scratch
copy of the repository: a README edit that breaks a command fails the suite.

The commands are read from the fenced ```bash blocks and run in document order, one bash process
each, with the working directory and the exported variables carried from one to the next as a
reader's shell would carry them. The placeholder key `sk_sandbox_...` is the emulator's key (its
base URL is set too), `whsec_...` a made-up webhook secret. What is not run fully is listed in
NOT_RUN below with its reason; servers are started, probed and stopped. README's commands run in
the suite (its install step is the suite's own environment; the slow test below runs the first
command whole, install included, in a fresh venv); the pages under docs/ run in the slow set.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from autosync_emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "whsec_" + "d" * 32

# (pattern a command matches, what is done instead, why). First match wins.
NOT_RUN: List[Tuple[str, str, str]] = [
    (r"pytest\b", "skip", "the test command itself: CI runs it (.ci/run)"),
    (r"\.ci/run", "skip", "CI's own script"),
    (r"benchmarks/", "skip", "a benchmark (minutes to hours); tests/test_benchmarks_smoke.py runs them at small size"),
    (r"pip install", "skip",
     "an install: the suite's environment has every extra; the slow test installs README's first command in a fresh venv"),
    (r"-m venv", "skip", "an install (see pip install)"),
    (r"sk_live_|gcloud|--destination bigquery|--target bigquery", "skip", "needs a real account or Google"),
    (r"--destination postgres|--target postgres", "skip",
     "needs a Postgres warehouse loaded first; tests/test_marts_end_to_end.py and test_report.py run these on Postgres"),
    (r"airflow", "skip", "Airflow lives in its own venv; tests/test_orchestration_airflow.py runs these commands (slow set)"),
    (r"^dbt build \.\.\.", "skip", "an illustration of one flag, not a whole command"),
    (r"dagster dev", "server", "a long-running server: started, probed, stopped"),
    (r"autosync emulator|-m autosync_emulator", "server", "a long-running server: started, probed, stopped"),
    (r"autosync webhooks|-m pipelines.webhooks", "server", "a long-running server: started, probed, stopped"),
    (r"dbt docs serve", "server", "a long-running server: started, probed, stopped"),
]

# how a server shows it is up: a URL answering 200, or a first stdout line that is JSON
SERVER_PROBES = {
    "emulator": ("stdout-json", None),
    "webhooks": ("url", "http://127.0.0.1:{port}/metrics"),
    "dbt docs serve": ("url", "http://127.0.0.1:{port}/"),
    "dagster dev": ("url", "http://127.0.0.1:{port}/server_info"),
}


@dataclass
class Command:
    doc: str
    line: int
    text: str
    block: int = 0  # which ```bash block of its page: each block starts at the repository root

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


def commands_in(doc: Path) -> List[Command]:
    """The commands of a page's ```bash blocks: continuation lines joined, comment lines dropped."""
    text = doc.read_text()
    found: List[Command] = []
    for number, block in enumerate(re.finditer(r"^```bash\n(.*?)^```", text, re.M | re.S)):
        first_line = text[: block.start()].count("\n") + 2
        pending, start = "", 0
        for offset, raw in enumerate(block.group(1).splitlines()):
            stripped = raw.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if not pending:
                start = first_line + offset
            pending += raw.rstrip()[:-1] + " " if raw.rstrip().endswith("\\") else raw
            if not raw.rstrip().endswith("\\"):
                found.append(Command(str(doc.relative_to(ROOT)), start, pending.strip(), number))
                pending = ""
    return found


def readme_commands() -> List[Command]:
    return commands_in(ROOT / "README.md")


def docs_commands() -> List[Command]:
    return [command for page in sorted((ROOT / "docs").glob("*.md")) for command in commands_in(page)]


def how(command: Command) -> Tuple[str, str]:
    for pattern, action, reason in NOT_RUN:
        if re.search(pattern, command.text):
            return action, reason
    return "run", ""


def without_install(command: str) -> str:
    """README's first command minus its install steps: `venv && activate && pip install && X` -> `X`."""
    parts = [part.strip() for part in command.split("&&")]
    kept = [part for part in parts if not re.search(r"-m venv|bin/activate|pip install", part)]
    return " && ".join(kept)


class Shell:
    """A reader's shell: a scratch copy of the repo, the emulator's key in the environment, the cwd
    and exported variables carried from one command to the next."""

    def __init__(self, scratch: Path, emulator: Emulator):
        self.root = self.cwd = scratch
        self.emulator = emulator
        bin_dir = str(Path(sys.executable).parent)
        self.env: Dict[str, str] = {
            **os.environ,
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "SOURCES__AUTOSYNC__API_KEY": emulator.api_key,
            "SOURCES__AUTOSYNC__BASE_URL": emulator.base_url,
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "PYTHONPATH": str(scratch),  # the scratch copy's own code, as a clone would have it
        }
        self.env.pop("PYTEST_CURRENT_TEST", None)

    def text(self, command: Command) -> str:
        return command.text.replace("sk_sandbox_...", self.emulator.api_key).replace("whsec_...", WEBHOOK_SECRET)

    def run(self, command: Command, text: Optional[str] = None, timeout: float = 600) -> None:
        script = (text or self.text(command)) + '\n__rc=$?; echo; echo "__STATE__"; pwd; env -0; exit $__rc'
        done = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        output, _, state = done.stdout.partition("\n__STATE__\n")
        assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{output[-1500:]}\n{done.stderr[-2500:]}"
        cwd, _, env = state.partition("\n")
        self.cwd = Path(cwd)
        self.env = dict(item.split("=", 1) for item in env.split("\0") if "=" in item)

    def serve(self, command: Command) -> None:
        kind = next(name for name in SERVER_PROBES if name in command.text or f"-m {name}" in command.text
                    or (name == "emulator" and "autosync_emulator" in command.text)
                    or (name == "webhooks" and "pipelines.webhooks" in command.text))
        probe, url = SERVER_PROBES[kind]
        port = re.search(r"(?:--port|-p)\s+(\d+)", command.text)
        proc = subprocess.Popen(["bash", "-c", "exec " + self.text(command)], cwd=self.cwd, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            if probe == "stdout-json":
                first = proc.stdout.readline()
                assert "base_url" in json.loads(first), f"{command}: first line {first!r}"
                return
            target = url.format(port=port.group(1) if port else "3000")
            while True:
                assert proc.poll() is None, f"{command} exited {proc.returncode}: {proc.stderr.read()[-2000:]}"
                try:
                    with urllib.request.urlopen(target, timeout=5) as answer:
                        if answer.status == 200:
                            return
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"{command}: {target} did not answer"
                time.sleep(0.5)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def scratch_copy(tmp: Path) -> Path:
    """The files a clone has (tracked, or new and not ignored), as they are in the working tree."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    target = tmp / "clone"
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run_all(commands: List[Command], shell: Shell) -> List[str]:
    said = []
    block = None
    for command in commands:
        if (command.doc, command.block) != block:  # a new block: a reader starts it at the repo root
            block, shell.cwd = (command.doc, command.block), shell.root
        action, reason = how(command)
        if action == "skip":
            said.append(f"not run: {command} ({reason})")
        elif action == "server":
            shell.serve(command)
            said.append(f"served and probed: {command}")
        else:
            shell.run(command)
            said.append(f"ran: {command}")
    return said


def test_every_command_is_run_or_listed_with_a_reason():
    commands = readme_commands() + docs_commands()
    assert len(commands) >= 20, "the commands were not found: did the ```bash fences change?"
    for command in commands:
        action, reason = how(command)
        assert action == "run" or reason, command
    first = readme_commands()[0]
    assert "pip install" in first.text and without_install(first.text), "README must open with the install-and-run command"
    assert len((ROOT / "README.md").read_text().splitlines()) < 200, "README is a front page: under 200 lines"


@pytest.mark.slow  # two minutes: every README command, each a process of its own with dbt
@pytest.mark.timeout(1500)
def test_readme_commands_run_as_written(tmp_path):
    with Emulator(seed=42, shops=2, work_orders=20) as emulator:
        shell = Shell(scratch_copy(tmp_path), emulator)
        commands = readme_commands()
        main_job = commands[0]
        shell.run(main_job, text=without_install(main_job.text))  # the install is this suite's environment
        said = run_all(commands[1:], shell)
    assert (tmp_path / "clone" / "autosync-report.html").exists()
    assert any(line.startswith("ran: README.md") for line in said)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_docs_commands_run_as_written(tmp_path):
    with Emulator(seed=42, shops=2, work_orders=20) as emulator:
        shell = Shell(scratch_copy(tmp_path), emulator)
        # the pages assume a synced warehouse, as README's "Point it at your account" leaves one
        run_all([command for command in readme_commands()[1:] if "autosync sync" in command.text], shell)
        said = run_all(docs_commands(), shell)
    print("\n".join(said))
    assert any(line.startswith("ran: docs/") for line in said)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_readme_first_command_installs_and_runs_in_a_fresh_venv(tmp_path):
    with Emulator(seed=42, shops=1, work_orders=5) as emulator:
        shell = Shell(scratch_copy(tmp_path), emulator)
        shell.env["PATH"] = os.environ.get("PATH", "")  # not this suite's venv: the command makes its own
        shell.env.pop("VIRTUAL_ENV", None)
        shell.run(readme_commands()[0], timeout=1500)
    assert (tmp_path / "clone" / "autosync-report.html").exists()

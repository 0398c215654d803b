"""A signal that lands inside a finalizer still stops the run, without a traceback on stderr.

Python runs a signal handler in the main thread at the next bytecode, which may be inside a
`__del__` the garbage collector called (dlt's DuckDB connection pool has one); an exception raised
there is swallowed and printed as "Exception ignored in ...". The engine's handler then sends the
signal again a moment later, outside the finalizer."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r'''
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from pipelines.engine.errors import TerminationRequested, raise_on_interrupts

raise_on_interrupts()

class Pool:
    def __del__(self):
        os.kill(os.getpid(), signal.{signal})
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:  # the handler runs here, inside the finalizer
            pass

try:
    Pool()  # collected at once: __del__ runs
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.01)
    print("not interrupted")
except TerminationRequested:
    print("terminated")
except KeyboardInterrupt:
    print("interrupted")
'''


@pytest.mark.parametrize("signal_name,expected", [("SIGTERM", "terminated"), ("SIGINT", "interrupted")])
def test_a_signal_inside_a_finalizer_still_interrupts_without_a_traceback(signal_name, expected):
    done = subprocess.run([sys.executable, "-c", SCRIPT.replace("{signal}", signal_name), str(ROOT)],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == expected, (done.stdout, done.stderr)
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr

"""A signal that lands inside a finalizer still stops the run, without a traceback on stderr.

Python runs a signal handler in the main thread at the next bytecode, which may be inside a
`__del__` the garbage collector called (dlt's DuckDB connection pool has one); an exception raised
there is swallowed and printed as "Exception ignored in ...". The engine's handler then only
remembers it, and the engine raises it at its next check (after the checkpoint's load)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r'''
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from pipelines.engine.errors import TerminationRequested, raise_if_interrupted, raise_on_interrupts

raise_on_interrupts()

class Pool:
    def __del__(self):
        os.kill(os.getpid(), signal.{signal})
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:  # the handler runs here, inside the finalizer
            pass

try:
    Pool()  # collected at once: __del__ runs
    time.sleep(0.2)
    raise_if_interrupted()  # where the engine checks, after each checkpoint's load
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


# -- with skip_failing_shops, what would fail every shop still stops the run ---------------------
def _two_shop_job(tmp_path, emu, **overrides):
    from pipelines.engine import SyncJob, Target

    options = dict(target=Target(destination="duckdb", duckdb_path=str(tmp_path / "raw.duckdb"),
                                 pipelines_dir=str(tmp_path / "pipelines")),
                   shops=[1, 2], base_url=emu.base_url, api_key=emu.api_key,
                   source_options={"skip_failing_shops": True, "max_workers": 1})
    options.update(overrides)
    return SyncJob(**options)


def test_skip_failing_shops_still_stops_at_once_on_bad_credentials_and_on_an_interrupt(tmp_path, monkeypatch):
    from autosync_emulator import Emulator
    from pipelines.engine import SyncFailed, run_sync
    from pipelines.engine import sync as engine_sync

    with Emulator(seed=3, shops=2, work_orders=2, rate_limit=0) as emu:
        with pytest.raises(SyncFailed) as bad_key:
            run_sync(_two_shop_job(tmp_path, emu, api_key="sk_sandbox_" + "0" * 32))
        assert bad_key.value.category == "configuration"
        assert "shops failed" not in bad_key.value.message  # not tried shop after shop

        calls = []

        def interrupted(**arguments):
            calls.append(arguments["shop"]["id"])
            raise KeyboardInterrupt

        monkeypatch.setattr(engine_sync, "autosync_source", interrupted)
        with pytest.raises(SyncFailed) as stopped:
            run_sync(_two_shop_job(tmp_path, emu))
        assert stopped.value.category == "interrupted" and stopped.value.exit_code == 130
        assert calls == [1]  # the second shop never started


def test_a_failure_that_follows_an_interrupt_is_reported_as_the_interrupt():
    """Ctrl-C inside a module import leaves the module half-initialized; the run then fails on the
    next import ("partially initialized module 'pandas' ..."): that is the interrupt, exit 130."""
    import os
    import signal

    from pipelines.engine.errors import EXIT_INTERRUPTED, as_sync_failed, forget_interrupt, raise_on_interrupts

    previous = raise_on_interrupts()
    assert previous is not None, "pytest runs tests in the main thread"
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs as soon as os.kill returns
        failure = as_sync_failed(AttributeError("partially initialized module 'pandas' has no attribute 'x'"))
        assert (failure.category, failure.exit_code) == ("interrupted", EXIT_INTERRUPTED)
        # reported once: a later failure is itself again
        assert as_sync_failed(AttributeError("boom")).category == "unexpected"
    finally:
        forget_interrupt()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

"""One error model for every door: `SyncFailed` (a one-line message without secrets, a category,
the CLI's exit code), and interrupts (Ctrl-C, SIGTERM) turned into it."""
from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING, Any, Optional

from autosync_source.errors import AuthenticationError, AutosyncError, ConfigurationError, DestinationError, ScopeError

if TYPE_CHECKING:
    import dlt

    from pipelines.engine.summary import SyncSummary

logger = logging.getLogger("autosync.engine")

EXIT_OK = 0
EXIT_FAILED = 2  # configuration, credentials or API
EXIT_DESTINATION = 3
EXIT_DBT_FAILED = 4
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C)
EXIT_TERMINATED = 143  # SIGTERM
INTERRUPTED_MESSAGE = "interrupted: nothing after the last committed checkpoint is kept; the next run resumes from there"


class SyncFailed(Exception):
    """The one error every door sees: a one-line message (no secrets), a category and the exit
    code the CLI ends with. `summary` holds what was done before the failure (shops completed)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED, category: str = "sync",
                 summary: Optional["SyncSummary"] = None) -> None:
        super().__init__(message)
        self.message, self.exit_code, self.category, self.summary = message, exit_code, category, summary


class TerminationRequested(KeyboardInterrupt):
    """Raised by the SIGTERM handler a door installs (`raise_on_interrupts`): stops a run the way
    Ctrl-C does, so both take the same path (exit 143 instead of 130)."""


# The interrupt a door's handler raised, kept until a run has seen it: an exception raised inside
# DuckDB turns into duckdb's own InterruptException (an Exception), which dlt catches while it
# restores state, so a Ctrl-C in the first instants of a run would vanish and the run complete
# with exit 0. The engine calls `raise_if_interrupted` after each load to raise it again.
_pending_interrupt: Optional[KeyboardInterrupt] = None


def raise_on_interrupts() -> Optional[dict]:
    """Turn SIGINT into KeyboardInterrupt and SIGTERM into `TerminationRequested` in this (main)
    thread, remembering which arrived; returns the handlers it replaced (signal -> handler, for
    `signal.signal` to put back), or None where it changed nothing."""
    def handler(signum: int, frame: Any) -> None:
        global _pending_interrupt
        _pending_interrupt = TerminationRequested() if signum == signal.SIGTERM else KeyboardInterrupt()
        if _in_finalizer(frame):
            # Python swallows an exception raised in a finalizer (the garbage collector closing
            # dlt's DuckDB connection pool, say) and prints "Exception ignored ..." with a traceback.
            # So it is only remembered here: the engine raises it after the checkpoint's load
            # (`raise_if_interrupted`), and a second Ctrl-C in ordinary code stops at once.
            return
        raise _pending_interrupt

    try:
        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: the host (Dagster, Airflow) owns signals there
        return None


def _in_finalizer(frame: Any) -> bool:
    """Whether the interrupted code runs inside a `__del__` or a weakref finalizer."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or (code.co_name == "__call__" and code.co_filename.endswith("weakref.py")):
            return True
        frame = frame.f_back
    return False


def raise_if_interrupted() -> None:
    """Raise again an interrupt that arrived but was swallowed on its way (see above)."""
    global _pending_interrupt
    interrupt, _pending_interrupt = _pending_interrupt, None
    if interrupt is not None:
        raise interrupt


def forget_interrupt() -> None:
    """The interrupt was reported: a later run in this process starts clean."""
    global _pending_interrupt
    _pending_interrupt = None


def as_sync_failed(failure: BaseException, pipeline: Optional["dlt.Pipeline"] = None,
                   summary: Optional[SyncSummary] = None) -> SyncFailed:
    """Any failure of a run as one `SyncFailed`; a failed load's package is dropped here so the
    next run starts from the state the destination committed."""
    if isinstance(failure, SyncFailed):
        return failure
    step = getattr(failure, "step", None)
    # An interrupt that arrived and was not raised where it landed (swallowed, or turned into
    # another error: one landing inside a module import leaves the module half-initialized, and
    # the next import fails with "partially initialized module 'pandas'") is the cause of this
    # failure, whatever it looks like.
    interrupt = _find(failure, KeyboardInterrupt) or _pending_interrupt
    if (step == "load" or interrupt is not None) and pipeline is not None:
        # dlt keeps a failed package to retry it and has already saved the advanced cursors
        # locally. Drop both, so the next run starts from the state the destination committed
        # (restored from it) and re-reads exactly what this run could not load.
        try:
            pipeline.drop()
        except BaseException:  # the message below matters more than the clean-up
            logger.debug("could not drop the failed package", exc_info=True)
    if interrupt is not None:
        forget_interrupt()
        code = EXIT_TERMINATED if isinstance(interrupt, TerminationRequested) else EXIT_INTERRUPTED
        return SyncFailed(INTERRUPTED_MESSAGE, code, "interrupted", summary)
    known = _find(failure, AutosyncError)
    missing = _missing_configuration_in(failure)
    if known is None and missing is not None:
        spec, fields = missing
        where = "destination" if "Client" in spec or "Credentials" in spec else "configuration"
        error_type = DestinationError if where == "destination" else ConfigurationError
        hint = " A password can also stand in the connection URL (postgresql://user:PASSWORD@host:5432/db)." \
            if any("POSTGRES__CREDENTIALS__PASSWORD" in field for field in fields) else ""
        known = error_type(
            f"Missing {where} setting(s): {'; '.join(fields)} ({spec}). Put them in .dlt/secrets.toml "
            f"or environment variables (see .dlt/example.secrets.toml), then run again.{hint}"
        )
    if known is None and step == "load" and pipeline is not None:
        known = DestinationError(
            f"The destination {pipeline.destination.destination_name} refused or could not be "
            f"reached: {short_reason(failure)}. Nothing was committed and no cursor moved; check "
            f"it is up and its credentials ({_credentials_hint(pipeline)}), then run again."
        )
    if known is None and pipeline is not None and step in (None, "sync") and _looks_like_destination(failure):
        known = DestinationError(
            f"The destination {pipeline.destination.destination_name} could not be reached: "
            f"{short_reason(failure)}. Nothing was loaded; check it is up and its credentials "
            f"({_credentials_hint(pipeline)})."
        )
    if known is None:
        logger.debug("unexpected failure", exc_info=failure)
        return SyncFailed(f"The sync failed unexpectedly: {type(failure).__name__}: {short_reason(failure)}",
                          EXIT_FAILED, "unexpected", summary)
    if isinstance(known, DestinationError):
        category = "destination"
    elif isinstance(known, (ConfigurationError, AuthenticationError, ScopeError)):
        category = "configuration"  # the same for every shop: no use trying the next one
    else:
        category = "source"
    return SyncFailed(str(known), known.exit_code, category, summary)


def autosync_error_in(failure: BaseException) -> Optional[AutosyncError]:
    """The connector's own error (with its user message) somewhere in a failure's causes, or None."""
    return _find(failure, AutosyncError)


def _find(failure: BaseException, kind: type) -> Any:
    seen = set()
    current: Optional[BaseException] = failure
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        nested = getattr(current, "exception", None)  # dlt's PipelineStepFailed keeps the cause here too
        current = current.__cause__ or current.__context__ or (nested if isinstance(nested, BaseException) else None)
    return None


def _missing_configuration_in(failure: BaseException) -> Optional[tuple]:
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    found = _find(failure, ConfigFieldMissingException)
    if found is None:
        return None
    return found.spec_name, _missing_fields(getattr(found, "traces", {}) or {}, list(found.fields))


def _missing_fields(traces: dict, fields: list, prefix: str = "") -> list:
    """Each missing setting by its dotted name and the first place dlt looked for it: a Postgres URL
    without a password is `credentials` missing at the top, `password` one level down (dlt's
    nested LookupTraces), and the user needs to hear the latter."""
    named = []
    for field in fields:
        trace = traces.get(field)
        nested = trace[0] if isinstance(trace, list) and trace and hasattr(trace[0], "traces") else None
        if nested is not None and getattr(nested, "traces", None):
            named += _missing_fields(nested.traces, list(nested.traces), f"{prefix}{field}.")
            continue
        keys = [getattr(lookup, "key", None) for lookup in trace or [] if getattr(lookup, "key", None)] \
            if isinstance(trace, list) else []
        # dlt looks in pipeline-scoped places first; name the place a user sets (DESTINATION__...)
        plain = [key for key in keys if key.startswith(("DESTINATION__", "SOURCES__"))] or keys
        named.append(f"{prefix}{field} ({plain[0]})" if plain else f"{prefix}{field}")
    return named


def _looks_like_destination(failure: BaseException) -> bool:
    from dlt.destinations.exceptions import DestinationTerminalException, DestinationTransientException

    seen = set()
    current: Optional[BaseException] = failure
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (DestinationTerminalException, DestinationTransientException)):
            return True
        if type(current).__module__.startswith(("psycopg2", "duckdb", "google")):
            return True
        current = current.__cause__ or current.__context__
    return False


def short_reason(failure: BaseException) -> str:
    root: BaseException = failure
    seen = set()
    while (root.__cause__ is not None or root.__context__ is not None) and id(root) not in seen:
        seen.add(id(root))
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    text = str(root).strip().splitlines()
    return text[0][:300] if text else type(root).__name__


def _credentials_hint(pipeline: "dlt.Pipeline") -> str:
    name = pipeline.destination.destination_name
    if name == "postgres":
        return "DESTINATION__POSTGRES__CREDENTIALS"
    if name == "bigquery":
        return "DESTINATION__BIGQUERY__CREDENTIALS__*"
    return "--duckdb-path"

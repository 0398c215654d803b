"""Shops read in worker processes (the `processes` option, `--processes N`): the second core.

A small shop costs about 1.3 CPU-seconds of dlt's fixed work per run (extract, normalize, load of
some twenty tables), and in one process the shops' threads take turns on one core (Python's
GIL): 120 small shops take 160 s where the rate budget allows 74. With `processes` N, each
shop's read (the requests, its rows, dlt's extract and normalize) runs in one of N worker
processes, into the shop's own pipeline working directory; the engine's thread of that shop then
loads the normalized package as always (one writer per DuckDB file: the engine's process holds
the file), reconciles and logs. Nothing else changes: the cursors are in the package the
worker wrote, committed by the load, so a kill at any point leaves what the in-process path
leaves (a pending package the next run loads, or nothing).

The workers' log records and progress events come back to the engine's process over one queue
(its log format, --json included, applies to them); they ignore Ctrl-C and SIGTERM and stop
when the engine sets the run's cancel event, or when the engine's process is gone.

Why not dlt's own parallelism: dlt parallelises within one pipeline (normalize workers, load
workers), not across pipelines, and each shop is a pipeline of its own (its state home).
Processes are spawned (not forked: the engine's process has threads and an open DuckDB file).
"""
from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Dict, Optional

from autosync_source.progress import Progress

logger = logging.getLogger("autosync.engine")

# Progress calls a reader makes (autosync_source/sync.py): forwarded to the engine's Progress.
FORWARDED = ("planned", "shop_started", "list_page", "detail", "detail_not_needed", "shop_done",
             "shop_stopped", "shop_failed", "waiting_for_budget")
# Loggers whose levels the workers take from the engine's process.
LOGGERS = ("", "autosync", "autosync_source", "autosync_source.progress", "autosync.engine", "dlt")

_WORKER: Dict[str, Any] = {}  # in a worker process: its queue to the engine, its cancel event


class ShopProcesses:
    """N worker processes that read shops; one per run, closed with `close()`."""

    def __init__(self, processes: int, progress: Progress) -> None:
        context = multiprocessing.get_context("spawn")
        self.progress = progress
        self.events: Any = context.Queue()
        self.cancel: Any = context.Event()
        self._live: Dict[int, int] = {}  # task -> requests its worker has sent so far
        self._lock = threading.Lock()
        self._tasks = 0
        levels = {name: logging.getLogger(name or None).level for name in LOGGERS}
        self.executor = ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=_start_worker,
                                            initargs=(self.events, self.cancel, levels, os.getpid()))
        self._listener = threading.Thread(target=self._listen, name="autosync-shop-processes", daemon=True)
        self._listener.start()

    def requests_in_flight(self) -> int:
        """Requests the workers' reads in progress have sent (their stats reach the engine at the end)."""
        with self._lock:
            return sum(self._live.values())

    def extract(self, task: Dict[str, Any]) -> Dict[str, Any]:
        """Run one checkpoint's extract and normalize of one shop in a worker; its outcome."""
        with self._lock:
            self._tasks += 1
            task = {**task, "task": self._tasks}
        try:
            return self.executor.submit(extract_shop, task).result()
        finally:
            with self._lock:
                self._live.pop(task["task"], None)

    def stop(self) -> None:
        self.cancel.set()

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.events.put(None)
        self._listener.join(timeout=10)

    def _listen(self) -> None:
        while True:
            try:
                item = self.events.get()
            except (EOFError, OSError):
                return
            if item is None:
                return
            try:
                if item[0] == "log":
                    record = item[1]
                    logging.getLogger(record.name).handle(record)
                else:
                    _, task, requests, method, args = item
                    with self._lock:
                        self._live[task] = requests
                    getattr(self.progress, method)(*args)
            except Exception:  # a line the engine could not show never stops the run
                logger.debug("could not pass on a worker's event", exc_info=True)


# -- in a worker process ----------------------------------------------------------------------
class _ToEngine(logging.handlers.QueueHandler):
    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put(("log", record))


class _ForwardedProgress:
    """The Progress a worker's source reports to: each call goes to the engine's Progress."""

    def __init__(self, events: Any, task: int, stats: Any, quiet: bool) -> None:
        self._events, self._task, self._stats, self._quiet = events, task, stats, quiet
        self.estimated = True  # the engine estimated the whole run: the source does not sample
        self.read_ahead = None

    @property
    def quiet(self) -> bool:
        return self._quiet

    def attach(self, *_: Any) -> None:
        pass  # the engine counts requests (requests_in_flight)

    def __getattr__(self, method: str) -> Any:
        if method not in FORWARDED:
            raise AttributeError(method)

        def forward(*args: Any) -> None:
            if not self._quiet:
                self._events.put(("progress", self._task, self._stats.requests, method, args))
        return forward


def _start_worker(events: Any, cancel: Any, levels: Dict[str, int], engine_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine's cancel event stops a worker
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    root = logging.getLogger()
    root.handlers[:] = [_ToEngine(events)]
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    stopped = threading.Event()  # a plain event: readers ask it on every row

    def watch() -> None:
        while not stopped.is_set():
            if cancel.wait(0.2) or os.getppid() != engine_pid:
                stopped.set()  # the run was stopped, or the engine's process is gone
    threading.Thread(target=watch, name="autosync-worker-watch", daemon=True).start()
    _WORKER.update(events=events, stopped=stopped)


def extract_shop(task: Dict[str, Any]) -> Dict[str, Any]:
    """In a worker: one checkpoint of one shop, extracted and normalized into the shop's pipeline
    working directory (the engine loads it). Failures come back as (message, exit code, category)."""
    from autosync_source import Checkpoint, RequestStats, autosync_source
    from pipelines.engine.errors import as_sync_failed

    stats, checkpoint = RequestStats(), Checkpoint()
    pipeline: Optional[Any] = None
    rows: Dict[str, int] = {}
    failure = None
    try:
        pipeline = task["target"].pipeline(task["pipeline"], task["staging_layout"])
        if task["window"]:  # a window run's throwaway cursors are not stored in the warehouse
            pipeline.config.restore_from_destination = False
        reporter = _ForwardedProgress(_WORKER["events"], task["task"], stats, task["quiet"])
        source = autosync_source(**task["arguments"], shop=task["shop"], request_stats=stats, checkpoint=checkpoint,
                                 progress_reporter=reporter, cancel=_WORKER["stopped"])
        pipeline.extract(source, refresh=task["refresh"])
        rows = dict(pipeline.normalize().row_counts)
    except BaseException as error:  # noqa: B036 - handed to the engine as plain data
        failed = as_sync_failed(error, pipeline)
        failure = (failed.message, failed.exit_code, failed.category)
    return {"rows": rows, "stats": stats.snapshot(), "checkpoint": checkpoint.outcome(), "failure": failure}

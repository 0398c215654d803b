"""Log lines as JSON objects, one a line (`--json`): a program reads stderr line by line.

Each line has `ts` (UTC, ISO 8601 with milliseconds), `level`, `logger` and `event`. A message that
is itself a JSON object with an `event` (the progress and estimate lines of progress.py) is
merged in, so its figures are fields; any other message is the `event` text, as structlog
writes it. An exception adds `error` (its last line), never a traceback.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        parsed = None
        if message.startswith("{"):
            try:
                parsed = json.loads(message)
            except ValueError:
                parsed = None
        if isinstance(parsed, dict) and "event" in parsed:
            line.update({key: value for key, value in parsed.items() if key not in ("ts", "level", "logger")})
        else:
            line["event"] = message
        if record.exc_info and record.exc_info[1] is not None:
            text = str(record.exc_info[1]).strip().splitlines()
            line["error"] = f"{type(record.exc_info[1]).__name__}: {text[0] if text else ''}".rstrip(": ")
        return json.dumps(line, default=str)


def json_line(event: str, level: str = "info", **fields: object) -> str:
    """One JSON log line written outside logging (the CLI's last words on a failure)."""
    record = logging.LogRecord("autosync.run", getattr(logging, level.upper()), "", 0, "%s",
                               (json.dumps({"event": event, **fields}, default=str),), None)
    return JsonLogFormatter().format(record)

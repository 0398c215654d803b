"""Fixtures shared by the whole suite. Area-specific fixtures live beside their tests."""
import os

# Never phone home from tests, never read a developer's ~/.dlt.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

"""Fixtures shared by the whole suite. Area-specific fixtures live beside their tests."""
import os

# Never phone home from tests, never read a developer's ~/.dlt.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# With the [airflow] extra installed dlt would import Airflow to read its Variables on the first
# config lookup (8-13 s); the suite never configures through Airflow.
os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")

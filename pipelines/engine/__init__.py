"""The sync engine: one job (a warehouse target, shops, resources, a window or incremental,
options) in, one summary out. Every door calls `run_sync`: the CLI (pipelines/run.py and its
--demo), the Dagster assets, the Airflow tasks and the webhook receiver.

    from pipelines.engine import SyncJob, Target, run_sync, SyncFailed
    summary = run_sync(SyncJob(Target(destination="postgres"), door="my_script", shops=[7]))

What every door gets, because it happens here and nowhere else:
- one home for cursors: each shop has its own dlt pipeline, named after the shop and the API it
  reads (`autosync_<api>_shop_<id>`, see `state_home`), kept in a working directory of its
  target (`<pipelines dir>/<target key>/`). Whichever door ran last, the next one continues from
  the same cursors: locally when it shares the pipelines dir, else restored from the warehouse,
  where dlt keeps each pipeline's state. Shops never share a pipeline, so workers syncing
  different shops into one dataset at the same time never overwrite each other's cursors;
- state bound to its target: the working directory is keyed by destination, its location
  (DuckDB file, Postgres host/database, BigQuery project) and dataset, and the pipeline name by
  the API environment/base URL. Another target starts from its own state (restored from it, or
  empty: a full sync), never from another target's cursors;
- recovery of a package a killed run left (`finish_interrupted_run`), scheduled delete
  reconciliation, the schema-change report, a summary, a row per shop and resource in the sync
  log (`sync_log.py`), dbt when asked, and one error type, `SyncFailed`, with an exit code.
"""
from pipelines.engine.demo import (
    DEMO_API_LABEL,
    DEMO_DATASET,
    DEMO_DUCKDB_PATH,
    demo_target,
    refuse_non_demo_warehouse,
    world_today,
)
from pipelines.engine.errors import (
    EXIT_DBT_FAILED,
    EXIT_DESTINATION,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    INTERRUPTED_MESSAGE,
    SyncFailed,
    TerminationRequested,
    as_sync_failed,
    autosync_error_in,
    raise_if_interrupted,
    raise_on_interrupts,
)
from pipelines.engine.job import SyncJob
from pipelines.engine.summary import SyncSummary
from pipelines.engine.sync import (
    build_marts,
    finish_interrupted_run,
    marts_pipeline,
    run_sync,
    run_with_schema_retry,
    start_date_warning,
    visible_shop_ids,
)
from pipelines.engine.target import (
    DEFAULT_DUCKDB_PATH,
    Target,
    api_label,
    duckdb_destination,
    default_pipelines_dir,
    shop_staging_layout,
    state_home,
)

__all__ = [
    # the engine's surface, what the doors use: the job, its target, its summary and its one
    # error, the exit codes
    "SyncJob", "Target", "SyncSummary", "SyncFailed", "run_sync", "build_marts", "EXIT_OK", "EXIT_FAILED",
    "EXIT_DESTINATION", "EXIT_DBT_FAILED", "EXIT_INTERRUPTED", "EXIT_TERMINATED", "INTERRUPTED_MESSAGE",
    # what the doors' helpers share with it (the demo, signals, state homes, shop lists)
    "DEFAULT_DUCKDB_PATH", "DEMO_API_LABEL", "DEMO_DATASET", "DEMO_DUCKDB_PATH", "TerminationRequested", "api_label",
    "as_sync_failed", "autosync_error_in", "default_pipelines_dir", "demo_target", "duckdb_destination",
    "finish_interrupted_run", "marts_pipeline", "raise_if_interrupted", "raise_on_interrupts",
    "refuse_non_demo_warehouse", "run_with_schema_retry", "shop_staging_layout", "start_date_warning", "state_home",
    "visible_shop_ids", "world_today",
]

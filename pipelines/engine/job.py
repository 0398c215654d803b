"""A sync job: what to sync, where, how (its summary is summary.py's)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

from autosync_source.settings import RESOURCE_NAMES
from pipelines.engine.errors import SyncFailed
from pipelines.engine.target import Target


@dataclass
class SyncJob:
    target: Target = field(default_factory=Target)
    door: str = "library"  # who asked: cli, demo, dagster, airflow, webhook, ... (in the sync log)
    shops: Optional[Sequence[int]] = None  # default: [sources.autosync] shops, else every shop the credentials see
    resources: Optional[Sequence[str]] = None  # default: every resource
    start_date: Optional[str] = None  # where a first sync starts (ignored once cursors exist)
    end_date: Optional[str] = None  # cursors never move past it
    window: bool = False  # read exactly [start_date, end_date] with throwaway cursors (a backfill)
    full_refresh: bool = False  # drop the selected tables and their cursors, reload everything
    reconcile_deletes: bool = False  # reconcile now (it also runs when its schedule says so)
    run_dbt: bool = False
    dbt_vars: Dict[str, Any] = field(default_factory=dict)  # over [autosync.dbt_vars] (the demo: its as_of_date)
    base_url: Optional[str] = None  # else dlt config; the key's environment otherwise
    api_key: Optional[str] = field(default=None, repr=False)  # else dlt secrets
    api_label: Optional[str] = None  # overrides `api_label()` (the demo's cursors are `demo`)
    # more autosync_source arguments; and the engine's own: max_workers (shops at once, default 4),
    # skip_failing_shops (a failing shop does not stop the others)
    source_options: Dict[str, Any] = field(default_factory=dict)
    progress: Any = None  # a dlt progress collector (the CLI logs progress on stderr)

    def __post_init__(self) -> None:
        if self.window and not self.start_date:
            raise SyncFailed("a window run needs its start_date (and usually its end_date)", category="configuration")
        if self.resources:
            unknown = [name for name in self.resources if name not in RESOURCE_NAMES]
            if unknown:
                raise SyncFailed(f"Unknown resource(s) {unknown}. Choose among: {', '.join(RESOURCE_NAMES)}.",
                                 category="configuration")

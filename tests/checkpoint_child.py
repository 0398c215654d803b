"""A sync in checkpoints, as a door (CLI, orchestrator) runs it, in its own process so a test can
SIGKILL it: finish what a killed run left behind (run.py's rule), then run loads until the
source says the sync is complete. One stderr line per committed checkpoint.

    python tests/checkpoint_child.py BASE_URL API_KEY DUCKDB_PATH PIPELINES_DIR CHECKPOINT_REQUESTS
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dlt  # noqa: E402

from autosync_source import RequestStats, autosync_source, run_in_checkpoints  # noqa: E402
from pipelines.run import _finish_interrupted_run, duckdb_destination  # noqa: E402


def main() -> int:
    base_url, api_key, duckdb_path, pipelines_dir, checkpoint_requests = sys.argv[1:6]
    pipeline = dlt.pipeline(
        pipeline_name="autosync", destination=duckdb_destination(duckdb_path),
        dataset_name="autosync_raw", pipelines_dir=pipelines_dir,
    )
    _finish_interrupted_run(pipeline)

    def once(checkpoint):
        stats = RequestStats()
        pipeline.run(autosync_source(
            base_url=base_url, api_key=api_key, request_stats=stats, checkpoint=checkpoint,
            checkpoint_minutes=0, checkpoint_requests=int(checkpoint_requests), progress="quiet",
        ))
        print(f"checkpoint committed: {stats.requests} requests, complete={checkpoint.complete}", file=sys.stderr, flush=True)

    run_in_checkpoints(once)
    return 0


if __name__ == "__main__":
    sys.exit(main())

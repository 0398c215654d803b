"""Two workers, two shops, one Postgres dataset, at the same time: both complete, no cross-talk.

Each worker is its own process (as an Airflow or Dagster worker would be) running
`pipelines.orchestration.sync_shop`; a barrier releases them together so that both create the
dataset, the `_dlt_*` tables and the raw tables at the same moment.
"""
from __future__ import annotations

import multiprocessing
import uuid

import pytest

from autosync_emulator import Emulator
from pipelines.orchestration import Warehouse, make_pipeline, shop_pipeline_name
from source_helpers import RESOURCES, compare_with_truth

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SHOPS_SYNCED = (1, 2)  # shop 3 exists at the source and must not appear in the warehouse


def _worker(shop_id, base_url, api_key, warehouse, barrier, results):
    # a spawned process: nothing is inherited but the environment and these arguments
    from pipelines.orchestration import sync_shop

    try:
        barrier.wait(timeout=60)
        summary = sync_shop(shop_id, warehouse, base_url=base_url, api_key=api_key)
        results.put((shop_id, "ok", summary))
    except BaseException as failure:  # the parent reports it; a child traceback is easy to miss
        results.put((shop_id, "failed", f"{type(failure).__name__}: {failure}"))


def _drop_schemas(dataset: str) -> None:
    import psycopg2

    with psycopg2.connect(PG_URL) as connection, connection.cursor() as cursor:
        cursor.execute("select nspname from pg_namespace where nspname = %s or nspname like %s",
                       (dataset, dataset + "\\_staging%"))
        for (schema,) in cursor.fetchall():
            cursor.execute(f'drop schema "{schema}" cascade')


def _schemas(dataset: str) -> set:
    import psycopg2

    with psycopg2.connect(PG_URL) as connection, connection.cursor() as cursor:
        cursor.execute("select nspname from pg_namespace where nspname like %s", (dataset + "%",))
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_sync_two_shops_into_one_postgres_dataset(tmp_path, monkeypatch):
    # dlt's config resolution insists on a password; the local server trusts and ignores it
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", PG_URL.replace("postgres@", "postgres:trust@"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    dataset = f"autosync_orch_{uuid.uuid4().hex[:8]}"
    warehouse = Warehouse(destination="postgres", dataset=dataset, pipelines_dir=str(tmp_path / "workers"))
    spawn = multiprocessing.get_context("spawn")  # no fork of a process with the emulator's threads
    try:
        with Emulator(seed=11, shops=3, work_orders=25, rate_limit=0) as emulator:
            barrier, results = spawn.Barrier(len(SHOPS_SYNCED)), spawn.Queue()
            workers = [
                spawn.Process(target=_worker, args=(shop, emulator.base_url, emulator.api_key, warehouse, barrier, results))
                for shop in SHOPS_SYNCED
            ]
            for worker in workers:
                worker.start()
            outcomes = {}
            for _ in workers:
                shop_id, status, detail = results.get(timeout=150)
                outcomes[shop_id] = (status, detail)
            for worker in workers:
                worker.join(timeout=30)
            truth = emulator.truth()
            base_url = emulator.base_url

        assert all(status == "ok" for status, _ in outcomes.values()), outcomes
        for shop_id, (_, summary) in outcomes.items():
            assert summary["pipeline"] == shop_pipeline_name(shop_id, base_url=base_url)
            assert summary["rows"].get("work_orders", 0) > 0

        # Tables: exactly the truth of shops 1 and 2 (nothing missing, doubled, or from shop 3).
        reader = make_pipeline(Warehouse(destination="postgres", dataset=dataset,
                                         pipelines_dir=str(tmp_path / "reader")), pipeline_name="autosync_reader")
        problems = compare_with_truth(reader, truth, shops=list(SHOPS_SYNCED))
        assert not problems, "\n".join(problems)

        # State: each shop's pipeline, restored from the warehouse alone by a fresh worker, holds
        # cursors for its own shop only, on every resource.
        for shop_id in SHOPS_SYNCED:
            fresh = make_pipeline(Warehouse(destination="postgres", dataset=dataset,
                                            pipelines_dir=str(tmp_path / f"fresh_{shop_id}")), shop_id,
                                  base_url=base_url)
            fresh.sync_destination()
            from autosync_source.cursors import shops_with_cursors

            for resource in RESOURCES:
                assert shops_with_cursors(fresh.state, resource) == [str(shop_id)], (shop_id, resource)

        # Staging: one dataset per shop; no shared `<dataset>_staging` two loads could both truncate.
        schemas = _schemas(dataset)
        assert {f"{dataset}_staging_shop_{shop}" for shop in SHOPS_SYNCED} <= schemas
        assert f"{dataset}_staging" not in schemas
    finally:
        for worker in locals().get("workers", []):
            if worker.is_alive():
                worker.kill()
        _drop_schemas(dataset)

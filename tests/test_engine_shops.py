"""The engine's unit of work is the shop (issue #20): shops run at once, each in its own state home,
loading into Postgres at once; and a shop the key no longer sees is reported, not deleted (#21)."""
from __future__ import annotations

import uuid

import dlt
import pytest

from autosync_emulator import Emulator
from reliability_helpers import assert_exactly_truth, duckdb_at
from source_helpers import read_table

PG_URL = "postgresql://postgres:trust@127.0.0.1:5432/test"


def _drop_postgres(dataset: str) -> None:
    import psycopg2

    with psycopg2.connect(PG_URL.replace(":trust", "")) as connection, connection.cursor() as cursor:
        cursor.execute("select nspname from pg_namespace where nspname like %s", (dataset + "%",))
        for (schema,) in cursor.fetchall():
            cursor.execute(f'drop schema "{schema}" cascade')


@pytest.mark.postgres
def test_shops_run_at_once_into_postgres_each_through_its_own_staging_and_cursors(tmp_path, monkeypatch):
    from autosync_source.cursors import shops_with_cursors
    from pipelines.engine import SyncJob, Target, api_label, run_sync, state_home
    from pipelines.engine import sync as engine_sync

    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", PG_URL)
    dataset = f"shops_at_once_{uuid.uuid4().hex[:8]}"
    # count the shops loading at the same instant: more than one proves the loads overlap
    loading, most = [0], [0]
    original = engine_sync.run_with_schema_retry

    def counted(run, *args, **kwargs):
        loading[0] += 1
        most[0] = max(most[0], loading[0])
        try:
            return original(run, *args, **kwargs)
        finally:
            loading[0] -= 1

    monkeypatch.setattr(engine_sync, "run_with_schema_retry", counted)
    try:
        with Emulator(seed=81, shops=4, work_orders=15) as emu:
            target = Target(destination="postgres", dataset=dataset, pipelines_dir=str(tmp_path / "p"))
            job = SyncJob(target, base_url=emu.base_url, api_key=emu.api_key,
                          source_options={"max_workers": 4, "progress": "quiet"})
            summary = run_sync(job)
            assert summary.shops == [1, 2, 3, 4] and summary.status == "ok"
            reader = dlt.pipeline(f"reader_{uuid.uuid4().hex[:6]}", destination=dlt.destinations.postgres(PG_URL),
                                  dataset_name=dataset, pipelines_dir=str(tmp_path / "readers"))
            assert_exactly_truth(reader, emu.truth())
            assert most[0] > 1, "the shops' loads never overlapped"
            for shop_id in (1, 2, 3, 4):
                home = target.pipeline(state_home(api_label(emu.base_url), shop_id))
                assert shops_with_cursors(home.state, "work_orders") == [str(shop_id)]
            # the run's request count is the floor: the shops listed once, no shop reads it again
            again = run_sync(job)
            assert again.requests["by_resource"]["shops"] == {"list": 1}
    finally:
        _drop_postgres(dataset)


def test_a_shop_the_key_no_longer_sees_is_reported_and_kept_not_deleted(tmp_path):
    """On a run over every visible shop, a shop the warehouse holds and the key no longer sees is
    named (warning, summary, sync log) and its rows stay as they are, even when deletes are
    reconciled; a job that names it explicitly still fails."""
    from pipelines.engine import SyncFailed, SyncJob, Target, run_sync, sync_log
    from pipelines.engine.sync import marts_pipeline

    with Emulator(seed=82, shops=3, work_orders=8) as emu:
        target = Target(destination="duckdb", duckdb_path=str(tmp_path / "raw.duckdb"), pipelines_dir=str(tmp_path / "p"))
        run_sync(SyncJob(target, base_url=emu.base_url, api_key=emu.api_key, source_options={"progress": "quiet"}))
        raw = duckdb_at(tmp_path / "raw.duckdb")
        before = {row["id"] for row in read_table(raw, "work_orders") if row["shop_id"] == 3}
        assert before

        narrower = emu.create_api_key(shops=[1, 2])  # access to shop 3 withdrawn
        summary = run_sync(SyncJob(target, base_url=emu.base_url, api_key=narrower, reconcile_deletes=True,
                                   source_options={"progress": "quiet"}))
        assert summary.shops == [1, 2] and summary.shops_not_visible == [3]
        assert any("[3] are in the warehouse but these credentials no longer see them" in w for w in summary.warnings)
        shop_3 = [row for row in read_table(raw, "work_orders") if row["shop_id"] == 3]
        assert {row["id"] for row in shop_3} == before
        assert all(row["_autosync_deleted_at"] is None for row in shop_3)  # access lost is not data deleted
        log = sync_log.read(marts_pipeline(target))
        assert {row["status"] for row in log if row["shop_id"] == 3 and row["run_id"] == summary.run_id} == {"not_visible"}

        with pytest.raises(SyncFailed) as named:
            run_sync(SyncJob(target, base_url=emu.base_url, api_key=narrower, shops=[3], source_options={"progress": "quiet"}))
        assert "[3] are not visible to these credentials" in named.value.message

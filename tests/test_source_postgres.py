"""The connector against the real PostgreSQL server on 127.0.0.1:5432: truth equality after a
full and an incremental sync, and a destination that is down or refuses loses nothing."""
from __future__ import annotations

import socket
import uuid

import dlt
import psycopg2
import pytest

from autosync_emulator import Emulator
from pipelines.run import main
from reliability_helpers import engine_cursors, engine_homes
from source_helpers import (
    advance_with_changes,
    assert_raw_equals_truth,
    loaded_rows,
    request_floor,
    sync,
)

pytestmark = pytest.mark.postgres

POSTGRES = "postgresql://postgres:postgres@127.0.0.1:5432/test"  # trust auth: dlt wants a password, any will do
NO_CREATE_ROLE = "autosync_no_create"


def _execute(sql: str) -> None:
    with psycopg2.connect(POSTGRES) as connection:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)


@pytest.fixture
def dataset():
    name = f"autosync_raw_t{uuid.uuid4().hex[:10]}"
    yield name
    for schema in (name, f"{name}_staging"):
        _execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_pipeline(tmp_path, dataset: str, credentials: str = POSTGRES, name: str = "autosync_pg") -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.postgres(credentials=credentials),
        dataset_name=dataset,
        pipelines_dir=str(tmp_path / "dlt_pipelines"),
    )


def test_full_and_incremental_sync_equal_truth_in_postgres(tmp_path, dataset):
    with Emulator(seed=31, shops=2, work_orders=30) as emu:
        pipeline = postgres_pipeline(tmp_path, dataset)
        before = emu.truth()
        _, stats = sync(pipeline, emu)
        assert_raw_equals_truth(pipeline, before)
        assert stats.as_dict()["by_resource"] == request_floor(None, before)

        advance_with_changes(emu, hours=5)
        after = emu.truth()
        _, stats = sync(pipeline, emu)
        assert_raw_equals_truth(pipeline, after)
        assert stats.as_dict()["by_resource"] == request_floor(before, after)

        _, stats = sync(pipeline, emu)
        assert loaded_rows(pipeline) == {}


def _cli(tmp_path, emu, dataset, monkeypatch, credentials):
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", credentials)
    return main([
        "--base-url", emu.base_url, "--api-key", emu.api_key, "--destination", "postgres",
        "--dataset", dataset, "--pipelines-dir", str(tmp_path / "cli_pipelines"), "--no-dbt",
        "--resources", "customers,work_orders",
    ])


def test_a_destination_that_is_down_is_one_message_and_loses_nothing(tmp_path, dataset, monkeypatch, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with Emulator(seed=32, shops=2, work_orders=15) as emu:
        assert _cli(tmp_path, emu, dataset, monkeypatch, POSTGRES) == 0
        advance_with_changes(emu, hours=3)
        capsys.readouterr()
        code = _cli(tmp_path, emu, dataset, monkeypatch, f"postgresql://postgres:x@127.0.0.1:{closed}/test")
        err = capsys.readouterr().err
        assert code == 3
        assert "destination postgres" in err and "DESTINATION__POSTGRES__CREDENTIALS" in err
        assert "Traceback" not in err
        # back up: the changes made while it was down arrive, nothing is lost
        assert _cli(tmp_path, emu, dataset, monkeypatch, POSTGRES) == 0
        pipeline = postgres_pipeline(tmp_path, dataset, name="probe")
        assert_raw_equals_truth(pipeline, emu.truth(), resources=["customers", "work_orders"])


def test_a_destination_that_refuses_the_load_moves_no_cursor(tmp_path, dataset, monkeypatch, capsys):
    # A role that may connect but not create a schema: extraction succeeds, the load fails.
    _execute(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{NO_CREATE_ROLE}') "
             f"THEN CREATE ROLE {NO_CREATE_ROLE} LOGIN; END IF; END $$")
    _execute(f"REVOKE CREATE ON DATABASE test FROM {NO_CREATE_ROLE}")
    refusing = f"postgresql://{NO_CREATE_ROLE}:x@127.0.0.1:5432/test"
    with Emulator(seed=33, shops=2, work_orders=15) as emu:
        code = _cli(tmp_path, emu, dataset, monkeypatch, refusing)
        err = capsys.readouterr().err
        assert code == 3 and "destination postgres" in err
        cursors = engine_cursors(tmp_path / "cli_pipelines")
        assert not any(cursors.values()), f"cursors moved although nothing was loaded: {cursors}"
        assert engine_homes(tmp_path / "cli_pipelines"), "the failed run left no pipeline to look into"
        assert not any(home.has_pending_data for home in engine_homes(tmp_path / "cli_pipelines"))
        # the next run (with rights) is a first run again: every row, from start_date
        assert _cli(tmp_path, emu, dataset, monkeypatch, POSTGRES) == 0
        pipeline = postgres_pipeline(tmp_path, dataset, name="probe")
        assert_raw_equals_truth(pipeline, emu.truth(), resources=["customers", "work_orders"])


def test_a_url_without_a_password_names_the_password_and_where_to_set_it(tmp_path, dataset, monkeypatch, capsys):
    with Emulator(seed=34, shops=1, work_orders=3) as emu:
        code = _cli(tmp_path, emu, dataset, monkeypatch, "postgresql://postgres@127.0.0.1:5432/test")
    err = capsys.readouterr().err
    assert code == 3
    assert "credentials.password (DESTINATION__POSTGRES__CREDENTIALS__PASSWORD)" in err
    assert "postgresql://user:PASSWORD@" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["UPPER Case", 'a"; drop table x; --'])
def test_a_dataset_name_the_warehouse_would_rename_is_refused_before_any_request(tmp_path, monkeypatch, capsys, name):
    with Emulator(seed=35, shops=1, work_orders=3) as emu:
        emu.reset_request_log()
        code = _cli(tmp_path, emu, name, monkeypatch, POSTGRES)
        requests = emu.request_log()["total"]
    err = capsys.readouterr().err
    assert code == 2
    assert f"The dataset name '{name}' would be renamed to '" in err and "--dataset " in err
    assert requests == 0, "refused before any request"

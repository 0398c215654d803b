"""Scenario 7, hard deletes: the API deletes without a trace; a reconciliation pass lists every
id per shop and resource and marks the missing rows deleted (never drops them)."""
from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from autosync_emulator import Emulator
from autosync_source.deletes import last_reconciled_at, reconciliation_due, remember_reconciliation
from pipelines.run import main
from reliability_helpers import assert_exactly_truth, deletion_problems, duckdb_at
from source_helpers import RESOURCES, compare_with_truth, read_table

SHOP_SCOPED = [name for name in RESOURCES if name != "shops"]


def cli(tmp_path, capsys, emu, *extra):
    code = main([
        "--base-url", emu.base_url, "--api-key", emu.api_key, "--no-dbt", "--json",
        "--duckdb-path", str(tmp_path / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "p"), *extra,
    ])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_reconciliation_marks_exactly_the_hard_deleted_rows_and_reports_its_cost(tmp_path, capsys):
    with Emulator(seed=71, shops=2, work_orders=20) as emu:
        first = cli(tmp_path, capsys, emu)
        assert "reconciliation" not in first  # the first run starts the cadence clock only
        emu.advance(hours=48)  # new leads, drafts and appointments: the ones deletes pick
        cli(tmp_path, capsys, emu)
        emu.advance(hours=48)  # the activity hard-deletes customers, work orders, appointments
        truth = emu.truth()
        deleted = {name: ids for name, ids in truth["deleted"].items() if ids}
        assert len(deleted) >= 2, deleted

        second = cli(tmp_path, capsys, emu)
        raw = duckdb_at(tmp_path / "raw.duckdb")
        # The incremental sync cannot see a hard delete: the rows are still there, unmarked.
        stale = [line for line in compare_with_truth(raw, truth, allow_unreconciled_deletes=False) if "not in the truth" in line]
        assert stale, "the test needs rows deleted after they were loaded"
        assert "reconciliation" not in second

        emu.reset_request_log()
        summary = cli(tmp_path, capsys, emu, "--reconcile-deletes")
        rec = summary["reconciliation"]
        loaded_deleted = {
            name: len(set(ids) & {row["id"] for row in read_table(raw, name)}) for name, ids in deleted.items()
        }
        assert rec["marked_deleted"] == {name: n for name, n in loaded_deleted.items() if n}
        assert rec["restored"] == {} and rec["not_yet_loaded"] == {}
        assert deletion_problems(raw, truth) == []
        # the trace the incremental dbt models read: every marked id, with a mark id newer than
        # every load id (an UPDATE gives the row no new _dlt_load_id)
        marks = read_table(raw, "_autosync_delete_marks")
        assert {(m["table_name"], m["id"]) for m in marks if m["is_deleted"]} == {
            (name, i) for name, ids in deleted.items() for i in ids if i in {row["id"] for row in read_table(raw, name)}}
        newest_load = max(row["_dlt_load_id"] for name in deleted for row in read_table(raw, name))
        assert all(m["mark_id"] > newest_load for m in marks)
        # history is kept: the deleted rows (and their children) are still in the raw tables
        assert_exactly_truth(raw, truth)  # tolerates marked rows of deleted records only

        # cost: one page per 100 ids per shop and resource, one GET per delete (each shop reconciles
        # in its own pipeline, for its own shop: no shops listing)
        live = truth["objects"]
        pages = sum(
            max(1, math.ceil(sum(1 for row in live[name] if row["shop_id"] == shop["id"]) / 100))
            for name in SHOP_SCOPED for shop in live["shops"]
        )
        expected = pages + sum(rec["marked_deleted"].values())
        assert rec["requests"] == expected
        served = emu.request_log()["total"]
        assert served == summary["requests"] + rec["requests"]

        # twice in a row: nothing more to mark, the same listing cost without confirmations
        again = cli(tmp_path, capsys, emu, "--reconcile-deletes")["reconciliation"]
        assert again["marked_deleted"] == {} and again["requests"] == pages
        assert deletion_problems(raw, truth) == []


def test_a_row_that_reappears_is_unmarked_and_rows_the_syncs_passed_by_are_reloaded(tmp_path, capsys):
    with Emulator(seed=72, shops=1, work_orders=20) as emu:
        cli(tmp_path, capsys, emu, "--resources", "customers")
        raw = duckdb_at(tmp_path / "raw.duckdb")
        customers = read_table(raw, "customers")
        wrongly_marked, vanished, outdated = customers[0]["id"], customers[1]["id"], customers[2]["id"]
        # what a skipped page row or a too-late commit leaves behind: a row missing, a row old
        with raw.sql_client() as sql:
            table = sql.make_qualified_table_name("customers")
            sql.execute_sql(f"UPDATE {table} SET _autosync_deleted_at = now() WHERE id = {wrongly_marked}")
            sql.execute_sql(f"DELETE FROM {table} WHERE id = {vanished}")
            sql.execute_sql(f"UPDATE {table} SET notes = 'old', updated_at = updated_at - INTERVAL 1 DAY WHERE id = {outdated}")
        # an incremental sync cannot see either: they are behind its cursor
        cli(tmp_path, capsys, emu, "--resources", "customers")
        assert compare_with_truth(raw, emu.truth(), resources=["customers"]) != []
        rec = cli(tmp_path, capsys, emu, "--resources", "customers", "--reconcile-deletes")["reconciliation"]
        assert rec["restored"] == {"customers": 1}
        assert rec["not_yet_loaded"] == {"customers": 1} and rec["stale"] == {"customers": 1}
        assert rec["cursors_rewound"] == {"customers": 1}
        assert rec["marked_deleted"] == {}
        # the rewound cursor is written in the state's current shape (cursors.py): before, deletes.py
        # wrote an older one of its own
        from autosync_source.cursors import shop_cursors
        from pipelines.engine import Target, api_label, state_home

        home = Target(destination="duckdb", duckdb_path=str(tmp_path / "raw.duckdb"),
                      pipelines_dir=str(tmp_path / "p")).pipeline(state_home(api_label(emu.base_url), 1))
        rewound = shop_cursors(home.state, 1)["customers"]
        assert rewound.recent_rows == {} and rewound.updated_at is not None
        assert "rows_at_cursor" not in json.dumps(home.state, default=str)
        row = [r for r in read_table(raw, "customers") if r["id"] == wrongly_marked][0]
        assert row["_autosync_deleted_at"] is None
        assert [(m["table_name"], m["id"], m["is_deleted"]) for m in read_table(raw, "_autosync_delete_marks")] \
            == [("customers", wrongly_marked, False)]  # the un-mark leaves its trace too
        # the next sync reads from the rewound cursor: exact again
        cli(tmp_path, capsys, emu, "--resources", "customers")
        assert_exactly_truth(raw, emu.truth(), resources=["customers"])


def test_a_delete_during_the_listing_never_marks_a_live_row(tmp_path, capsys):
    # Deleting a low id while the id pages are read shifts every later row one place forward:
    # the row at the page boundary (id rank 101) is not listed. The GET confirmation keeps it live.
    # The delete runs on the server just before page 2 of the id listing is computed (a list
    # hook, under the store lock), not on a timer: the same race under any load.
    from autosync_source.deletes import reconcile_deletes

    with Emulator(seed=73, shops=1, work_orders=240) as emu:
        cli(tmp_path, capsys, emu, "--resources", "customers")
        customers = sorted(c["id"] for c in emu.truth()["objects"]["customers"])
        assert len(customers) > 100
        victim = customers[5]

        hooked = []

        def hard_delete(core, info) -> None:  # through the store: the API refuses to delete a customer with history
            hooked.append((info["query"].sort, info["page"]))
            core.store.delete("customers", victim)

        emu.before_list("/v1/shops/1/customers", hard_delete, request=2)
        raw = duckdb_at(tmp_path / "raw.duckdb")
        report = reconcile_deletes(raw, base_url=emu.base_url, api_key=emu.api_key, resources=["customers"]).as_dict()
        emu.clear_list_hooks()
        assert hooked == [("id", 2)]  # just before page 2 of the id listing
        truth = emu.truth()
        assert victim in truth["deleted"]["customers"]
        # the victim was listed on page 1 before it went: this pass cannot know; no live row is marked
        assert report["requests_by_resource"]["customers"]["confirm"] == 1, "the shifted row was confirmed live"
        assert report["marked_deleted"] == {}
        assert deletion_problems(raw, truth, resources=["customers"]) == [
            f"customers id {victim} is deleted at the source but not marked"
        ]
        # the next pass sees it
        again = reconcile_deletes(raw, base_url=emu.base_url, api_key=emu.api_key, resources=["customers"]).as_dict()
        assert again["marked_deleted"] == {"customers": 1}
        assert deletion_problems(raw, truth, resources=["customers"]) == []


def test_the_cadence_runs_the_reconciliation_every_n_hours(tmp_path):
    raw = duckdb_at(tmp_path / "cadence.duckdb", name="cadence")
    now = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    assert reconciliation_due(raw, None, now) is False  # no cadence: only when forced
    assert reconciliation_due(raw, 24, now) is False  # first run: starts the clock
    assert last_reconciled_at(raw) == now
    assert reconciliation_due(raw, 24, now + timedelta(hours=23)) is False
    assert reconciliation_due(raw, 24, now + timedelta(hours=24)) is True
    remember_reconciliation(raw, now + timedelta(hours=24))
    assert reconciliation_due(raw, 24, now + timedelta(hours=30)) is False


def test_a_scheduled_run_reconciles_when_the_cadence_is_due(tmp_path, capsys, monkeypatch):
    from autosync_source import deletes

    clock = [datetime(2026, 1, 1, 2, tzinfo=timezone.utc)]
    monkeypatch.setattr(deletes, "utc_now", lambda: clock[0])  # the cadence's clock, stepped by the test
    with Emulator(seed=74, shops=1, work_orders=15) as emu:
        monkeypatch.setenv("AUTOSYNC__RECONCILE_DELETES_EVERY_HOURS", "24")
        assert "reconciliation" not in cli(tmp_path, capsys, emu, "--resources", "customers,appointments")
        emu.advance(hours=200)
        clock[0] += timedelta(hours=23)  # not yet due
        assert "reconciliation" not in cli(tmp_path, capsys, emu, "--resources", "customers,appointments")
        clock[0] += timedelta(hours=2)  # 25 h after the clock started: due
        summary = cli(tmp_path, capsys, emu, "--resources", "customers,appointments")
        assert "reconciliation" in summary
        assert deletion_problems(duckdb_at(tmp_path / "raw.duckdb"), emu.truth(), resources=["customers", "appointments"]) == []


@pytest.mark.postgres
def test_reconciliation_marks_deletes_in_postgres_too(tmp_path):
    import uuid

    import dlt

    from autosync_source.deletes import reconcile_deletes
    from source_helpers import sync

    dataset = "rel_deletes_" + uuid.uuid4().hex[:8]
    pipeline = dlt.pipeline(
        "rel_deletes_pg", destination=dlt.destinations.postgres(credentials="postgresql://postgres:postgres@127.0.0.1:5432/test"),
        dataset_name=dataset, pipelines_dir=str(tmp_path / "p"),
    )
    try:
        with Emulator(seed=75, shops=1, work_orders=10) as emu:
            sync(pipeline, emu, resources=["customers"])
            victim = read_table(pipeline, "customers")[0]["id"]
            with emu.core.store.lock:  # a hard delete, as the API does it: no trace
                emu.core.store.delete("customers", victim)
            report = reconcile_deletes(pipeline, base_url=emu.base_url, api_key=emu.api_key, resources=["customers"])
            assert report.as_dict()["marked_deleted"] == {"customers": 1}
            assert deletion_problems(pipeline, emu.truth(), resources=["customers"]) == []
    finally:
        with pipeline.sql_client() as sql:
            for schema in (dataset, dataset + "_staging"):
                sql.execute_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_an_orchestrated_deployment_marks_hard_deletes_on_its_schedule(tmp_path, monkeypatch):
    # The Airflow task's function (what each mapped shop task runs), with the cadence a deployment
    # configures: the engine reconciles when it is due, in every door, not only in the CLI.
    from pipelines.engine import Target
    from pipelines.orchestration import sync_shop_for_interval

    monkeypatch.setenv("AUTOSYNC__RECONCILE_DELETES_EVERY_HOURS", "0.0001")  # due again after 0.36 s
    warehouse = Target("duckdb", "autosync_raw", str(tmp_path / "raw.duckdb"), str(tmp_path / "p"))
    with Emulator(seed=71, shops=1, work_orders=20) as emu:
        monkeypatch.setenv("SOURCES__AUTOSYNC__API_KEY", emu.api_key)
        monkeypatch.setenv("SOURCES__AUTOSYNC__BASE_URL", emu.base_url)
        first = sync_shop_for_interval(1, None, None, False, warehouse)
        assert "reconciliation" not in first  # the first run starts the clock
        emu.advance(hours=48)  # new leads, drafts and appointments: the ones deletes pick
        assert "reconciliation" in sync_shop_for_interval(1, None, None, False, warehouse)  # due: it ran
        emu.advance(hours=48)  # the activity hard-deletes customers, work orders, appointments
        raw = duckdb_at(tmp_path / "raw.duckdb")
        truth = emu.truth()
        assert deletion_problems(raw, truth), "the test needs rows deleted after they were loaded"
        third = sync_shop_for_interval(1, None, None, False, warehouse)
    assert sum(third["reconciliation"]["marked_deleted"].values()) > 0
    assert deletion_problems(raw, truth) == []
    assert_exactly_truth(raw, truth, shops=[1])

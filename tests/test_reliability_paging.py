"""Scenarios 1-3: the source changes while we page (drift), many records share one second
(ties), and records become visible after their `updated_at` (late commits).

What is asserted, precisely: a truth snapshot is taken right before a sync starts; after the
sync every record of that snapshot (not deleted since) is in the warehouse at that version or
a newer one. Then the source is frozen (activity stopped), one more sync runs, and the raw
tables equal the truth row for row and value for value, with no duplicate keys.
"""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any, Dict, List

import pytest

import autosync_source.estimate as estimate_module
import autosync_source.sync as sync_module
from autosync_emulator import Emulator
from autosync_emulator.world import iso
from autosync_source.paging import UpdatedAtPaginator
from reliability_helpers import assert_exactly_truth
from source_helpers import RESOURCES, compare_with_truth, duckdb_pipeline, loaded_rows, read_table, sync

SMALL_PAGES = 10  # many page boundaries in a small world


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def behind_snapshot(pipeline, snapshot: Dict[str, Any], final_truth: Dict[str, Any]) -> List[str]:
    """Records of the snapshot the warehouse lacks, or holds at an older version."""
    problems = []
    for resource in RESOURCES:
        deleted = set(final_truth["deleted"].get(resource, []))
        loaded = {row["id"]: row["updated_at"] for row in read_table(pipeline, resource)}
        for record in snapshot["objects"][resource]:
            if record["id"] in deleted:
                continue
            have = loaded.get(record["id"])
            if have is None:
                problems.append(f"{resource} id {record['id']} (updated {record['updated_at']}) is missing")
            elif have.astimezone(timezone.utc) < _ts(record["updated_at"]):
                problems.append(f"{resource} id {record['id']}: warehouse has {have}, source had {record['updated_at']} before the sync")
    return problems


@pytest.fixture
def small_pages(monkeypatch):
    small = functools.partial(UpdatedAtPaginator, page_size=SMALL_PAGES)
    monkeypatch.setattr(sync_module, "UpdatedAtPaginator", small)
    # the progress estimate reads each listing's first page, which the reader then continues from
    monkeypatch.setattr(estimate_module, "UpdatedAtPaginator", small)


def _sync_under_drift(tmp_path, emu, rounds: int = 2):
    """Syncs while the emulator's activity updates and creates records; returns the problems."""
    pipeline = duckdb_pipeline(tmp_path)
    # every list page takes a little while, so the data moves between pages
    emu.set_faults([{"method": "GET", "path": "/v1/shops/*/*", "behaviour": "slow", "delay": 0.03}])
    problems: List[str] = []
    reanchors = []
    original_reanchor = UpdatedAtPaginator._reanchor

    def counting_reanchor(self, anchor):
        reanchors.append(anchor)
        original_reanchor(self, anchor)

    UpdatedAtPaginator._reanchor = counting_reanchor
    # Updates and creations only: a hard delete of a row already read, with a creation between the
    # same two page requests, leaves `total` unchanged and can hide one row from this sync (the
    # paginator's documented known limit; the delete reconciliation is the backstop, tested in
    # test_reliability_deletes.py). With deletes it failed once in five full runs here, under load.
    emu.core.activity._delete = lambda shop_id: False
    try:
        emu.start_background_activity(hours_per_second=1.5, tick_seconds=0.05)
        for _ in range(rounds):
            snapshot = emu.truth()
            sync(pipeline, emu, max_workers=2)
            problems += behind_snapshot(pipeline, snapshot, emu.truth())
    finally:
        UpdatedAtPaginator._reanchor = original_reanchor
        emu.stop_background_activity()
        emu.set_faults([])
    return pipeline, problems, reanchors


def test_drift_under_continuous_writes_loses_nothing(tmp_path, small_pages):
    with Emulator(seed=81, shops=1, work_orders=60) as emu:
        pipeline, problems, reanchors = _sync_under_drift(tmp_path, emu)
        assert reanchors, "no drift happened while paging: the test proves nothing"
        assert problems == []
        # frozen source, one more sync: exactly the truth
        sync(pipeline, emu)
        assert_exactly_truth(pipeline, emu.truth())


def test_drift_page_numbers_alone_would_lose_rows(tmp_path, small_pages, monkeypatch):
    """The same drift with re-anchoring switched off: rows are skipped. Keeps the test above sharp."""
    monkeypatch.setattr(UpdatedAtPaginator, "_reanchor", lambda self, anchor: None)
    with Emulator(seed=81, shops=1, work_orders=60) as emu:
        pipeline, problems, _ = _sync_under_drift(tmp_path, emu)
        assert problems, "pure page-number paging lost nothing: the drift is too weak to test anything"


# -- ties ------------------------------------------------------------------------------------
def _bulk_edit(emu, resource: str, shop_id: int, count: int, note: str, skip: int = 0) -> List[int]:
    """One bulk edit: `count` records of one shop get the same updated_at second (the clock's)."""
    store = emu.core.store
    with store.lock:
        stamp = iso(store.clock)
        ids = sorted(oid for oid, obj in store.tables[resource].latest.items() if obj["shop_id"] == shop_id)[skip:skip + count]
        for oid in ids:
            store.put(resource, {**store.latest(resource, oid), "notes": note, "updated_at": stamp})
    return ids


@pytest.mark.parametrize("inclusive", [False, True], ids=["strict", "inclusive"])
def test_hundreds_of_ties_across_page_boundaries(tmp_path, inclusive):
    with Emulator(seed=82, shops=1, work_orders=600, updated_after_inclusive=inclusive) as emu:
        pipeline = duckdb_pipeline(tmp_path)
        sync(pipeline, emu, resources=["customers"])
        emu.advance(seconds=30)
        tied = _bulk_edit(emu, "customers", 1, 150, "bulk edit one")  # 150 rows in one second: 2 pages
        _, stats = sync(pipeline, emu, resources=["customers"])
        assert loaded_rows(pipeline)["customers"] == 150
        assert_exactly_truth(pipeline, emu.truth(), resources=["customers"])
        # 120 more rows change within that same second after the sync: the cursor sits on that
        # second, so the next listing has 270 rows of one second (3 pages), 150 already loaded
        more = _bulk_edit(emu, "customers", 1, 120, "bulk edit two", skip=150)
        assert len(tied) == 150 and len(more) == 120
        sync(pipeline, emu, resources=["customers"])
        assert loaded_rows(pipeline)["customers"] == len(more)
        assert_exactly_truth(pipeline, emu.truth(), resources=["customers"])
        # nothing changed since: nothing loaded, although the whole tied second is listed again
        sync(pipeline, emu, resources=["customers"])
        assert loaded_rows(pipeline) == {}


def test_a_second_edit_within_the_same_second_is_loaded(tmp_path):
    """Same `updated_at`, other content: the cursor's fingerprints tell it from the loaded version."""
    with Emulator(seed=84, shops=1, work_orders=30) as emu:
        pipeline = duckdb_pipeline(tmp_path)
        sync(pipeline, emu, resources=["customers"])
        emu.advance(seconds=30)
        first = _bulk_edit(emu, "customers", 1, 3, "first edit")
        sync(pipeline, emu, resources=["customers"])
        assert loaded_rows(pipeline)["customers"] == 3
        second = _bulk_edit(emu, "customers", 1, 1, "second edit, same second")  # the clock has not moved
        assert second == first[:1]
        sync(pipeline, emu, resources=["customers"])
        assert loaded_rows(pipeline)["customers"] == 1  # only the record edited again
        assert_exactly_truth(pipeline, emu.truth(), resources=["customers"])
        sync(pipeline, emu, resources=["customers"])
        assert loaded_rows(pipeline) == {}


# -- late commits ------------------------------------------------------------------------------
def _late_commit_world(tmp_path, lag_seconds: int):
    """Long transactions (30 min late) then short ones (1 s): newer rows show before older ones."""
    emu = Emulator(seed=83, shops=3, work_orders=40).start()
    pipeline = duckdb_pipeline(tmp_path)
    sync(pipeline, emu, lag_seconds=lag_seconds)
    emu.configure(late_commit_seconds=1800)
    emu.advance(hours=2)
    emu.configure(late_commit_seconds=1)
    emu.advance(minutes=25)
    store = emu.core.store
    with store.lock:  # what the server could still show later: updated_at of pending versions
        pending = [(resource, obj) for _due, _seq, resource, _oid, obj in store._pending if obj is not None]
    assert pending, "no late commit was pending at sync time: the test proves nothing"
    sync(pipeline, emu, lag_seconds=lag_seconds)
    from autosync_source.cursors import cursor_positions

    # {(resource, shop id): the cursor's updated_at}
    cursors = {(name, shop["id"]): position for shop in emu.truth()["objects"]["shops"]
               for name, position in cursor_positions(pipeline.state, shop["id"]).items() if position}
    emu.advance(hours=1)  # every pending version is visible now
    sync(pipeline, emu, lag_seconds=lag_seconds)
    return emu, pipeline, pending, cursors


def _anchors_past_pending(pending, cursors, lag_seconds: int) -> List[str]:
    """Versions the server showed later whose updated_at is at or before the next run's anchor."""
    late = []
    for resource, obj in pending:
        cursor = cursors.get((resource, obj["shop_id"]))
        if cursor is None:
            continue
        anchor = _ts(cursor).timestamp() - lag_seconds - 1
        if _ts(obj["updated_at"]).timestamp() <= anchor:
            late.append(f"{resource} id {obj['id']} updated {obj['updated_at']}, next anchor {cursor} - {lag_seconds}s - 1s")
    return late


def test_late_commits_are_caught_when_the_lag_covers_the_delay(tmp_path):
    emu, pipeline, pending, cursors = _late_commit_world(tmp_path, lag_seconds=1800)
    try:
        # the position the next run reads from never passed a version the server showed later
        assert _anchors_past_pending(pending, cursors, 1800) == []
        assert_exactly_truth(pipeline, emu.truth())
    finally:
        emu.stop()


def test_late_commits_are_lost_when_the_lag_is_too_small(tmp_path):
    """The knob matters: with lag 0 the cursor passes rows the server shows later."""
    emu, pipeline, pending, cursors = _late_commit_world(tmp_path, lag_seconds=0)
    try:
        assert _anchors_past_pending(pending, cursors, 0), "no cursor passed a pending version"
        problems = compare_with_truth(pipeline, emu.truth())
        assert problems, "lag 0 lost nothing: the late-commit scenario is too weak"
    finally:
        emu.stop()

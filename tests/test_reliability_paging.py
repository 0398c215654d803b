"""Scenarios 1-3: the source changes while we page (drift), many records share one second
(ties), and records become visible after their `updated_at` (late commits).

What is asserted, precisely: a truth snapshot is taken right before a sync starts; after the
sync every record of that snapshot (not deleted since) is in the warehouse at that version or
a newer one, except in a listing that reported the paging's residual case. Then the source is
frozen, a delete reconciliation and one more sync run, and the raw tables equal the truth row
for row and value for value, with no duplicate keys. The drift runs on the emulator's list
hooks (writes just before each page is computed), not on a timer.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import pytest

from autosync_emulator import Emulator
from autosync_emulator.world import iso
from autosync_source.deletes import reconcile_deletes
from autosync_source.paging import UpdatedAtPaginator
from reliability_helpers import assert_exactly_truth
from source_helpers import RESOURCES, compare_with_truth, duckdb_pipeline, loaded_rows, read_table, sync

SMALL_PAGES = 10  # many page boundaries in a small world


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def behind_snapshot(pipeline, snapshot: Dict[str, Any], final_truth: Dict[str, Any],
                    skip: Optional[Dict[str, List[int]]] = None) -> List[str]:
    """Records of the snapshot the warehouse lacks, or holds at an older version (not counting
    the shops of a resource in `skip`: where the residual case was reported)."""
    problems = []
    for resource in RESOURCES:
        deleted = set(final_truth["deleted"].get(resource, []))
        skipped = set((skip or {}).get(resource, []))
        loaded = {row["id"]: row["updated_at"] for row in read_table(pipeline, resource)}
        for record in snapshot["objects"][resource]:
            if record["id"] in deleted or (resource != "shops" and record["shop_id"] in skipped):
                continue
            have = loaded.get(record["id"])
            if have is None:
                problems.append(f"{resource} id {record['id']} (updated {record['updated_at']}) is missing")
            elif have.astimezone(timezone.utc) < _ts(record["updated_at"]):
                problems.append(f"{resource} id {record['id']}: warehouse has {have}, source had {record['updated_at']} before the sync")
    return problems


def _sync_under_drift(tmp_path, emu, rounds: int = 2, minutes_per_page: int = 20):
    """Syncs while the world moves on between list pages: before every list request of a shop's
    listing the emulator runs `minutes_per_page` of its activity (updates, creations, hard
    deletes, bulk edits), under its store lock, so the race is the same under any CPU load.
    Returns the problems outside the listings that reported the paging's residual case."""
    pipeline = duckdb_pipeline(tmp_path)
    problems: List[str] = []
    residual: Dict[str, List[int]] = {}
    lists = [0]

    def world_moves_on(core, info):
        lists[0] += 1
        core.activity.advance(minutes_per_page * 60)

    emu.before_list("/v1/shops/*/*", world_moves_on)
    try:
        for _ in range(rounds):
            snapshot = emu.truth()
            _, stats = sync(pipeline, emu, max_workers=2, page_size=SMALL_PAGES)
            for name, shops in stats.as_dict()["paging_residual"].items():
                residual.setdefault(name, []).extend(shops)
            problems += behind_snapshot(pipeline, snapshot, emu.truth(), skip=residual)
    finally:
        emu.clear_list_hooks()
    assert lists[0] > 20, "hardly any page boundary to race: the test proves nothing"
    return pipeline, problems, residual


def test_drift_under_continuous_writes_loses_nothing(tmp_path):
    with Emulator(seed=81, shops=1, work_orders=60) as emu:
        pipeline, problems, residual = _sync_under_drift(tmp_path, emu)
        print(f"residual case reported for {residual}")
        assert problems == []
        # frozen source: the reconciliation the engine schedules for the residual listings, one
        # more sync, and the warehouse is exactly the truth (hard deletes marked)
        reconcile_deletes(pipeline, base_url=emu.base_url, api_key=emu.api_key, page_size=SMALL_PAGES)
        sync(pipeline, emu, page_size=SMALL_PAGES)
        assert_exactly_truth(pipeline, emu.truth())


def test_drift_page_numbers_alone_would_lose_rows(tmp_path, monkeypatch):
    """The same drift with re-anchoring switched off (page numbers under the first anchor):
    rows are skipped. Keeps the test above sharp."""
    monkeypatch.setattr(UpdatedAtPaginator, "_reanchor", lambda self, anchor: setattr(self, "page", self.page + 1))
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
        # a new second of more rows than a page: read by page numbers, and said so
        assert stats.as_dict()["paging_residual"] == {"customers": [1]}
        assert_exactly_truth(pipeline, emu.truth(), resources=["customers"])
        # 120 more rows change within that same second after the sync: the cursor sits on that
        # second, so the next listing has 270 rows of one second (3 pages), 150 already loaded
        more = _bulk_edit(emu, "customers", 1, 120, "bulk edit two", skip=150)
        assert len(tied) == 150 and len(more) == 120
        sync(pipeline, emu, resources=["customers"])
        assert loaded_rows(pipeline)["customers"] == len(more)
        assert_exactly_truth(pipeline, emu.truth(), resources=["customers"])
        # nothing changed since: nothing loaded, although the whole tied second is listed again;
        # that second was read whole by the last listing, so it is not the residual case again
        _, stats = sync(pipeline, emu, resources=["customers"])
        assert loaded_rows(pipeline) == {}
        assert stats.as_dict()["paging_residual"] == {}


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


@pytest.mark.slow  # half a minute; it shows the scenario has teeth, the guarantee is the test above
def test_late_commits_are_lost_when_the_lag_is_too_small(tmp_path):
    """The knob matters: with lag 0 the cursor passes rows the server shows later."""
    emu, pipeline, pending, cursors = _late_commit_world(tmp_path, lag_seconds=0)
    try:
        assert _anchors_past_pending(pending, cursors, 0), "no cursor passed a pending version"
        problems = compare_with_truth(pipeline, emu.truth())
        assert problems, "lag 0 lost nothing: the late-commit scenario is too weak"
    finally:
        emu.stop()

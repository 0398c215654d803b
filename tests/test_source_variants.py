"""Where the real API may differ from the contract (docs/autosync-api.md, last section), the connector
still loads exactly the truth: each variant is an emulator setting."""
from __future__ import annotations

import pytest

from autosync_emulator import Emulator
from source_helpers import assert_raw_equals_truth, duckdb_pipeline, loaded_rows, request_floor, sync

VARIANT_RESOURCES = ["customers", "work_orders", "payments", "inspections"]


@pytest.mark.parametrize(
    "settings",
    [
        {"legacy_pagination": True},
        {"updated_after_inclusive": True},
        {"ignore_updated_after": ["customers", "payments"]},
        {"refuse_sort_updated_at": True},
        {"legacy_error_codes": True},
    ],
    ids=lambda settings: next(iter(settings)),
)
def test_variant_full_and_incremental_sync_equal_truth(tmp_path, settings):
    # more than 100 rows per list where paging itself differs; small worlds elsewhere
    paging_variant = "legacy_pagination" in settings or "updated_after_inclusive" in settings
    with Emulator(seed=51, shops=2, work_orders=110 if paging_variant else 35, **settings) as emu:
        pipeline = duckdb_pipeline(tmp_path)
        sync(pipeline, emu, resources=VARIANT_RESOURCES)
        assert_raw_equals_truth(pipeline, emu.truth(), resources=VARIANT_RESOURCES)
        emu.advance(hours=3)
        sync(pipeline, emu, resources=VARIANT_RESOURCES)
        assert_raw_equals_truth(pipeline, emu.truth(), resources=VARIANT_RESOURCES)
        # nothing changed: nothing loaded, even where the API ignores or widens the filter
        sync(pipeline, emu, resources=VARIANT_RESOURCES)
        assert loaded_rows(pipeline) == {}


def test_children_embedded_in_list_rows_need_no_detail_calls(tmp_path):
    with Emulator(seed=52, shops=2, work_orders=30, embed_children=True) as emu:
        pipeline = duckdb_pipeline(tmp_path)
        truth = emu.truth()
        _, stats = sync(pipeline, emu)
        assert_raw_equals_truth(pipeline, truth)
        by_resource = stats.as_dict()["by_resource"]
        assert all("detail" not in kinds for kinds in by_resource.values())
        assert by_resource == request_floor(None, truth, detail_resources=())

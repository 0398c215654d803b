"""Scenarios 4 and 6: an API that ignores filters, and an API that fails in every way the
network can. The sync rides out what clears and ends equal to the truth; what never clears
ends in one clear error with no cursor moved and nothing half-visible."""
from __future__ import annotations

import json

import pytest

from autosync_emulator import Emulator
from pipelines.run import main
from reliability_helpers import assert_exactly_truth, duckdb_at, engine_cursors
from source_helpers import duckdb_pipeline, read_table, sync

STORM = [
    # first matching rule decides: a mix over every GET of the API
    {"method": "GET", "path": "/v1/shops/*", "behaviour": "rate_limit", "probability": 0.08, "retry_after": 0},
    {"method": "GET", "path": "/v1/shops/*", "behaviour": "error", "status": 503, "probability": 0.05},
    {"method": "GET", "path": "/v1/shops/*", "behaviour": "error", "status": 500, "probability": 0.03},
    {"method": "GET", "path": "/v1/shops/*", "behaviour": "drop", "probability": 0.03},
    {"method": "GET", "path": "/v1/shops/*", "behaviour": "truncate", "probability": 0.03},
    {"method": "GET", "path": "/v1/shops/*", "behaviour": "malformed", "probability": 0.03},
    {"method": "GET", "path": "/v1/shops/*", "behaviour": "timeout", "probability": 0.01, "delay": 1.5},
]


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setenv("SOURCES__AUTOSYNC__RETRY_MAX_WAIT", "0.05")
    monkeypatch.setenv("SOURCES__AUTOSYNC__RETRY_ATTEMPTS", "8")
    monkeypatch.setenv("SOURCES__AUTOSYNC__REQUEST_TIMEOUT", "1.0")


def test_a_storm_of_every_fault_is_ridden_out_and_ends_equal(tmp_path):
    with Emulator(seed=91, shops=2, work_orders=25) as emu:
        emu.set_faults(STORM)
        pipeline = duckdb_pipeline(tmp_path)
        _, stats = sync(pipeline, emu)
        assert stats.rate_limited > 0 and stats.retries > 0
        assert_exactly_truth(pipeline, emu.truth())
        # and incrementally, through the same storm
        emu.advance(hours=6)
        sync(pipeline, emu)
        fired = {}
        for rule in emu.core.faults.snapshot():
            fired[rule["behaviour"]] = fired.get(rule["behaviour"], 0) + rule["fired"]
        emu.set_faults([])
        assert all(fired[b] > 0 for b in ("rate_limit", "error", "drop", "truncate", "malformed", "timeout")), fired
        assert_exactly_truth(pipeline, emu.truth())


@pytest.mark.parametrize("behaviour", ["error", "truncate", "drop"])
def test_a_fault_that_never_clears_fails_clearly_and_moves_nothing(tmp_path, capsys, behaviour, monkeypatch):
    monkeypatch.setenv("SOURCES__AUTOSYNC__RETRY_ATTEMPTS", "3")
    with Emulator(seed=92, shops=2, work_orders=10) as emu:
        args = [
            "--base-url", emu.base_url, "--api-key", emu.api_key, "--no-dbt", "--json",
            "--resources", "customers,work_orders,payments",
            "--duckdb-path", str(tmp_path / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
        ]
        assert main(args) == 0
        capsys.readouterr()
        raw = duckdb_at(tmp_path / "raw.duckdb")
        # Each shop syncs in its own pipeline, shop after shop: shop 1 commits whole before shop 2
        # fails. What must not move is everything of the shop that failed.
        def shop_2_rows():
            return {table: sorted(str(row) for row in read_table(raw, table) if row["shop_id"] == 2)
                    for table in ("customers", "work_orders", "payments")}

        def shop_2_cursors():
            return {name: shops.get("2") for name, shops in engine_cursors(tmp_path / "p").items()}

        before_rows = shop_2_rows()
        before_cursors = shop_2_cursors()
        assert before_cursors["payments"], "the first run stored no cursor: the check below would prove nothing"
        emu.advance(hours=6)
        # customers are read first and fine; payments never answer properly
        emu.set_faults([{"method": "GET", "path": "/v1/shops/2/payments", "behaviour": behaviour, "status": 502, "retry_after": 0}])
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 2, err
        assert "Traceback" not in err
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["status"] == "failed"
        expected_words = {"error": "HTTP 502", "truncate": "unreadable JSON", "malformed": "unreadable JSON",
                          "drop": "unreachable", "rate_limit": "429"}[behaviour]
        assert expected_words in summary["error"], summary["error"]
        # no cursor of the failed shop moved, nothing of it is visible (its customers were read fine)
        assert shop_2_cursors() == before_cursors
        assert shop_2_rows() == before_rows
        # the fault clears: the next run catches up exactly
        emu.set_faults([])
        assert main(args) == 0
        assert_exactly_truth(raw, emu.truth(), resources=["customers", "work_orders", "payments"])


# -- scenario 4: filters the server ignores ------------------------------------------------
@pytest.mark.parametrize(
    "settings, quirk",
    [({"ignore_updated_after": ["customers", "inventory"]}, "ignores updated_after"),
     ({"refuse_sort_updated_at": True}, "refuses sort=updated_at")],
    ids=["ignores_updated_after", "refuses_sort"],
)
def test_an_api_that_ignores_filters_is_detected_and_the_sync_stays_exact(tmp_path, capsys, settings, quirk):
    resources = "customers,inventory,work_orders"
    with Emulator(seed=93, shops=2, work_orders=30, **settings) as emu:
        args = [
            "--base-url", emu.base_url, "--api-key", emu.api_key, "--no-dbt", "--json", "--resources", resources,
            "--duckdb-path", str(tmp_path / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
        ]
        assert main(args) == 0
        capsys.readouterr()
        emu.advance(hours=8)
        assert main(args) == 0
        out, err = capsys.readouterr()
        summary = json.loads(out)
        raw = duckdb_at(tmp_path / "raw.duckdb")
        assert_exactly_truth(raw, emu.truth(), resources=resources.split(","))
        assert any(quirk in note for note in summary["api_quirks"]), summary["api_quirks"]
        assert quirk in err  # said in the log too
        truth = emu.truth()
        if "ignore_updated_after" in settings:
            # the higher cost: every customer is listed again, changed or not
            customers = truth["objects"]["customers"]
            listed_pages = summary["requests_by_resource"]["customers"]["list"]
            assert listed_pages >= sum(max(1, -(-sum(1 for c in customers if c["shop_id"] == s) // 100)) for s in (1, 2))
            # but only what changed is loaded
            assert summary["rows"].get("customers", 0) < len(customers)
        # a third run with nothing changed loads nothing
        assert main(args) == 0
        assert json.loads(capsys.readouterr().out)["rows"] == {}

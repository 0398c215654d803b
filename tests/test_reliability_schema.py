"""Scenario 8, schema drift: a new field becomes a new column, a field that changes type does
not stop the load and is reported, and the run summary lists every schema change once."""
from __future__ import annotations

import json

from autosync_emulator import Emulator
from autosync_emulator.world import iso
from pipelines.run import main
from reliability_helpers import duckdb_at, integrity_problems
from source_helpers import compare_with_truth, read_table

RESOURCES = ["customers", "vehicles", "work_orders"]


def cli(tmp_path, capsys, emu):
    code = main([
        "--base-url", emu.base_url, "--api-key", emu.api_key, "--no-dbt", "--json", "--resources", ",".join(RESOURCES),
        "--duckdb-path", str(tmp_path / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
    ])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def _change_at_the_source(emu, resource, ids, change):
    """The API starts sending a different shape (done in the emulator's store: no setting for it)."""
    store = emu.core.store
    with store.lock:
        stamp = iso(store.clock)
        for oid in ids:
            obj = store.latest(resource, oid)
            store.put(resource, {**obj, **change(obj), "updated_at": stamp})


def test_new_fields_become_columns_and_type_changes_are_reported_not_fatal(tmp_path, capsys):
    with Emulator(seed=96, shops=1, work_orders=15) as emu:
        first, _ = cli(tmp_path, capsys, emu)
        assert first["schema_changes"] == []  # every field the API sends is declared
        truth = emu.truth()
        customers = [c["id"] for c in truth["objects"]["customers"]][:3]
        vehicles = [v["id"] for v in truth["objects"]["vehicles"]][:2]
        emu.advance(seconds=30)
        _change_at_the_source(emu, "customers", customers, lambda obj: {"loyalty_tier": "gold"})
        _change_at_the_source(emu, "vehicles", vehicles, lambda obj: {"mileage": f"{obj['mileage']:,} km"})
        # a nested field in a child row too
        wo_id = truth["objects"]["work_orders"][0]["id"]
        _change_at_the_source(emu, "work_orders", [wo_id], lambda obj: {
            "jobs": [{**job, "warranty": True} for job in obj["jobs"]]})

        second, err = cli(tmp_path, capsys, emu)
        changes = {(c["table"], c["column"], c["change"]) for c in second["schema_changes"]}
        assert changes == {
            ("customers", "loyalty_tier", "new_column"),
            ("vehicles", "mileage", "type_changed"),
            ("work_orders__jobs", "warranty", "new_column"),
        }, second["schema_changes"]
        variant = [c for c in second["schema_changes"] if c["change"] == "type_changed"][0]
        assert variant["variant_column"] == "mileage__v_text"
        assert "schema change" in err and "mileage" in err  # in the log too

        raw = duckdb_at(tmp_path / "raw.duckdb")
        truth = emu.truth()
        # the new columns hold exactly the source's values; so does everything else but the
        # changed-type values, which are in the variant column instead of `mileage`
        problems = compare_with_truth(raw, truth, resources=RESOURCES)
        expected = set()
        for vid in vehicles:
            expected.add(f"vehicles id {vid}: mileage is None, truth says "
                         f"{[v for v in truth['objects']['vehicles'] if v['id'] == vid][0]['mileage']!r}")
            truth_mileage = [v for v in truth['objects']['vehicles'] if v['id'] == vid][0]['mileage']
            expected.add(f"vehicles id {vid}: column mileage__v_text={truth_mileage!r} is not in the truth")
        assert set(problems) == expected, problems
        assert integrity_problems(raw, RESOURCES) == []
        tiers = {row["id"]: row["loyalty_tier"] for row in read_table(raw, "customers")}
        assert {tiers[c] for c in customers} == {"gold"}

        # reported once: the next run changes nothing in the schema
        third, _ = cli(tmp_path, capsys, emu)
        assert third["schema_changes"] == []

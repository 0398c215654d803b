"""The emulator against its own OpenAPI document, by Schemathesis (an outside tool that knows
nothing of the emulator but the document).

A bounded, seeded run over every operation, writes included: generated and example requests,
then stateful sequences that follow the document's links (create, then get/update/delete the
new id). Checks: no 5xx, every status/header/content type/body as documented, requests the
document calls invalid are refused, 405 with a true `Allow` for methods a path does not have,
deleted objects are gone and created ones are there. The longer run (thousands of cases, the
coverage phase too) is `benchmarks/schemathesis_run.py`; its figures are in the README.
"""
from __future__ import annotations

import subprocess

import pytest

from autosync_emulator import Emulator
from emulator_helpers import schemathesis_command, write_schemathesis_config

pytest.importorskip("schemathesis")

MAX_EXAMPLES = 4
SEED = 20261128


def test_schemathesis_finds_nothing_in_a_bounded_seeded_run(tmp_path):
    with Emulator(seed=31, shops=2, work_orders=15) as emu:
        config = tmp_path / "schemathesis.toml"
        write_schemathesis_config(config, emu.api_key, emu.oauth_client_id, emu.oauth_client_secret)
        run = subprocess.run(schemathesis_command(emu.root_url, config, phases="examples,fuzzing,stateful",
                                                  max_examples=MAX_EXAMPLES, seed=SEED),
                             capture_output=True, text=True, timeout=600, cwd=tmp_path)
        log = emu.request_log()
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "37 selected / 37 total" in run.stdout, report
    assert " passed" in run.stdout and "failed" not in run.stdout.split("SUMMARY")[-1], report
    statuses = {route: set(counts) for route, counts in log["by_route"].items()}
    assert not [route for route, seen in statuses.items() if any(s.startswith("5") for s in seen)]
    # the writes were exercised to success, not only refused
    for route in ("POST /v1/shops/{shop_id}/customers", "POST /v1/shops/{shop_id}/vehicles",
                  "POST /v1/shops/{shop_id}/workorders", "PATCH /v1/shops/{shop_id}/customers/{id}",
                  "PATCH /v1/shops/{shop_id}/inventory/{id}", "POST /v1/webhooks", "POST /v1/oauth/token"):
        assert any(s.startswith("2") for s in statuses.get(route, ())), (route, statuses.get(route))
    assert log["total"] >= 200, log["total"]  # a few hundred requests, not a handful

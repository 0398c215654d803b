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
import sys

import pytest

from autosync_emulator import Emulator

pytest.importorskip("schemathesis")

# every check Schemathesis has but three: positive_data_acceptance (a valid body may still break a
# business rule: 409/422 are the right answers), ignored_auth and object_level_authorization
# (they need a second credential's view of the same objects, which the document does not describe)
EXCLUDED_CHECKS = "positive_data_acceptance,ignored_auth,object_level_authorization"
MAX_EXAMPLES = 4
SEED = 20261128


def schemathesis_command(root_url: str, config_path, *, phases: str, max_examples: int, seed: int) -> list[str]:
    return [sys.executable, "-c", "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
            "--config-file", str(config_path), "--no-color",
            "run", f"{root_url}/v1/openapi.json", "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
            "--phases", phases, "--max-examples", str(max_examples), "--seed", str(seed), "--workers", "1",
            "--generation-database", "none", "--request-timeout", "30"]


def write_config(path, emu) -> None:
    """Credentials per security scheme of the document: the API key for every operation, the
    OAuth client (HTTP Basic) for /oauth/token."""
    path.write_text(f'[auth.openapi.apiKey]\nbearer = "{emu.api_key}"\n'
                    f'[auth.openapi.clientBasic]\nusername = "{emu.oauth_client_id}"\n'
                    f'password = "{emu.oauth_client_secret}"\n')


def test_schemathesis_finds_nothing_in_a_bounded_seeded_run(tmp_path):
    with Emulator(seed=31, shops=2, work_orders=15) as emu:
        config = tmp_path / "schemathesis.toml"
        write_config(config, emu)
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

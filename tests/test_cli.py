"""The `autosync` console command: one sub-command per door, each with its door's flags."""
from __future__ import annotations

import json
from importlib.metadata import entry_points

from autosync_emulator import Emulator
from pipelines.cli import COMMANDS, main


def test_the_console_script_is_installed_as_autosync():
    scripts = {entry.name: entry.value for entry in entry_points(group="console_scripts")}
    assert scripts.get("autosync") == "pipelines.cli:main"


def test_help_lists_every_door_and_each_command_has_its_own_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("sync", "demo", "report", "webhooks", "emulator"):
        assert f"\n  {name}" in out
    for name in COMMANDS:
        try:
            main([name, "--help"])
        except SystemExit as done:  # argparse exits 0 after printing a command's help
            assert done.code == 0
        assert f"usage: autosync {name}" in capsys.readouterr().out


def test_no_command_or_an_unknown_one_is_a_usage_error(capsys):
    assert main([]) == 2
    assert main(["sink"]) == 2
    assert "unknown command 'sink'" in capsys.readouterr().err


def test_autosync_sync_json_runs_the_cli_door(tmp_path, capsys):
    with Emulator(seed=83, shops=1, work_orders=4) as emu:
        code = main(["sync", "--base-url", emu.base_url, "--api-key", emu.api_key, "--json", "--no-dbt",
                     "--duckdb-path", str(tmp_path / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "p")])
        truth = emu.truth()
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "ok" and summary["rows"]["work_orders"] == len(truth["objects"]["work_orders"])
    assert summary["sync_seconds"] > 0 and summary["dbt_seconds"] is None


def test_the_summary_gives_sync_time_and_dbt_time_apart():
    from pipelines.engine import SyncSummary

    summary = SyncSummary(run_id="r", door="cli", destination="duckdb", dataset="autosync_raw",
                          duration_seconds=57.35, sync_seconds=44.55, dbt_seconds=12.8)
    first = summary.describe().splitlines()[0]
    assert first == "Loaded into duckdb dataset autosync_raw in 44.55s (then dbt 12.8s: 57.35s in all)"
    assert summary.as_dict()["sync_seconds"] == 44.55 and summary.as_dict()["dbt_seconds"] == 12.8
    no_dbt = SyncSummary(run_id="r", door="cli", destination="duckdb", dataset="d", duration_seconds=3.0, sync_seconds=3.0)
    assert no_dbt.describe().splitlines()[0] == "Loaded into duckdb dataset d in 3.0s"

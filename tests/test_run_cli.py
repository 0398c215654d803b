"""pipelines/run.py as a user runs it: flags, the summary, --json, --demo."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dlt
import pytest

import pipelines.run as run
from autosync_emulator import Emulator
from pipelines.run import main
from source_helpers import RESOURCES, assert_raw_equals_truth

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def emulator():
    with Emulator(seed=41, shops=2, work_orders=20) as emu:
        yield emu


def cli(tmp_path, *args):
    return main(["--duckdb-path", str(tmp_path / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "p"), "--no-dbt", *args])


def test_json_summary_reports_rows_requests_429s_and_duration(tmp_path, capsys, emulator):
    assert cli(tmp_path, "--base-url", emulator.base_url, "--api-key", emulator.api_key, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    truth = emulator.truth()
    assert summary["status"] == "ok" and summary["destination"] == "duckdb"
    assert summary["dataset"] == "autosync_raw"
    assert summary["rows"]["work_orders"] == len(truth["objects"]["work_orders"])
    assert summary["rows"]["work_orders__jobs"] == sum(len(w["jobs"]) for w in truth["objects"]["work_orders"])
    assert summary["requests"] == sum(sum(kinds.values()) for kinds in summary["requests_by_resource"].values())
    assert summary["rate_limited_429"] == 0 and summary["duration_seconds"] > 0

    # the second run: nothing changed, nothing loaded, list requests only: the shops listed once
    # (each shop's run gets its row from the engine), then each shop's resources once
    assert cli(tmp_path, "--base-url", emulator.base_url, "--api-key", emulator.api_key, "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["rows"] == {} and again["rows_total"] == 0
    assert again["shops"] == [1, 2]
    assert again["requests"] == 1 + 2 * (len(RESOURCES) - 1)


def test_flags_pick_dataset_resources_shops_and_dates(tmp_path, capsys, emulator):
    code = cli(
        tmp_path, "--base-url", emulator.base_url, "--api-key", emulator.api_key,
        "--dataset", "raw_subset", "--resources", "customers,vehicles", "--shops", "2",
        "--start-date", "2000-01-01", "--end-date", "2100-01-01",
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Loaded into duckdb dataset raw_subset" in out and "customers" in out and "requests:" in out
    probe = dlt.pipeline("probe", destination=dlt.destinations.duckdb(str(tmp_path / "raw.duckdb")),
                         dataset_name="raw_subset", pipelines_dir=str(tmp_path / "probe"))
    assert_raw_equals_truth(probe, emulator.truth(), resources=["customers", "vehicles"], shops=[2])


def test_environment_variables_configure_the_source(tmp_path, capsys, emulator, monkeypatch):
    monkeypatch.setenv("SOURCES__AUTOSYNC__API_KEY", emulator.api_key)
    monkeypatch.setenv("SOURCES__AUTOSYNC__BASE_URL", emulator.base_url)
    monkeypatch.setenv("SOURCES__AUTOSYNC__RESOURCES", '["employees"]')
    assert cli(tmp_path, "--json") == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert set(summary["rows"]) == {"employees"}
    # the key is nowhere: not in the output, the pipeline's files, its state or the warehouse
    key = emulator.api_key.encode()
    assert key not in out.encode() and key not in err.encode()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key not in path.read_bytes(), f"the API key leaked into {path}"
    homes = list((tmp_path / "p").glob("*/autosync_*_shop_*"))
    assert homes
    for home in homes:
        local = dlt.pipeline(home.name, pipelines_dir=str(home.parent))
        assert emulator.api_key not in json.dumps(local.state, default=str)


def test_full_refresh_flag_reloads_everything(tmp_path, capsys, emulator):
    args = ("--base-url", emulator.base_url, "--api-key", emulator.api_key, "--resources", "vehicles", "--json")
    assert cli(tmp_path, *args) == 0
    first = json.loads(capsys.readouterr().out)
    assert cli(tmp_path, *args) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == {}
    assert cli(tmp_path, *args, "--full-refresh") == 0
    assert json.loads(capsys.readouterr().out)["rows"] == first["rows"]


def test_bad_flag_values_are_one_line_errors(tmp_path, capsys, emulator):
    assert cli(tmp_path, "--base-url", emulator.base_url, "--api-key", emulator.api_key, "--shops", "one,two") == 2
    assert "--shops takes comma-separated shop ids" in capsys.readouterr().err
    assert cli(tmp_path, "--base-url", emulator.base_url, "--api-key", emulator.api_key, "--start-date", "yesterday") == 2
    assert "start_date 'yesterday' is not a date" in capsys.readouterr().err
    assert cli(tmp_path, "--base-url", emulator.base_url, "--api-key", emulator.api_key, "--shops", "99") == 2
    assert "not visible to these credentials" in capsys.readouterr().err


def test_no_credentials_at_all_says_where_to_put_them(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SOURCES__AUTOSYNC__API_KEY", raising=False)
    assert cli(tmp_path) == 2
    err = capsys.readouterr().err
    assert "No AutoSync credentials" in err and "SOURCES__AUTOSYNC__API_KEY" in err


def test_demo_syncs_a_seeded_emulator(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run, "DEMO_WORLD", dict(seed=42, shops=2, work_orders=10))
    code = main(["--demo", "--no-dbt", "--json", "--duckdb-path", str(tmp_path / "demo.duckdb"),
                 "--pipelines-dir", str(tmp_path / "p")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"]["shops"] == 2 and summary["rows"]["work_orders"] == 20


def test_running_the_file_as_a_script_works(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "pipelines" / "run.py"), "--help"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert completed.returncode == 0
    for flag in ("--demo", "--base-url", "--api-key", "--destination", "--duckdb-path", "--dataset",
                 "--resources", "--shops", "--start-date", "--end-date", "--full-refresh", "--json", "--no-dbt"):
        assert flag in completed.stdout


def test_a_start_date_before_existing_cursors_says_it_is_ignored_and_how_to_backfill(tmp_path, capsys, emulator):
    args = ("--base-url", emulator.base_url, "--api-key", emulator.api_key, "--resources", "customers", "--shops", "1")
    assert cli(tmp_path, *args) == 0
    capsys.readouterr()
    assert cli(tmp_path, *args, "--start-date", "2000-01-01") == 0
    out, err = capsys.readouterr()
    for said in (err, out):  # logged, and in the summary
        assert "--start-date 2000-01-01 is ignored for shop 1" in said and "--full-refresh" in said and "--window" in said


@pytest.mark.parametrize("signal_name,exit_code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupted_run_exits_with_one_line_and_the_next_run_completes(tmp_path, signal_name, exit_code):
    import os
    import signal
    import time

    from reliability_helpers import assert_interrupted_in_one_line_then_whole, cli_args

    with Emulator(seed=43, shops=1, work_orders=20) as emu:
        # slow list pages: the extract lasts seconds, so the signal lands inside it
        emu.set_faults([{"method": "GET", "path": "/v1/shops/*/*", "behaviour": "slow", "delay": 0.3}])
        args = cli_args(emu, tmp_path)
        with open(tmp_path / "err.txt", "w") as err:
            proc = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "run.py"), *args], cwd=str(ROOT),
                                    stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"})
            deadline = time.monotonic() + 120
            while "syncing shop" not in (tmp_path / "err.txt").read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # inside the extract
            os.kill(proc.pid, getattr(signal, signal_name))
            assert proc.wait(timeout=120) == exit_code
        assert_interrupted_in_one_line_then_whole(tmp_path / "err.txt", emu, args)


def test_an_interrupt_stops_every_shop_in_flight_and_the_next_run_completes(tmp_path):
    """Shops run at once (max_workers 3): Ctrl-C reaches the main thread, which stops the shops in
    flight (what they read is dropped), exits 130 with one line, and the next run is whole."""
    import os
    import signal
    import time

    from reliability_helpers import assert_interrupted_in_one_line_then_whole, cli_args

    with Emulator(seed=44, shops=3, work_orders=20) as emu:
        emu.set_faults([{"method": "GET", "path": "/v1/shops/*/*", "behaviour": "slow", "delay": 0.3}])
        args = cli_args(emu, tmp_path)
        env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "SOURCES__AUTOSYNC__MAX_WORKERS": "3"}
        with open(tmp_path / "err.txt", "w") as err:
            proc = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "run.py"), *args], cwd=str(ROOT),
                                    stdout=subprocess.DEVNULL, stderr=err, env=env)
            deadline = time.monotonic() + 120
            while (tmp_path / "err.txt").read_text().count("syncing shop") < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # inside the extracts
            os.kill(proc.pid, signal.SIGINT)
            assert proc.wait(timeout=120) == 130
        assert_interrupted_in_one_line_then_whole(tmp_path / "err.txt", emu, args, env)

"""Every failure ends in one clear message and a non-zero exit, and loses nothing: no row is
half-loaded and no cursor moves, so the next good run catches up exactly."""
from __future__ import annotations

import json
import socket
import time

import dlt
import pytest

from autosync_emulator import Emulator
from autosync_source import autosync_source
from autosync_source.errors import ConfigurationError
from pipelines.run import main
from source_helpers import (
    advance_with_changes,
    assert_raw_equals_truth,
    duckdb_pipeline,
    read_table,
    sync,
)


@pytest.fixture(scope="module")
def emulator():
    with Emulator(seed=5, shops=2, work_orders=25) as emu:
        yield emu


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setenv("SOURCES__AUTOSYNC__RETRY_MAX_WAIT", "0.05")
    monkeypatch.setenv("SOURCES__AUTOSYNC__RETRY_ATTEMPTS", "3")


@pytest.fixture(autouse=True)
def no_faults(emulator):
    yield
    emulator.set_faults([])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(tmp_path, capsys, *args):
    code = main([
        "--duckdb-path", str(tmp_path / "cli.duckdb"),
        "--pipelines-dir", str(tmp_path / "cli_pipelines"),
        "--no-dbt", *args,
    ])
    out, err = capsys.readouterr()
    return code, out, err


def cursors_of(pipeline: dlt.Pipeline) -> dict:
    resources = pipeline.state.get("sources", {}).get("autosync", {}).get("resources", {})
    return {name: state.get("shops") for name, state in resources.items()}


def reopened(pipeline: dlt.Pipeline, tmp_path) -> dlt.Pipeline:
    """The same pipeline as a new process would see it (local state from disk)."""
    return duckdb_pipeline(tmp_path, name=pipeline.pipeline_name)


def test_an_unknown_key_is_refused_with_a_clear_message(tmp_path, capsys, emulator):
    bad_key = "sk_sandbox_" + "0" * 24 + "beef"
    code, _, err = run_cli(tmp_path, capsys, "--base-url", emulator.base_url, "--api-key", bad_key)
    assert code == 2
    assert "rejected API key sk_sandbox_…beef" in err and "401" in err
    assert bad_key not in err, "the key itself must never be printed"
    assert "Traceback" not in err
    assert not (tmp_path / "cli.duckdb").exists() or not _has_table(tmp_path / "cli.duckdb", "customers")


def _has_table(path, table) -> bool:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return bool(con.execute("select count(*) from information_schema.tables where table_name = ?", [table]).fetchone()[0])


def test_a_key_for_the_other_environment_is_refused_before_any_request(tmp_path, capsys, monkeypatch):
    import requests.adapters

    sent = []
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", lambda self, request, **kwargs: sent.append(request.url))
    code, _, err = run_cli(
        tmp_path, capsys,
        "--base-url", "https://sandbox.api.autosyncshopmanager.com/v1",
        "--api-key", "sk_live_" + "1" * 28,
    )
    assert code == 2
    assert "is a live key but the base URL" in err and "sandbox" in err
    assert sent == []  # no request was even tried


def test_a_live_key_on_a_sandbox_server_gets_the_environment_hint(tmp_path, capsys, emulator):
    live_key = emulator.create_api_key(environment="live")
    code, _, err = run_cli(tmp_path, capsys, "--base-url", emulator.base_url, "--api-key", live_key)
    assert code == 2
    assert "401" in err and "live key works only on the live environment" in err


def test_a_key_without_a_known_prefix_and_no_base_url_is_refused():
    with pytest.raises(ConfigurationError, match="neither the sk_sandbox_ nor the sk_live_ prefix"):
        autosync_source(api_key="pk_12345678901234567890")


def test_unknown_resource_names_are_refused_with_the_valid_ones():
    with pytest.raises(ConfigurationError, match="Choose among: shops, employees"):
        autosync_source(api_key="sk_sandbox_x" * 3, resources=["workorders"])


def test_a_missing_scope_names_the_scope_and_the_way_out(tmp_path, capsys, emulator):
    client_id, secret = emulator.create_oauth_client(
        scopes=["shops:read", "customers:read", "vehicles:read", "workorders:read", "inventory:read", "employees:read"]
    )
    pipeline = duckdb_pipeline(tmp_path)
    sync(pipeline, emulator, resources=["customers"])
    before = cursors_of(pipeline)
    with pytest.raises(Exception) as failure:
        sync(pipeline, emulator, client_id=client_id, client_secret=secret)
    message = _autosync_message(failure.value)
    assert "lack the scope 'payments:read'" in message
    assert "--resources" in message and "payments" in message
    assert secret not in message
    assert cursors_of(reopened(pipeline, tmp_path)) == before
    # the way out works: exclude the resource
    names = ["shops", "employees", "customers", "vehicles", "work_orders", "inspections", "appointments", "inventory"]
    sync(pipeline, emulator, client_id=client_id, client_secret=secret, resources=names)
    assert_raw_equals_truth(pipeline, emulator.truth(), resources=names)


def _autosync_message(failure: BaseException) -> str:
    from pipelines.engine import autosync_error_in

    found = autosync_error_in(failure)
    assert found is not None, f"not an AutosyncError: {failure!r}"
    return str(found)


def test_an_unreachable_host_fails_after_retries_with_one_message(tmp_path, capsys):
    code, out, err = run_cli(
        tmp_path, capsys, "--base-url", f"http://127.0.0.1:{closed_port()}/v1",
        "--api-key", "sk_sandbox_" + "2" * 28, "--json",
    )
    assert code == 2
    assert "unreachable" in err and "after 3 attempts" in err
    assert json.loads(out)["status"] == "failed"


def test_server_errors_are_retried_and_the_sync_completes(tmp_path, emulator):
    emulator.set_faults([{"path": "/v1/shops/*/customers", "behaviour": "error", "status": 503, "count": 2},
                         {"path": "/v1/shops/*/vehicles", "behaviour": "drop", "count": 1}])
    pipeline = duckdb_pipeline(tmp_path)
    truth = emulator.truth()
    _, stats = sync(pipeline, emulator)
    assert stats.retries == 3
    assert_raw_equals_truth(pipeline, truth)


def test_other_client_errors_are_not_retried(tmp_path, emulator):
    emulator.set_faults([{"path": "/v1/shops/*/inventory", "behaviour": "error", "status": 422}])
    emulator.reset_request_log()
    pipeline = duckdb_pipeline(tmp_path)
    with pytest.raises(Exception) as failure:
        sync(pipeline, emulator, resources=["inventory"], shops=[1])
    assert "HTTP 422" in _autosync_message(failure.value)
    routes = emulator.request_log()["by_route"]
    inventory = {route: counts for route, counts in routes.items() if "inventory" in route}
    assert sum(sum(counts.values()) for counts in inventory.values()) == 1


def test_a_failure_midway_loads_nothing_and_moves_no_cursor(tmp_path, emulator):
    pipeline = duckdb_pipeline(tmp_path)
    sync(pipeline, emulator)
    before_cursors = cursors_of(pipeline)
    before_rows = len(read_table(pipeline, "customers"))
    advance_with_changes(emulator, hours=4, seed=9)
    # work order details keep failing: customers (read before) must not be committed either
    emulator.set_faults([{"path": "/v1/shops/*/workorders/*", "behaviour": "error", "status": 500}])
    with pytest.raises(Exception) as failure:
        sync(pipeline, emulator)
    assert "HTTP 500" in _autosync_message(failure.value)
    pipeline = reopened(pipeline, tmp_path)
    assert cursors_of(pipeline) == before_cursors
    assert len(read_table(pipeline, "customers")) == before_rows
    emulator.set_faults([])
    sync(pipeline, emulator)
    assert_raw_equals_truth(pipeline, emulator.truth())


def test_a_429_waits_out_retry_after_and_goes_on(tmp_path, emulator):
    emulator.set_faults([{"path": "/v1/shops/*/employees", "behaviour": "rate_limit", "count": 1, "retry_after": 1}])
    pipeline = duckdb_pipeline(tmp_path)
    started = time.monotonic()
    _, stats = sync(pipeline, emulator, resources=["employees"])
    assert stats.rate_limited == 1 and stats.retries == 0
    assert time.monotonic() - started >= 1.0
    assert_raw_equals_truth(pipeline, emulator.truth(), resources=["employees"])


def test_a_duckdb_destination_that_cannot_be_written_is_one_message(tmp_path, capsys, emulator):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where a directory should be")
    code = main([
        "--base-url", emulator.base_url, "--api-key", emulator.api_key, "--no-dbt",
        "--duckdb-path", str(blocker / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
        "--resources", "employees",
    ])
    err = capsys.readouterr().err
    assert code == 3
    assert "destination duckdb" in err and "Traceback" not in err

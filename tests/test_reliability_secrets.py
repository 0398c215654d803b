"""Scenario 9, secrets: after syncs with an API key and with OAuth (tokens renewed several
times), faults, a failure and a delete reconciliation, no API key, client secret or access
token appears in any log line, error message, pipeline state file, load package or
warehouse table."""
from __future__ import annotations

from pathlib import Path

import duckdb

from autosync_emulator import Emulator
from reliability_helpers import cli_args, run_cli_process


def _issued_tokens(emu):
    """Every access token the emulator hands out (it forgets expired ones itself)."""
    tokens = []
    original = emu.core.auth.issue_token

    def recording(*args, **kwargs):
        answer = original(*args, **kwargs)
        tokens.append(answer["access_token"])
        return answer

    emu.core.auth.issue_token = recording
    return tokens


def _files_containing(root: Path, secrets):
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {secret[:6]}…" for secret in secrets if secret.encode() in data]
    return found


def _warehouse_values_containing(db: Path, secrets):
    found = []
    with duckdb.connect(str(db), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type in ('VARCHAR', 'JSON')").fetchall()
        for schema, table, column in columns:
            for secret in secrets:
                hits = con.execute(
                    f'select count(*) from "{schema}"."{table}" where strpos("{column}", ?) > 0', [secret]).fetchone()[0]
                if hits:
                    found.append(f"{schema}.{table}.{column}: {secret[:6]}…")
    return found


def test_no_secret_anywhere_after_every_kind_of_run(tmp_path, monkeypatch):
    # The webhook receiver's secret is in the environment of every run below, as on a host that
    # runs both; tests/test_webhooks*.py check the receiver's own logs and table for it.
    webhook_secret = "whsec_scan_" + "w" * 24
    monkeypatch.setenv("AUTOSYNC_WEBHOOK_SECRET", webhook_secret)
    monkeypatch.setenv("WEBHOOKS__SECRET", webhook_secret)
    with Emulator(seed=97, shops=2, work_orders=12, token_ttl_seconds=2) as emu:
        tokens = _issued_tokens(emu)
        outputs = []
        oauth_env = {"SOURCES__AUTOSYNC__CLIENT_ID": emu.oauth_client_id,
                     "SOURCES__AUTOSYNC__CLIENT_SECRET": emu.oauth_client_secret,
                     "SOURCES__AUTOSYNC__RETRY_MAX_WAIT": "0.05", "SOURCES__AUTOSYNC__RETRY_ATTEMPTS": "3"}
        oauth_args = ["--base-url", emu.base_url, "--no-dbt", "--verbose", "--json",
                      "--duckdb-path", str(tmp_path / "raw.duckdb"), "--pipelines-dir", str(tmp_path / "pipelines")]
        # 1. API key on the command line, faults along the way, debug logging
        emu.set_faults([{"method": "GET", "path": "/v1/shops/*", "behaviour": "error", "status": 503, "probability": 0.1},
                        {"method": "GET", "path": "/v1/shops/*", "behaviour": "truncate", "probability": 0.05}])
        outputs.append(run_cli_process(cli_args(emu, tmp_path, "--verbose", "--json"),
                                       env={"SOURCES__AUTOSYNC__RETRY_MAX_WAIT": "0.05", "SOURCES__AUTOSYNC__RETRY_ATTEMPTS": "8"}))
        assert outputs[-1].returncode == 0, outputs[-1].stderr[-2000:]
        # 2. OAuth: slow pages so the 2-second tokens are renewed during the run; reconcile deletes
        emu.advance(hours=30)
        emu.set_faults([{"method": "GET", "path": "/v1/shops/*", "behaviour": "slow", "delay": 0.05}])
        outputs.append(run_cli_process(oauth_args + ["--reconcile-deletes"], env=oauth_env))
        assert outputs[-1].returncode == 0, outputs[-1].stderr[-2000:]
        # 3. a failure that never clears (its error message is checked too)
        emu.advance(hours=2)
        emu.set_faults([{"method": "GET", "path": "/v1/shops/*/payments", "behaviour": "error", "status": 500}])
        outputs.append(run_cli_process(oauth_args, env=oauth_env))
        assert outputs[-1].returncode == 2 and "HTTP 500" in outputs[-1].stderr
        # 4. a wrong secret, and a wrong key
        wrong_secret = emu.oauth_client_secret[:-4] + "0000"
        outputs.append(run_cli_process(oauth_args, env={**oauth_env, "SOURCES__AUTOSYNC__CLIENT_SECRET": wrong_secret}))
        assert outputs[-1].returncode == 2
        outputs.append(run_cli_process(cli_args(emu, tmp_path)[:3] + [emu.api_key[:-4] + "0000"] + cli_args(emu, tmp_path)[4:]))
        assert outputs[-1].returncode == 2
        emu.set_faults([])

        assert len(set(tokens)) >= 2, "the OAuth run should have renewed its token"
        secrets = [emu.api_key, emu.oauth_client_secret, webhook_secret, emu.api_key[:-4] + "0000",
                   emu.oauth_client_secret[:-4] + "0000", *set(tokens)]
        logs = "\n".join(p.stdout + p.stderr for p in outputs)
        assert '"level": "debug"' in logs  # the scan covers debug logging too (--json lines)
        leaked = [f"output: {s[:6]}…" for s in secrets if s in logs]
        leaked += _files_containing(tmp_path / "pipelines", secrets)
        leaked += _warehouse_values_containing(tmp_path / "raw.duckdb", secrets)
        assert leaked == [], leaked

"""BigQuery: what can be checked without any BigQuery server. Extract and normalize run for a
bigquery pipeline (types mapped from our declared hints); the access-token configuration gives
dlt and dbt a token they use as it is. The load and dbt on a BigQuery API are in
tests/test_bigquery_end_to_end.py (a local emulator)."""
from __future__ import annotations

import pytest

pytest.importorskip("google.cloud.bigquery", reason="the bigquery extra is not installed")

import dlt  # noqa: E402

from autosync_emulator import Emulator  # noqa: E402
from autosync_source import RequestStats, autosync_source  # noqa: E402
from pipelines.run import main  # noqa: E402


def test_bigquery_pipeline_extracts_and_normalizes_with_declared_types(tmp_path):
    with Emulator(seed=61, shops=1, work_orders=10) as emu:
        pipeline = dlt.pipeline(
            pipeline_name="autosync_bq",
            destination=dlt.destinations.bigquery(),
            dataset_name="autosync_raw",
            pipelines_dir=str(tmp_path / "p"),
        )
        source = autosync_source(base_url=emu.base_url, api_key=emu.api_key, request_stats=RequestStats(),
                                 resources=["work_orders", "payments"])
        pipeline.extract(source)
        info = pipeline.normalize()
        counts = info.row_counts
        truth = emu.truth()
        assert counts["work_orders"] == len(truth["objects"]["work_orders"])
        assert counts["work_orders__jobs__line_items"] == sum(
            len(job["line_items"]) for wo in truth["objects"]["work_orders"] for job in wo["jobs"]
        )
        schema = pipeline.default_schema
        total = schema.get_table_columns("work_orders")["total"]
        assert (total["data_type"], total["precision"], total["scale"]) == ("decimal", 12, 2)
        assert schema.get_table_columns("payments__refunds")["created_at"]["data_type"] == "timestamp"
        # what BigQuery would get: NUMERIC(12,2) and TIMESTAMP
        from dlt.destinations.impl.bigquery.factory import BigQueryTypeMapper

        mapper = BigQueryTypeMapper(pipeline.destination.capabilities())
        assert mapper.to_destination_type(total, schema.get_table("work_orders")).startswith("NUMERIC")


def test_bigquery_without_credentials_is_a_clear_message(tmp_path, capsys):
    with Emulator(seed=62, shops=1, work_orders=3) as emu:
        code = main(["--base-url", emu.base_url, "--api-key", emu.api_key, "--destination", "bigquery",
                     "--pipelines-dir", str(tmp_path / "p"), "--no-dbt", "--resources", "employees"])
    err = capsys.readouterr().err
    assert code == 3
    # the setting named by where a user puts it, not dlt's outer "credentials"
    assert "credentials.project_id (DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID)" in err and "secrets.toml" in err


TOKEN = "ya29.unit-test-token"


def test_an_access_token_alone_is_used_as_it_is_by_dlt_and_by_dbt(monkeypatch, tmp_path):
    from pipelines.bigquery_destination import bigquery_destination
    from pipelines.dbt_runner import target_for_pipeline

    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__TOKEN", TOKEN)
    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID", "my-project")
    from dlt.common.configuration import is_secret_hint
    from dlt.common.configuration.utils import get_resolved_traces

    get_resolved_traces().clear()
    destination = bigquery_destination()
    # dlt's run trace (trace.pickle) keeps each looked-up value unless its hint is a secret one
    looked_up = [t for t in get_resolved_traces().resolved_traces if t.key == "token"]
    assert looked_up and all(is_secret_hint(t.hint) for t in looked_up)
    credentials = destination.config_params["credentials"]
    # a token without expiry or refresh token: valid as it is, never refreshed against Google
    assert credentials.token == TOKEN and credentials.refresh_token is None
    assert credentials.valid and not credentials.expired and credentials.quota_project_id == "my-project"

    pipeline = dlt.pipeline("bq_token", destination=destination, dataset_name="raw_x", pipelines_dir=str(tmp_path))
    resolved = pipeline.destination_client().config.credentials
    assert resolved.project_id == "my-project"
    target = target_for_pipeline(pipeline, model_schema="marts_x")
    assert target.name == "bigquery_token" and target.raw_schema == "raw_x"
    # dbt scrubs DBT_ENV_SECRET_* values from its logs
    assert target.env["DBT_ENV_SECRET_AUTOSYNC_BIGQUERY_TOKEN"] == TOKEN
    assert target.env["AUTOSYNC_BIGQUERY_PROJECT"] == "my-project" and TOKEN not in repr(target)


def test_an_access_token_without_a_project_is_a_clear_message(monkeypatch):
    from autosync_source.errors import DestinationError
    from pipelines.bigquery_destination import bigquery_destination

    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__TOKEN", TOKEN)
    monkeypatch.delenv("DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID", raising=False)
    with pytest.raises(DestinationError, match="DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID") as raised:
        bigquery_destination()
    assert TOKEN not in str(raised.value)


def test_service_account_and_oauth_client_settings_stay_with_dlt(monkeypatch):
    from pipelines.bigquery_destination import bigquery_destination

    monkeypatch.delenv("DESTINATION__BIGQUERY__CREDENTIALS__TOKEN", raising=False)
    assert "credentials" not in bigquery_destination().config_params  # dlt resolves them itself
    # with a refresh token the token is dlt's OAuth client flow, which renews it
    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__TOKEN", TOKEN)
    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__REFRESH_TOKEN", "1//refresh")
    assert "credentials" not in bigquery_destination().config_params

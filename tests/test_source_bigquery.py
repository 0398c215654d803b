"""BigQuery: what can be checked without Google's servers. Extract and normalize run for a
bigquery pipeline (types mapped from our declared hints); the load itself needs a real
project and credentials, which this machine has not, so it is not tested here."""
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
    assert "Missing destination setting(s) credentials" in err and "secrets.toml" in err

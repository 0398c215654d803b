"""Ask MetricFlow (the semantic layer's query engine) about a built warehouse, in its own process.

    python tests/mf_probe.py < request.json > answer.json

request: {"project_dir", "profiles_dir", "semantic_manifest" (the semantic_manifest.json a dbt
build wrote), "validate": bool, "queries": [{"metrics": [...], "group_by": [...], "where": [...]}]}.
answer: {"semantic_issues": [...], "warehouse_issues": [...], "results": [{"columns", "rows"}]}.

What `mf validate-configs` and `mf query` do, but in one process for a whole list of queries: the
`mf` command starts dbt and MetricFlow again for every query (seconds of imports each), and reads
the semantic manifest only from <project>/target, which parallel tests would share. The dbt
environment (target, schema, warehouse path or Postgres settings) comes from the caller's env.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
from pathlib import Path


def _cell(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _issues(results) -> list[str]:
    return [f"{issue.level.name}: {issue.message}" for issue in results.all_issues
            if issue.level.name in ("ERROR", "FUTURE_ERROR")]


def main() -> int:
    request = json.load(sys.stdin)
    from dbt.adapters.factory import get_adapter_by_type
    from dbt_metricflow.cli.dbt_connectors.adapter_backed_client import AdapterBackedSqlClient
    from dbt_metricflow.cli.dbt_connectors.dbt_config_accessor import dbtProjectMetadata
    from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest
    from metricflow.validation.data_warehouse_model_validator import DataWarehouseModelValidator
    from metricflow_semantic_interfaces.validations.semantic_manifest_validator import SemanticManifestValidator
    from metricflow_semantics.model.dbt_manifest_parser import parse_manifest_from_dbt_generated_manifest
    from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

    metadata = dbtProjectMetadata.load_from_paths(profiles_path=Path(request["profiles_dir"]),
                                                  project_path=Path(request["project_dir"]))
    manifest = parse_manifest_from_dbt_generated_manifest(Path(request["semantic_manifest"]).read_text())
    client = AdapterBackedSqlClient(get_adapter_by_type(metadata.profile.credentials.type))

    answer = {"semantic_issues": _issues(SemanticManifestValidator().validate_semantic_manifest(manifest)),
              "warehouse_issues": [], "results": []}
    if request.get("validate"):
        validator = DataWarehouseModelValidator(sql_client=client)
        for check in (validator.validate_semantic_models, validator.validate_dimensions, validator.validate_entities,
                      validator.validate_simple_metrics, validator.validate_metrics):
            answer["warehouse_issues"] += _issues(check(manifest))
    engine = MetricFlowEngine(semantic_manifest_lookup=SemanticManifestLookup(manifest), sql_client=client)
    for query in request.get("queries", []):
        result = engine.query(MetricFlowQueryRequest.create(
            metric_names=query["metrics"], group_by_names=query.get("group_by", []),
            where_constraints=query.get("where") or None))
        table = result.result_df
        rows = [[_cell(table.get_cell_value(r, c)) for c in range(table.column_count)] for r in range(table.row_count)]
        answer["results"].append({"columns": list(table.column_names), "rows": rows})
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a sync did: `SyncSummary`, filled by the engine shop by shop, printed by the doors."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from autosync_source.schema_changes import describe as describe_schema_change


@dataclass
class SyncSummary:
    run_id: str
    door: str
    destination: str
    dataset: str
    shops: List[int] = field(default_factory=list)
    pipelines: List[str] = field(default_factory=list)
    load_ids: List[str] = field(default_factory=list)
    rows: Dict[str, int] = field(default_factory=dict)
    requests: Dict[str, Any] = field(default_factory=dict)  # RequestStats.as_dict(), summed over shops
    schema_changes: List[Dict[str, Any]] = field(default_factory=list)
    reconciliation: Optional[Dict[str, Any]] = None
    dbt: Optional[Dict[str, Any]] = None
    warnings: List[str] = field(default_factory=list)
    shops_not_visible: List[int] = field(default_factory=list)  # held in the warehouse, no longer seen by the key
    duration_seconds: float = 0.0  # the whole run: sync_seconds + dbt_seconds
    sync_seconds: float = 0.0  # reading the API and loading the warehouse
    dbt_seconds: Optional[float] = None  # the dbt build, when it ran
    status: str = "ok"

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "status": self.status, "run_id": self.run_id, "door": self.door,
            "destination": self.destination, "dataset": self.dataset, "shops": self.shops,
            "pipelines": self.pipelines, "load_ids": self.load_ids,
            "rows": dict(sorted(self.rows.items())), "rows_total": sum(self.rows.values()),
            "requests": self.requests.get("requests", 0),
            "rate_limited_429": self.requests.get("rate_limited", 0),
            "retries": self.requests.get("retries", 0),
            "tokens_fetched": self.requests.get("tokens_fetched", 0),
            "requests_by_resource": self.requests.get("by_resource", {}),
            "api_quirks": self.requests.get("api_quirks", []),
            # {resource: [shop ids]} listed by page numbers through a second of more rows than a
            # page (autosync_source/paging.py): reconciled on the shop's next run
            "paging_residual": self.requests.get("paging_residual", {}),
            "schema_changes": self.schema_changes, "warnings": self.warnings,
            "shops_not_visible": self.shops_not_visible,
            "duration_seconds": self.duration_seconds,
            "sync_seconds": self.sync_seconds,
            "dbt_seconds": self.dbt_seconds,
        }
        if self.reconciliation is not None:
            out["reconciliation"] = self.reconciliation
        if self.dbt is not None:
            out["dbt"] = self.dbt
        return out

    def describe(self) -> str:
        """The human summary the CLI prints."""
        lines: List[str] = [
            f"Loaded into {self.destination} dataset {self.dataset} in {self.sync_seconds}s"
            + (f" (then dbt {self.dbt_seconds}s: {self.duration_seconds}s in all)" if self.dbt_seconds is not None else ""),
            f"  requests: {self.requests.get('requests', 0)}  (429s met: {self.requests.get('rate_limited', 0)}, "
            f"retries: {self.requests.get('retries', 0)})",
            "  rows per table:",
        ]
        if self.rows:
            width = max(len(table) for table in self.rows)
            lines += [f"    {table.ljust(width)}  {count}" for table, count in sorted(self.rows.items())]
        else:
            lines.append("    (nothing changed since the last sync)")
        lines += [f"  schema change: {describe_schema_change(change)}" for change in self.schema_changes]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        if self.reconciliation is not None:
            rec = self.reconciliation
            lines.append(f"  deletes reconciled: {sum(rec['marked_deleted'].values())} marked deleted, "
                         f"{sum(rec['restored'].values())} restored, {rec['requests']} requests")
        if self.dbt is not None:
            lines.append(f"  dbt: {'ok' if self.dbt.get('success') else 'FAILED'} {self.dbt.get('summary', '')}".rstrip())
        return "\n".join(lines)



def add_request_counts(total: Dict[str, Any], counts: Dict[str, Any]) -> Dict[str, Any]:
    """Two `RequestStats.as_dict()` summed (each shop counts its own requests)."""
    out: Dict[str, Any] = {key: total.get(key, 0) + counts.get(key, 0)
                           for key in ("requests", "rate_limited", "retries", "tokens_fetched")}
    by_resource: Dict[str, Dict[str, int]] = {name: dict(kinds) for name, kinds in total.get("by_resource", {}).items()}
    for name, kinds in counts.get("by_resource", {}).items():
        for kind, n in kinds.items():
            by_resource.setdefault(name, {})[kind] = by_resource.get(name, {}).get(kind, 0) + n
    out["by_resource"] = by_resource
    out["api_quirks"] = sorted(set(total.get("api_quirks", [])) | set(counts.get("api_quirks", [])))
    residual: Dict[str, set] = {name: set(shops) for name, shops in total.get("paging_residual", {}).items()}
    for name, shops in counts.get("paging_residual", {}).items():
        residual.setdefault(name, set()).update(shops)
    out["paging_residual"] = {name: sorted(shops) for name, shops in sorted(residual.items())}
    return out

"""What re-anchoring after every page costs: the requests of a full sync before and after.

    python benchmarks/paging_cost.py            # the demo world and a 2-shop x 300-work-order world
    python benchmarks/paging_cost.py --smoke    # one small world (CI: tests/test_benchmarks_smoke.py style)

For each world, one full sync into a throwaway DuckDB file, three ways, on a still source:
- `before`: page numbers under the first anchor (what the paginator did while nothing moved);
- `after`: page 1 of `updated_after = <last row's second> - 1` after every page (as shipped);
- the bare floor: the shop list, per shop and resource ceil(n/100) list pages (at least one), one
  detail call per work order and inspection, counted from the emulator's truth dump.
It prints the request counts, after/floor (the goal: at most 1.02), the list requests alone, and the
listings that read a second of more rows than a page by page numbers (the residual case, which the
engine follows with a delete reconciliation on the next run). Nothing here asserts anything.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dlt  # noqa: E402

from autosync_emulator import Emulator  # noqa: E402
from autosync_source import RequestStats, autosync_source  # noqa: E402
from autosync_source.connection import ApiSettings, connect, list_shops, selected_endpoints  # noqa: E402
from autosync_source.paging import UpdatedAtPaginator  # noqa: E402
from autosync_source.settings import ENDPOINTS, PAGE_SIZE  # noqa: E402

logging.getLogger("autosync_source").setLevel(logging.ERROR)  # the residual warnings are in the table

DEMO_WORLD = dict(seed=42, shops=3, work_orders=200)  # pipelines/run.py's --demo world
WORLDS = {"demo (3 shops x 200 work orders)": DEMO_WORLD,
          "2 shops x 300 work orders": dict(seed=7, shops=2, work_orders=300)}
SMOKE_WORLDS = {"smoke (1 shop x 40 work orders)": dict(seed=5, shops=1, work_orders=40)}
DETAIL_RESOURCES = ("work_orders", "inspections")  # list rows are summaries (docs/autosync-api.md)


def bare_floor(truth: Dict[str, Any]) -> int:
    shops = [shop["id"] for shop in truth["objects"]["shops"]]
    floor = max(1, math.ceil(len(shops) / PAGE_SIZE))
    for endpoint in ENDPOINTS:
        if not endpoint.shop_scoped:
            continue
        rows = truth["objects"].get(endpoint.name, [])
        per_shop = {shop: sum(1 for row in rows if row["shop_id"] == shop) for shop in shops}
        floor += sum(max(1, math.ceil(n / PAGE_SIZE)) for n in per_shop.values())
        if endpoint.name in DETAIL_RESOURCES:  # one detail call per record
            floor += len(rows)
    return floor


def full_sync(emu: Emulator, workdir: Path, label: str) -> Dict[str, Any]:
    stats = RequestStats()
    pipeline = dlt.pipeline(pipeline_name=f"paging_cost_{label}", destination=dlt.destinations.duckdb(str(workdir / f"{label}.duckdb")),
                            dataset_name="raw", pipelines_dir=str(workdir / "pipelines"))
    # The source reads one shop: list the shops once (the floor's shops listing), then each in turn
    # into one pipeline, handing the source its row (no GET /shops/{id}).
    client = connect(ApiSettings(api_key=emu.api_key, base_url=emu.base_url), selected_endpoints(None), stats)
    for row in list_shops(client, stats):
        pipeline.run(autosync_source(base_url=emu.base_url, api_key=emu.api_key, shop=row, progress="quiet",
                                     request_stats=stats))
    counts = stats.as_dict()
    return {"requests": counts["requests"],
            "lists": sum(kinds.get("list", 0) for kinds in counts["by_resource"].values()),
            "residual": counts["paging_residual"]}


def measure(worlds: Dict[str, Dict[str, int]]) -> List[Dict[str, Any]]:
    results = []
    for name, world in worlds.items():
        with Emulator(**world) as emu, tempfile.TemporaryDirectory(prefix="paging_cost_") as tmp:
            floor = bare_floor(emu.truth())
            after = full_sync(emu, Path(tmp), "after")
            original = UpdatedAtPaginator._reanchor
            UpdatedAtPaginator._reanchor = lambda self, anchor: setattr(self, "page", self.page + 1)  # page numbers
            try:
                before = full_sync(emu, Path(tmp), "before")
            finally:
                UpdatedAtPaginator._reanchor = original
        results.append({"world": name, "floor": floor, "before": before, "after": after,
                        "after_over_floor": round(after["requests"] / floor, 4),
                        "before_over_floor": round(before["requests"] / floor, 4)})
    return results


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one small world")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    results = measure(SMOKE_WORLDS if args.smoke else WORLDS)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"full-sync requests, page size {PAGE_SIZE} (load average {load:.2f})")
    print("| world | floor | before (page numbers) | after (re-anchored) | after / floor "
          "| list requests before -> after | residual case (resource: shops) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        residual = "; ".join(f"{name}: {shops}" for name, shops in r["after"]["residual"].items()) or "none"
        print(f"| {r['world']} | {r['floor']} | {r['before']['requests']} | {r['after']['requests']} | "
              f"{r['after_over_floor']:.4f} | {r['before']['lists']} -> {r['after']['lists']} | {residual} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The results of benchmarks/run.py as a markdown table (printed, and written to latest.md)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional


def _n(value: Optional[float], digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _pct(value: Optional[float], digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def _met(goal: Dict[str, Any]) -> str:
    if goal["met"] is None:
        return "n/a"
    return "yes" if goal["met"] else f"**no** ({goal['shortfall']})"


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def render_markdown(results: Dict[str, Any]) -> str:
    mach = results["machine"]
    out = [
        f"# AutoSync benchmarks ({results['mode']} run, {results['started_at']})",
        "",
        f"Machine: {mach['arch']}, {mach['cores']} cores ({mach['cpu']}), {mach['memory_gb']} GB RAM, "
        f"Python {mach['python']}, dlt {mach['dlt']}, DuckDB {mach['duckdb']}. Load average at start "
        f"{mach.get('load_average_at_start')}, at end {mach.get('load_average_at_end')}. "
        f"Commit {results.get('commit')}, emulator from {results.get('emulator_dir')}. "
        f"Each figure is the median of {results['repeat']} run(s); the whole run took "
        f"{_n(results.get('duration_seconds'))} s.",
        "",
    ]
    ms = results["measurements"]
    summary: List[List[str]] = []
    if "rate_budget" in ms:
        r = ms["rate_budget"]
        s = r["settings"]
        summary.append([
            "1. rate-budget use",
            f"{_pct(r['budget_use'])} of the budget per full window (worst window {_pct(r['budget_use_worst_window'])}), "
            f"{_n(r['rate_limited_429'])} 429s; {s['shops']} shops on one key, {s['rate_limit']} requests per "
            f"{s['rate_window_seconds']:g} s, {_n(r['full_windows'])} full windows",
            ">= 95%, zero 429s",
            f"{_met(r['goals']['budget_use'])}; {_met(r['goals']['no_429'])}",
        ])
    if "request_cost" in ms:
        r = ms["request_cost"]
        summary.append([
            "2. request cost",
            f"full sync {_n(r['full_requests'])} requests = {r['full_over_floor']:.3f} x the floor "
            f"({_n(r['floor'])}); after {_pct(r['changed_share'], 2)} of records changed, incremental "
            f"{_n(r['incremental_requests'])} requests = {_pct(r['incremental_over_full'], 2)} of a full sync "
            f"(its own floor {_n(r['incremental_floor'])})",
            "<= 1.05 x floor; <= 3%",
            f"{_met(r['goals']['full_over_floor'])}; {_met(r['goals']['incremental_over_full'])}",
        ])
    if "throughput" in ms:
        r = ms["throughput"]
        a = r["approaches"]
        for name, g in r["goals"].items():
            mem = ", ".join(f"{_n(p['peak_rss_mb'])} MB at {_n(p['rows'])} rows" for p in r["memory"].get(name, []))
            summary.append([
                f"3. throughput ({name.replace('_', ' ')})",
                f"{_n(a[name]['rows_per_second'])} rows/s = {_pct(r['ratio_to_floor'][name], 0)} of the floor "
                f"({_n(a['floor']['rows_per_second'])}), {a[name]['rows_per_second'] / a['rest_api']['rows_per_second']:.2f} x "
                f"rest_api ({_n(a['rest_api']['rows_per_second'])}); peak RSS "
                f"{mem or _n(a[name]['peak_rss_mb']) + ' MB'}",
                ">= 50% of floor; > rest_api" + ("; flat memory" if "flat_memory" in g else ""),
                "; ".join(_met(x) for x in g.values()),
            ])
    if "scaling" in ms:
        points = ms["scaling"]["points"]
        summary.append([
            "4. scaling",
            "; ".join(f"{p['shops']} shop(s): {_n(p['rows_per_second'])} rows/s (x{p['speedup']:.2f}), "
                      f"{_n(p['requests'])} requests" for p in points),
            "show where it bends",
            "n/a",
        ])
    if "dbt" in ms:
        r = ms["dbt"]
        summary.append([
            "5. dbt build",
            f"{_n(r['seconds'], 1)} s on {_n(r['rows_loaded'])} raw rows (DuckDB)"
            f"{' with ' + ' '.join(r['dbt_args']) if r.get('dbt_args') else ''}, "
            f"{'succeeded' if r['success'] else 'FAILED'}"
            + "".join(f"; {_n(p['seconds'], 1)} s at {_n(p['rows'])} rows" for p in r.get("sizes", [])[:-1]),
            "measure",
            "n/a",
        ])
        large = r.get("large_world")
        if large:
            summary.append([
                "5. dbt build, 200k world",
                f"{_n(large['seconds'], 1)} s ({_n(large['cpu_seconds'], 1)} s CPU) on {_n(large['work_orders'])} work "
                f"orders, {_n(large['rows'])} raw rows written from the truth dump (benchmarks/dbt_bench.py), "
                f"{'succeeded' if large['success'] else 'FAILED: ' + str(large.get('summary'))}",
                "measure",
                "n/a",
            ])
    out += _table(["measurement", "figure", "goal", "met"], summary)

    if "throughput" in ms:
        r = ms["throughput"]
        s = r["settings"]
        out += [f"Throughput world: {s['shops']} shops x {s['work_orders_per_shop']} work orders, emulator "
                f"unthrottled, into DuckDB. `connector` = as shipped (parquet loads, .dlt/config.toml); "
                f"`connector_dlt_defaults` = the same source on dlt's defaults (`insert_values`, "
                f"{', '.join(f'{k}={v}' for k, v in s['dlt_default_env'].items())}), as `rest_api` runs.", ""]
        rows = []
        for name, summary_ in r["approaches"].items():
            phases = summary_.get("phases") or {}
            rows.append([name, _n(summary_["rows"]), _n(summary_["requests"]), _n(summary_["seconds"], 1),
                         _n(summary_["rows_per_second"]), f"{r['ratio_to_floor'][name]:.2f}",
                         _n(summary_["peak_rss_mb"]),
                         " / ".join(_n(phases.get(p), 1) for p in ("extract", "normalize", "load")) if phases else "-"])
        out += _table(["approach", "rows", "requests", "seconds", "rows/s", "x floor", "peak RSS MB",
                       "extract / normalize / load s"], rows)
    if "scaling" in ms:
        rows = []
        for p in ms["scaling"]["points"]:
            phases = p.get("phases") or {}
            rows.append([str(p["shops"]), _n(p["rows"]), _n(p["seconds"], 1), _n(p["rows_per_second"]),
                         f"{p['speedup']:.2f}", _n(p["requests"]), _n(p["requests_per_second"]),
                         _n(p["peak_rss_mb"]),
                         " / ".join(_n(phases.get(x), 1) for x in ("extract", "normalize", "load"))])
        out += [f"Scaling: {ms['scaling']['settings']['work_orders_per_shop']} work orders per shop, connector as shipped.", ""]
        out += _table(["shops", "rows", "seconds", "rows/s", "speedup", "requests", "requests/s (extract)",
                       "peak RSS MB", "extract / normalize / load s"], rows)
    return "\n".join(out)

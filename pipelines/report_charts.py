"""The report's charts as Plotly figures (JSON-ready dicts), one function per chart.

Plotly (plotly.py builds the figure, plotly.js draws it in the page) was chosen because its
Python package ships the complete plotly.min.js, so the report inlines it and opens offline with
no CDN, and its figures are interactive (hover shows the exact value). Each function takes rows
already aggregated by SQL (report_data) and returns None when there is nothing to draw, so the
page can say why instead of showing an empty chart.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import plotly.graph_objects as go

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
INK, MUTED, GRID = "#1d2733", "#6b7785", "#e9edf2"
SECOND_SERIES = "#37474f"  # car count and closing ratio: dark slate beside the shop's colour
TECHNICIAN_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
                      "#ff9da7", "#bab0ac")


def _layout(height: int = 300, **extra: Any) -> dict:
    layout = dict(
        height=height, margin=dict(l=56, r=16, t=16, b=40), font=dict(family=FONT, size=12, color=INK),
        paper_bgcolor="white", plot_bgcolor="white", hovermode="x unified",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0, font=dict(size=11)),
        xaxis=dict(showgrid=False, linecolor=GRID, tickfont=dict(color=MUTED)),
        yaxis=dict(gridcolor=GRID, zeroline=False, tickfont=dict(color=MUTED)),
    )
    layout.update(extra)
    return layout


def _figure(traces: Sequence[Any], layout: dict) -> dict:
    return go.Figure(data=list(traces), layout=layout).to_plotly_json()


def _float(value: Any) -> Optional[float]:
    # plotly.js takes JSON numbers; decimals become floats only to be drawn (labels come from SQL values)
    return None if value is None else float(value)


def _period_axis(grain: str) -> dict:
    if grain == "week":
        # ticks on Mondays, every other week: the weeks are ISO weeks (plotly would pick Sundays)
        return dict(type="date", tickformat="%d %b", tick0="2000-01-03", dtick=14 * 86400000)
    return dict(type="date", tickformat="%b %Y")


def revenue_and_cars(rows: Sequence[dict], key: str, colour: str, grain: str) -> Optional[dict]:
    """One shop: invoiced revenue (bars) and car count (line, right axis) per week or month."""
    if not rows:
        return None
    x = [r[key].isoformat() for r in rows]
    traces = [
        go.Bar(x=x, y=[_float(r["invoiced_revenue"]) for r in rows], name="Revenue", marker_color=colour,
               hovertemplate="$%{y:,.0f}<extra>Revenue</extra>", xhoverformat="%d %b %Y" if grain == "week" else "%B %Y"),
        go.Scatter(x=x, y=[int(r["car_count"]) for r in rows], name="Car count", yaxis="y2", mode="lines+markers",
                   line=dict(color=SECOND_SERIES, width=2), marker=dict(size=6),
                   hovertemplate="%{y:,} cars<extra>Car count</extra>"),
    ]
    layout = _layout(
        xaxis=dict(_period_axis(grain), showgrid=False, linecolor=GRID, tickfont=dict(color=MUTED)),
        yaxis=dict(title=dict(text="Revenue", font=dict(color=MUTED, size=11)), tickprefix="$", tickformat="~s",
                   gridcolor=GRID, zeroline=False, rangemode="tozero", tickfont=dict(color=MUTED)),
        yaxis2=dict(title=dict(text="Cars", font=dict(color=MUTED, size=11)), overlaying="y", side="right",
                    showgrid=False, rangemode="tozero", tickfont=dict(color=MUTED), tickformat=",d"),
        bargap=0.35, margin=dict(l=56, r=56, t=16, b=40),  # room for the car count axis
    )
    return _figure(traces, layout)


def revenue_by_shop(rows: Sequence[dict], key: str, shops: Sequence[Any], grain: str) -> Optional[dict]:
    """All shops: revenue per week or month, stacked by shop in each shop's colour."""
    if not rows:
        return None
    traces = []
    for shop in shops:
        mine = [r for r in rows if r["shop_id"] == shop.shop_id]
        if mine:
            traces.append(go.Bar(x=[r[key].isoformat() for r in mine], y=[_float(r["invoiced_revenue"]) for r in mine],
                                 name=shop.name, marker_color=shop.colour,
                                 hovertemplate="$%{y:,.0f}<extra>" + _escape(shop.name) + "</extra>"))
    layout = _layout(
        barmode="stack", bargap=0.35,
        xaxis=dict(_period_axis(grain), showgrid=False, linecolor=GRID, tickfont=dict(color=MUTED)),
        yaxis=dict(tickprefix="$", tickformat="~s", gridcolor=GRID, zeroline=False, tickfont=dict(color=MUTED)),
    )
    return _figure(traces, layout)


def technician_hours(rows: Sequence[dict]) -> Optional[dict]:
    """One shop: billed labor hours per week, a stacked bar segment per technician (bars, not
    lines: a week without a row is a week without hours, not a gap to interpolate over)."""
    rows = [r for r in rows if r["billed_labor_hours"] is not None]
    if not rows:
        return None
    traces = []
    technicians: dict[Any, str] = {}
    for r in rows:
        technicians.setdefault(r["technician_id"], str(r["technician_name"] or f"Technician {r['technician_id']}"))
    for i, (tech_id, name) in enumerate(sorted(technicians.items(), key=lambda item: item[1])):
        mine = [r for r in rows if r["technician_id"] == tech_id]
        traces.append(go.Bar(
            x=[r["week_start"].isoformat() for r in mine], y=[_float(r["billed_labor_hours"]) for r in mine],
            customdata=[int(r["work_orders_completed"] or 0) for r in mine],
            name=name, marker_color=TECHNICIAN_COLOURS[i % len(TECHNICIAN_COLOURS)],
            hovertemplate="%{y:,.1f} h, %{customdata} work orders<extra>" + _escape(name) + "</extra>"))
    layout = _layout(
        barmode="stack", bargap=0.35,
        xaxis=dict(_period_axis("week"), showgrid=False, linecolor=GRID, tickfont=dict(color=MUTED)),
        yaxis=dict(title=dict(text="Billed hours", font=dict(color=MUTED, size=11)), gridcolor=GRID, zeroline=False,
                   rangemode="tozero", tickfont=dict(color=MUTED)),
    )
    return _figure(traces, layout)


def approval_and_closing(approval: Sequence[dict], closing: Sequence[dict], colour: str) -> Optional[dict]:
    """One shop: inspection item approval rate and closing ratio per month, as percentages."""
    approval = [r for r in approval if r["item_approval_rate"] is not None]
    closing = [r for r in closing if r["closing_ratio"] is not None]
    if not approval and not closing:
        return None
    traces = []
    if approval:
        traces.append(go.Scatter(
            x=[r["month_start"].isoformat() for r in approval], y=[_float(r["item_approval_rate"]) for r in approval],
            name="Inspection items approved", mode="lines+markers", line=dict(color=colour, width=2.5),
            hovertemplate="%{y:.1%}<extra>Items approved</extra>"))
    if closing:
        traces.append(go.Scatter(
            x=[r["month_start"].isoformat() for r in closing], y=[_float(r["closing_ratio"]) for r in closing],
            name="Closing ratio (jobs sold)", mode="lines+markers", line=dict(color=SECOND_SERIES, width=2, dash="dot"),
            hovertemplate="%{y:.1%}<extra>Closing ratio</extra>"))
    layout = _layout(
        xaxis=dict(_period_axis("month"), showgrid=False, linecolor=GRID, tickfont=dict(color=MUTED)),
        yaxis=dict(tickformat=".0%", range=[0, 1.05], gridcolor=GRID, zeroline=False, tickfont=dict(color=MUTED)),
    )
    return _figure(traces, layout)


def _escape(text: str) -> str:
    # names go into plotly's hover templates, where %{...} and HTML-like text are interpreted
    return text.replace("%", "%%").replace("<", "&lt;").replace(">", "&gt;")

"""The report's charts as Plotly figures (JSON-ready dicts), one function per chart.

Plotly (plotly.py builds the figure, plotly.js draws it in the page) was chosen because its
Python package ships the complete plotly.min.js, so the report inlines it and opens offline with
no CDN, and its figures are interactive (hover shows the exact value). Each function takes rows
already aggregated by SQL (report_data) and returns None when there is nothing to draw, so the
page can say why instead of showing an empty chart.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import plotly.graph_objects as go

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
INK, MUTED, GRID = "#1d2733", "#6b7785", "#e9edf2"
SECOND_SERIES = "#37474f"  # car count and closing ratio: dark slate beside the shop's colour
PARTIAL_PATTERN = "/"  # the bar of a period the report ends inside: hatched, and labelled


@dataclass(frozen=True)
class Partial:
    """The last period of a chart when the report ends before that period does (a month to date)."""

    x: str  # the period's start, ISO date, as the chart's x values
    label: str  # what hovering its bar says, e.g. "partial month: 15 of 31 days"
    caption: str  # what the page says above the chart, e.g. "May 2025 is a partial month (15 of 31 days)"

    def shown_in(self, rows: Sequence[dict], key: str) -> bool:
        return any(r[key].isoformat() == self.x for r in rows)


def technician_colours(shop_colour: str, count: int, shop_colours: Sequence[str]) -> list[str]:
    """Colours for a shop's technicians: shades of the shop's own hue, each as far as it can be
    (CIE76 colour difference) from every shop's colour and from the other technicians', dark to
    light. Colour means shop everywhere in the report; a palette of its own (blue, orange,
    green, ...) made a technician look like another shop."""
    r, g, b = (int(shop_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    hue, _, saturation = colorsys.rgb_to_hls(r, g, b)
    # from nearly navy to a tint still visible on white
    shades = [_hex(colorsys.hls_to_rgb(hue, level / 100, min(saturation, cap))) for level in range(16, 84, 2)
              for cap in (0.75, 0.45, 0.2)]
    taken = [_lab(c) for c in shop_colours] + [_lab(shop_colour)]
    chosen: list[str] = []
    for _ in range(min(count, len(shades))):
        best = max((s for s in shades if s not in chosen), key=lambda s: min(_delta(_lab(s), t) for t in taken))
        chosen.append(best)
        taken.append(_lab(best))
    chosen.sort(key=lambda c: _lab(c)[0])
    return [chosen[i % len(chosen)] for i in range(count)]


def _hex(rgb: Sequence[float]) -> str:
    return "#%02x%02x%02x" % tuple(round(c * 255) for c in rgb)


def _lab(colour: str) -> tuple[float, float, float]:
    """CIELAB (D65) of an sRGB colour like #1f6fb2."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
              for c in (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))]
    x, y, z = (sum(w * c for w, c in zip(row, linear)) for row in (
        (0.4124 / 0.95047, 0.3576 / 0.95047, 0.1805 / 0.95047), (0.2126, 0.7152, 0.0722),
        (0.0193 / 1.08883, 0.1192 / 1.08883, 0.9505 / 1.08883)))
    f = [v ** (1 / 3) if v > 216 / 24389 else (24389 / 27 * v + 16) / 116 for v in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def _delta(a: Sequence[float], b: Sequence[float]) -> float:
    return sum((p - q) ** 2 for p, q in zip(a, b)) ** 0.5


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


def _partial_bars(x: Sequence[str], partial: Optional[Partial]) -> dict:
    """Arguments that hatch the partial period's bar and say so on hover (a point: `customdata` only)."""
    if partial is None or partial.x not in x:
        return {}
    return dict(marker_pattern_shape=[PARTIAL_PATTERN if v == partial.x else "" for v in x],
                customdata=[f" ({partial.label})" if v == partial.x else "" for v in x])


def revenue_and_cars(rows: Sequence[dict], key: str, colour: str, grain: str,
                     partial: Optional[Partial] = None) -> Optional[dict]:
    """One shop: invoiced revenue (bars) and car count (line, right axis) per week or month."""
    if not rows:
        return None
    x = [r[key].isoformat() for r in rows]
    revenue = [_float(r["invoiced_revenue"]) for r in rows]
    marks = _partial_bars(x, partial)
    suffix = "%{customdata}" if marks else ""
    traces = [
        go.Bar(x=x, y=revenue, name="Revenue", marker_color=colour, **marks,
               hovertemplate="$%{y:,.0f}" + suffix + "<extra>Revenue</extra>",
               xhoverformat="%d %b %Y" if grain == "week" else "%B %Y"),
        go.Scatter(x=x, y=[int(r["car_count"]) for r in rows], name="Car count", yaxis="y2", mode="lines+markers",
                   line=dict(color=SECOND_SERIES, width=2),
                   marker=dict(size=6, symbol=["circle-open" if marks and v == partial.x else "circle" for v in x]),
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


def revenue_by_shop(rows: Sequence[dict], key: str, shops: Sequence[Any], grain: str,
                    partial: Optional[Partial] = None) -> Optional[dict]:
    """All shops: revenue per week or month, stacked by shop in each shop's colour."""
    if not rows:
        return None
    traces = []
    for shop in shops:
        mine = [r for r in rows if r["shop_id"] == shop.shop_id]
        if mine:
            x = [r[key].isoformat() for r in mine]
            marks = _partial_bars(x, partial)
            traces.append(go.Bar(x=x, y=[_float(r["invoiced_revenue"]) for r in mine],
                                 name=shop.name, marker_color=shop.colour, **marks,
                                 hovertemplate="$%{y:,.0f}" + ("%{customdata}" if marks else "")
                                 + "<extra>" + _escape(shop.name) + "</extra>"))
    layout = _layout(
        barmode="stack", bargap=0.35,
        xaxis=dict(_period_axis(grain), showgrid=False, linecolor=GRID, tickfont=dict(color=MUTED)),
        yaxis=dict(tickprefix="$", tickformat="~s", gridcolor=GRID, zeroline=False, tickfont=dict(color=MUTED)),
    )
    return _figure(traces, layout)


def technician_hours(rows: Sequence[dict], shop_colour: str, shop_colours: Sequence[str],
                     partial: Optional[Partial] = None) -> Optional[dict]:
    """One shop: billed labor hours per week, a stacked bar segment per technician (bars, not
    lines: a week without a row is a week without hours, not a gap to interpolate over), in
    shades of the shop's colour."""
    rows = [r for r in rows if r["billed_labor_hours"] is not None]
    if not rows:
        return None
    traces = []
    technicians: dict[Any, str] = {}
    for r in rows:
        technicians.setdefault(r["technician_id"], str(r["technician_name"] or f"Technician {r['technician_id']}"))
    colours = technician_colours(shop_colour, len(technicians), shop_colours)
    for colour, (tech_id, name) in zip(colours, sorted(technicians.items(), key=lambda item: item[1])):
        mine = [r for r in rows if r["technician_id"] == tech_id]
        x = [r["week_start"].isoformat() for r in mine]
        marks = _partial_bars(x, partial)
        traces.append(go.Bar(
            x=x, y=[_float(r["billed_labor_hours"]) for r in mine],
            customdata=[[int(r["work_orders_completed"] or 0), marks["customdata"][i] if marks else ""]
                        for i, r in enumerate(mine)],
            marker_pattern_shape=marks.get("marker_pattern_shape"),
            name=name, marker_color=colour, marker_line=dict(color="white", width=0.5),
            hovertemplate="%{y:,.1f} h, %{customdata[0]} work orders%{customdata[1]}<extra>" + _escape(name) + "</extra>"))
    layout = _layout(
        barmode="stack", bargap=0.35,
        xaxis=dict(_period_axis("week"), showgrid=False, linecolor=GRID, tickfont=dict(color=MUTED)),
        yaxis=dict(title=dict(text="Billed hours", font=dict(color=MUTED, size=11)), gridcolor=GRID, zeroline=False,
                   rangemode="tozero", tickfont=dict(color=MUTED)),
    )
    return _figure(traces, layout)


def approval_and_closing(approval: Sequence[dict], closing: Sequence[dict], colour: str,
                         partial: Optional[Partial] = None) -> Optional[dict]:
    """One shop: inspection item approval rate and closing ratio per month, as percentages."""
    approval = [r for r in approval if r["item_approval_rate"] is not None]
    closing = [r for r in closing if r["closing_ratio"] is not None]
    if not approval and not closing:
        return None
    traces = []
    for rows, value, name, short, line in (
            (approval, "item_approval_rate", "Inspection items approved", "Items approved", dict(color=colour, width=2.5)),
            (closing, "closing_ratio", "Closing ratio (jobs sold)", "Closing ratio", dict(color=SECOND_SERIES, width=2, dash="dot"))):
        if not rows:
            continue
        x = [r["month_start"].isoformat() for r in rows]
        marks = _partial_bars(x, partial)
        traces.append(go.Scatter(
            x=x, y=[_float(r[value]) for r in rows], name=name, mode="lines+markers", line=line,
            marker=dict(symbol=["circle-open" if marks and v == partial.x else "circle" for v in x], size=7),
            customdata=marks.get("customdata"),
            hovertemplate="%{y:.1%}" + ("%{customdata}" if marks else "") + f"<extra>{short}</extra>"))
    layout = _layout(
        xaxis=dict(_period_axis("month"), showgrid=False, linecolor=GRID, tickfont=dict(color=MUTED)),
        yaxis=dict(tickformat=".0%", range=[0, 1.05], gridcolor=GRID, zeroline=False, tickfont=dict(color=MUTED)),
    )
    return _figure(traces, layout)


def _escape(text: str) -> str:
    # names go into plotly's hover templates, where %{...} and HTML-like text are interpreted
    return text.replace("%", "%%").replace("<", "&lt;").replace(">", "&gt;")

"""Turn ReportData (figures read by SQL) into one self-contained HTML page.

Python only formats here: money, percentages, counts and dates for reading, and which sentence to
show when a section has nothing to draw. The page inlines its stylesheet, its figures and
plotly.min.js from the plotly package, so it opens offline and can be mailed as one file.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional, Sequence

from pipelines import report_charts as charts
from pipelines.report_data import AGE_BUCKETS, SHOP_COLOURS, Freshness, Missing, Period, ReportData, Shop

TEMPLATE = Path(__file__).with_name("report_template.html")

METRIC_LABELS = {
    "invoiced_revenue": ("Revenue", "Invoiced, before tax"),
    "car_count": ("Car count", "Repair orders invoiced"),
    "average_repair_order": ("Average repair order", "Revenue per car"),
    "effective_labor_rate": ("Effective labor rate", "Labor revenue per hour sold"),
    "gross_margin": ("Gross margin", "After parts and labor cost"),
}


# ---------------------------------------------------------------------------------------------- formatting
def money(value: Any, cents: bool = False) -> str:
    if value is None:
        return "—"
    amount = Decimal(str(value))
    text = f"${abs(amount):,.2f}" if cents else f"${abs(amount):,.0f}"
    return f"-{text}" if amount < 0 and text.strip("$0.,") else text


def percent(value: Any) -> str:
    return "—" if value is None else f"{Decimal(str(value)) * 100:.1f}%"


def count(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def metric(name: str, value: Any) -> str:
    if name == "invoiced_revenue":
        return money(value)
    if name == "car_count":
        return count(value)
    if name == "average_repair_order":
        return money(value, cents=True)
    if name == "effective_labor_rate":
        return "—" if value is None else f"{money(value, cents=True)}/h"
    if name == "gross_margin":
        return percent(value)
    raise KeyError(name)


def day(value: Optional[dt.date]) -> str:
    return "—" if value is None else f"{value.day} {value:%b %Y}"


def month(value: dt.date) -> str:
    return f"{value:%B %Y}"


def timestamp(value: Optional[dt.datetime]) -> str:
    if value is None:
        return "never"
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return f"{value:%Y-%m-%d %H:%M} UTC"


def plural(n: Any, one: str, many: str) -> str:
    return f"{count(n)} {one if n == 1 else many}"


def month_label(p: Period) -> str:
    """The report's last month, saying when it is only partly over: "June 2025 to date (1 of 30 days)"."""
    if p.month_is_partial:
        return f"{month(p.current_month)} to date ({p.as_of.day} of {p.days_in_month} days)"
    return month(p.current_month)


def partial_month(p: Period) -> Optional[charts.Partial]:
    if not p.month_is_partial:
        return None
    days = f"{p.as_of.day} of {p.days_in_month} days"
    return charts.Partial(p.current_month.isoformat(), f"partial month: {days}",
                          f"{month(p.current_month)} is a partial month ({days}, to {day(p.as_of)})")


def partial_week(p: Period) -> Optional[charts.Partial]:
    if not p.week_is_partial:
        return None
    days = f"{p.as_of.weekday() + 1} of 7 days"
    return charts.Partial(p.current_week.isoformat(), f"partial week: {days}",
                          f"The week of {day(p.current_week)} is a partial week ({days}, to {day(p.as_of)})")


def _partial_caption(rows: Any, key: str, partial: Optional[charts.Partial], marked: str = "its bar is hatched") -> str:
    if partial is None or isinstance(rows, Missing) or not partial.shown_in(rows, key):
        return ""
    return f"{partial.caption}: {marked}."


def raw(value: Any) -> str:
    """The exact value as SQL returned it, kept in a data attribute beside the formatted text."""
    return "" if value is None else str(value)


# ---------------------------------------------------------------------------------------------- page model
class _Charts:
    def __init__(self) -> None:
        self.figures: dict[str, dict] = {}

    def block(self, title: str, figure: Optional[dict], empty: str, caption: str = "", name: str = "") -> dict:
        if figure is None:
            return dict(kind="empty", title=title, sentence=empty)
        chart_id = f"chart-{len(self.figures) + 1}"
        self.figures[chart_id] = figure
        return dict(kind="chart", title=title, id=chart_id, caption=caption, name=name)


def _rows_of(data: Any, shop_id: Optional[int]) -> Any:
    if isinstance(data, Missing):
        return data
    return [r for r in data if shop_id is None or r["shop_id"] == shop_id]


def _kpis(data: ReportData, key: Optional[int]) -> Any:
    if isinstance(data.headline, Missing):
        return data.headline
    # The marts have no rows of zeros: a shop without a row in a period invoiced nothing in it.
    nothing = {"invoiced_revenue": 0, "car_count": 0}
    period_row = data.headline.get(key) or nothing
    month_row = (data.headline_month.get(key) or nothing) if isinstance(data.headline_month, dict) else {}
    # SQL's sum() over no rows is NULL, not 0: the all-shops row of a month nobody invoiced in comes back
    # with NULL revenue and cars. Those two are sums, so NULL there means zero (the ratios stay NULL -> "—").
    period_row = {**period_row, **{k: 0 for k in nothing if period_row.get(k) is None}}
    if month_row:
        month_row = {**month_row, **{k: 0 for k in nothing if month_row.get(k) is None}}
    this_month = month_label(data.period)
    cards = []
    for name, (label, hint) in METRIC_LABELS.items():
        note = data.headline_notes.get(name)
        cards.append(dict(
            metric=name, label=label, hint=hint, note=note,
            value=metric(name, period_row.get(name)) if not note else "—", raw=raw(period_row.get(name)),
            month_value=metric(name, month_row.get(name)) if not note else "", month_raw=raw(month_row.get(name)),
            month_label=this_month))
    return cards


def _glance(data: ReportData) -> Any:
    if isinstance(data.headline, Missing):
        return data.headline
    rows = []
    for shop in data.shops:
        values = data.headline.get(shop.shop_id) or {}
        rows.append(dict(shop=shop, cells=[(metric(n, values.get(n)) if n not in data.headline_notes else "—")
                                           for n in METRIC_LABELS]))
    return dict(columns=[label for label, _ in METRIC_LABELS.values()], rows=rows)


def _receivables_table(data: ReportData, shops: Sequence[Shop], with_total_row: bool) -> Any:
    ar = data.receivables
    if isinstance(ar, Missing):
        return ar
    cell = {(r["shop_id"], r["age_bucket"]): r for r in ar.rows}
    keys: list[tuple[Optional[int], str]] = [(s.shop_id, s.name) for s in shops]
    if with_total_row:
        keys.append((None, "All shops"))
    rows = []
    for key, name in keys:
        cells = []
        for bucket in AGE_BUCKETS:
            r = cell.get((key, bucket))
            cells.append(dict(bucket=bucket, raw=raw(r["amount_owed"]) if r else "0", amount=money(r["amount_owed"]) if r else "$0",
                              invoices=plural(r["invoices"] if r else 0, "invoice", "invoices")))
        rows.append(dict(name=name, key="all" if key is None else key, cells=cells,
                         colour=next((s.colour for s in shops if s.shop_id == key), None)))
    if not any(k[0] in {r["shop_id"] for r in ar.rows} for k in keys):
        return Missing(f"Nothing is owed on {day(data.period.as_of)}: every invoiced repair order is paid.")
    as_of = data.period.as_of
    note = ""
    if ar.owed_on is not None and ar.owed_on != as_of:
        # the mart subtracted the payments made up to its own as_of_date; only dbt can count them to another day
        note = (f" The amounts are those still owed on {day(ar.owed_on)}, the day the marts were built for: "
                f"for what was owed on {day(as_of)}, build them with the dbt var as_of_date {as_of.isoformat()}.")
    return dict(buckets=[f"{b} days" for b in AGE_BUCKETS], rows=rows, aged_on=day(as_of), note=note)


def _declined(data: ReportData, shop: Shop) -> Any:
    if isinstance(data.declined, Missing):
        return data.declined
    rows = [r for r in data.declined if r["shop_id"] == shop.shop_id]
    totals = next((t for t in data.declined_totals if t["shop_id"] == shop.shop_id), None)
    since = day(data.period.month_start)
    if not rows:
        return Missing(f"Nothing declined since {since} is waiting for a follow-up: none was declined, or all of it "
                       "has been sold since.")
    caption = (f"{plural(totals['items'], 'piece', 'pieces')} of declined work worth {money(totals['amount'])} "
               f"since {since}, not sold since. The {len(rows)} largest, to call first:") if totals else ""
    return dict(caption=caption, pieces=raw(totals["items"]) if totals else "", amount=raw(totals["amount"]) if totals else "",
                rows=[dict(
                    declined_on=day(r["declined_on"]), customer=r["customer_name"] or "—", phone=r["phone"] or "",
                    email=r["email"] or "", vehicle=r["vehicle"] or "—",
                    what=r["what"] or ("inspection item" if r["source"] == "inspection_item" else "job"),
                    source="Inspection" if r["source"] == "inspection_item" else "Job",
                    returned=bool(r.get("vehicle_returned")),
                    amount=money(r["amount"], cents=True), raw=raw(r["amount"])) for r in rows])


def _declined_by_shop(data: ReportData) -> Any:
    """All shops: the call list's size per shop, and in all."""
    if isinstance(data.declined_totals, Missing):
        return data.declined_totals
    totals = {t["shop_id"]: t for t in data.declined_totals}

    def figures(key: Optional[int]) -> dict:
        pieces, amount = (totals.get(key) or {}).get("items") or 0, (totals.get(key) or {}).get("amount") or 0
        return dict(pieces=count(pieces), amount=money(amount), raw_pieces=raw(pieces), raw_amount=raw(amount))

    return dict(rows=[dict(shop=s, **figures(s.shop_id)) for s in data.shops], **figures(None),
                since=day(data.period.month_start))


def _freshness(data: ReportData) -> Any:
    fresh = data.freshness
    if isinstance(fresh, Missing):
        return fresh
    assert isinstance(fresh, Freshness)
    by_key = {(r["table_name"], r["shop_id"]): r for r in fresh.rows}
    tables = sorted({r["table_name"] for r in fresh.rows})

    def cell(row: Optional[dict]) -> dict:
        if row is None:
            return dict(text="never", failing=False, title="")
        failed = row.get("last_failed_at")
        title = ""
        if row.get("failing"):
            title = f"last attempt failed at {timestamp(failed)}"
            if row.get("last_error"):
                title += f": {row['last_error']}"
        return dict(text=timestamp(row["last_synced_at"]), failing=bool(row.get("failing")), title=title)

    return dict(source=fresh.source, last_load=timestamp(fresh.last_load) if fresh.last_load else None,
                shops=data.shops,
                rows=[dict(table=t.replace("_", " "), cells=[cell(by_key.get((t, s.shop_id))) for s in data.shops])
                      for t in tables])


def _sentence(data: Any, fallback: str) -> str:
    return data.sentence if isinstance(data, Missing) else fallback


def page_model(data: ReportData) -> tuple[dict, dict[str, dict]]:
    p = data.period
    c = _Charts()
    weeks_text = f"the {p.weeks} weeks from {day(p.week_start)} to {day(p.as_of)}"
    months_text = f"the {p.months} months from {month(p.month_start)} to {month(p.current_month)}"
    by_week, by_month = partial_week(p), partial_month(p)

    overall = dict(id="all", title="All shops", colour=None, kpis=_kpis(data, None), glance=_glance(data), blocks=[])
    if len(data.shops) > 1:
        overall["blocks"] += [
            c.block("Revenue by shop, weekly",
                    None if isinstance(data.weekly, Missing)
                    else charts.revenue_by_shop(data.weekly, "week_start", data.shops, "week", by_week),
                    _sentence(data.weekly, f"No invoices in {weeks_text}."), name="revenue-by-shop-weekly",
                    caption=_partial_caption(data.weekly, "week_start", by_week)),
            c.block("Revenue by shop, monthly",
                    None if isinstance(data.monthly, Missing)
                    else charts.revenue_by_shop(data.monthly, "month_start", data.shops, "month", by_month),
                    _sentence(data.monthly, f"No invoices in {months_text}."), name="revenue-by-shop-monthly",
                    caption=_partial_caption(data.monthly, "month_start", by_month)),
        ]
    overall["receivables"] = _receivables_table(data, data.shops, with_total_row=len(data.shops) > 1)
    overall["declined"] = _declined_by_shop(data)
    overall["freshness"] = _freshness(data)

    sections = []
    for shop in data.shops:
        weekly, monthly = _rows_of(data.weekly, shop.shop_id), _rows_of(data.monthly, shop.shop_id)
        throughput = _rows_of(data.throughput, shop.shop_id)
        approval, closing = _rows_of(data.approval, shop.shop_id), _rows_of(data.closing, shop.shop_id)
        ratio_figure = None
        if not (isinstance(approval, Missing) and isinstance(closing, Missing)):
            ratio_figure = charts.approval_and_closing([] if isinstance(approval, Missing) else approval,
                                                       [] if isinstance(closing, Missing) else closing, shop.colour, by_month)
        ratio_notes = " ".join(x.sentence for x in (approval, closing) if isinstance(x, Missing))
        if isinstance(approval, Missing) and isinstance(closing, Missing):
            ratio_empty = ratio_notes
        else:
            ratio_empty = f"No inspection sent and no job presented in {months_text}. {ratio_notes}".strip()
        blocks = [
            c.block("Revenue and car count, weekly",
                    None if isinstance(weekly, Missing) else charts.revenue_and_cars(weekly, "week_start", shop.colour, "week", by_week),
                    _sentence(weekly, f"No invoices in {weeks_text}."), name="revenue-weekly",
                    caption=_partial_caption(weekly, "week_start", by_week)),
            c.block("Revenue and car count, monthly",
                    None if isinstance(monthly, Missing)
                    else charts.revenue_and_cars(monthly, "month_start", shop.colour, "month", by_month),
                    _sentence(monthly, f"No invoices in {months_text}."), name="revenue-monthly",
                    caption=_partial_caption(monthly, "month_start", by_month)),
            c.block("Technician throughput: billed labor hours per week",
                    None if isinstance(throughput, Missing) else charts.technician_hours(throughput, shop.colour, SHOP_COLOURS, by_week),
                    _sentence(throughput, f"No work order completed by a technician in {weeks_text}."),
                    name="technician-hours", caption=_partial_caption(throughput, "week_start", by_week, "its bars are hatched")),
            c.block("Inspection approval and closing ratio, monthly", ratio_figure, ratio_empty,
                    caption=" ".join(filter(None, (
                        ratio_notes if ratio_figure is not None else "",
                        _partial_caption([r for rows, rate in ((approval, "item_approval_rate"), (closing, "closing_ratio"))
                                          if not isinstance(rows, Missing) for r in rows if r[rate] is not None],
                                         "month_start", by_month, "its points are hollow")))),
                    name="approval-closing"),
        ]
        sections.append(dict(id=f"shop-{shop.shop_id}", shop=shop, title=shop.name, colour=shop.colour,
                             kpis=_kpis(data, shop.shop_id), blocks=blocks, declined=_declined(data, shop),
                             receivables=_receivables_table(data, [shop], with_total_row=False)))

    generated = dt.datetime.now(dt.timezone.utc)
    model = dict(
        title="Owner's report", period=p, as_of=day(p.as_of), week_from=day(p.week_start),
        month_from=month(p.month_start), this_month=month_label(p),
        months_to=day(p.as_of) if p.month_is_partial else month(p.current_month), overall=overall, sections=sections,
        shops=data.shops, warehouse=data.warehouse, generated=timestamp(generated),
        headline_missing=data.headline if isinstance(data.headline, Missing) else None,
        multi=len(data.shops) > 1,
    )
    return model, c.figures


def render(data: ReportData) -> str:
    import jinja2
    import plotly
    from plotly.offline import get_plotlyjs
    from plotly.utils import PlotlyJSONEncoder

    model, figures = page_model(data)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.tests["missing"] = lambda value: isinstance(value, Missing)
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        **model,
        figures_json=jinja2.utils.markupsafe.Markup(_script_safe(json.dumps(figures, cls=PlotlyJSONEncoder))),
        plotly_js=jinja2.utils.markupsafe.Markup(_script_safe(get_plotlyjs())),
        plotly_version=plotly.__version__,
    )


def _script_safe(text: str) -> str:
    # Inside <script>, only "</script" (any case) and "<!--" end or confuse the element.
    return text.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT").replace("<!--", "<\\!--")

"""What the owner's report shows, read from the dbt marts with SQL.

Every figure is computed by the warehouse: sums over a period and the rates of a period (e.g. the
average repair order of 12 months = revenue / car count of those months, as dbt_project/README.md defines it) are SQL
aggregates over the marts; Python only picks the period and formats. A mart that is not in the
warehouse (an older dbt project) turns its section into a sentence (`Missing`), never an error.

The SQL is plain enough to run unchanged on DuckDB and Postgres: dates as `date 'YYYY-MM-DD'`
literals, `grouping sets`, `date_trunc` on timestamps, ratios cast to decimals (Postgres would
divide integers as integers).

One coherent thing, a little over 400 lines: the SQL of every section of the report.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from pipelines.report_warehouse import Warehouse

# Colours per shop (Okabe-Ito based, readable by colour-blind readers), assigned in shop_id order
# over every shop in the warehouse, so a shop keeps its colour whichever shops a report shows.
SHOP_COLOURS = ("#1f6fb2", "#d9822b", "#2a9d8f", "#c8553d", "#7b5ea7", "#8a6d3b", "#3d8c40", "#b5446e")

AGE_BUCKETS = ("0-30", "31-60", "61-90", "90+")
DECLINED_ROWS_PER_SHOP = 8
RAW_TABLES = ("shops", "employees", "customers", "vehicles", "work_orders", "payments", "inspections",
              "appointments", "inventory")


@dataclass
class Missing:
    """Why a section has nothing to show: a sentence for the reader."""

    sentence: str


@dataclass
class Period:
    as_of: dt.date  # the one date the whole page is as of (receivables are aged on it too)
    as_of_reason: str  # how as_of was chosen, shown in the header: "the report ends on ..."
    weeks: int
    months: int

    @property
    def week_start(self) -> dt.date:
        """Monday of the first of the `weeks` ISO weeks ending with the week of as_of."""
        monday = self.as_of - dt.timedelta(days=self.as_of.weekday())
        return monday - dt.timedelta(weeks=self.weeks - 1)

    @property
    def month_start(self) -> dt.date:
        """First day of the first of the `months` calendar months ending with the month of as_of."""
        index = self.as_of.year * 12 + self.as_of.month - 1 - (self.months - 1)
        return dt.date(index // 12, index % 12 + 1, 1)

    @property
    def current_month(self) -> dt.date:
        return self.as_of.replace(day=1)

    @property
    def current_week(self) -> dt.date:
        return self.as_of - dt.timedelta(days=self.as_of.weekday())

    @property
    def days_in_month(self) -> int:
        return (next_month(self.as_of) - self.current_month).days

    @property
    def month_is_partial(self) -> bool:
        """The report ends before its last month does: that month's figures are to date."""
        return self.as_of.day < self.days_in_month

    @property
    def week_is_partial(self) -> bool:
        return self.as_of.weekday() < 6


@dataclass
class Shop:
    shop_id: int
    name: str
    colour: str
    timezone: Optional[str] = None


@dataclass
class ReportData:
    period: Period
    shops: list[Shop]
    warehouse: str
    headline: Any  # {shop_id or None (all shops): {metric: value}} or Missing
    headline_month: Any  # the same for the month of as_of
    headline_notes: dict[str, str]  # metric -> why it is not shown
    weekly: Any  # rows: shop_id, week_start, invoiced_revenue, car_count
    monthly: Any  # rows: shop_id, month_start, invoiced_revenue, car_count
    throughput: Any  # rows: shop_id, week_start, technician_id, technician_name, billed_labor_hours, ...
    approval: Any  # rows: shop_id, month_start, item_approval_rate, items_recommended
    closing: Any  # rows: shop_id, month_start, closing_ratio, jobs_sold, jobs_declined
    declined: Any  # rows of the follow-up list
    declined_totals: Any  # rows: shop_id (None = all), items, amount
    receivables: Any  # Receivables or Missing
    freshness: Any  # Freshness or Missing
    sources: dict[str, str] = field(default_factory=dict)  # section -> mart(s) it was read from


@dataclass
class Receivables:
    rows: list[dict]  # shop_id (None = all), age_bucket, invoices, amount_owed: aged on the report's as_of
    owed_on: Optional[dt.date]  # the as_of_date the mart counted payments to (None: the mart does not say)


@dataclass
class Freshness:
    rows: list[dict]  # table_name, shop_id, last_synced_at
    last_load: Optional[dt.datetime]
    source: str  # a sentence: where these times come from


# ----------------------------------------------------------------------------------------------
class Marts:
    """The marts schema and the raw dataset of one warehouse, with the report's queries."""

    def __init__(self, warehouse: Warehouse, schema: str, raw_dataset: str, shop_ids: Sequence[int] | None = None):
        self.wh = warehouse
        self.schema = schema
        self.raw = raw_dataset
        self.shop_ids = list(shop_ids) if shop_ids else None
        self._columns: dict[str, set[str]] = {}

    def columns(self, mart: str) -> set[str]:
        if mart not in self._columns:
            self._columns[mart] = self.wh.columns(self.schema, mart)
        return self._columns[mart]

    def has(self, mart: str, *needed: str) -> bool:
        cols = self.columns(mart)
        return bool(cols) and all(c in cols for c in needed)

    def t(self, mart: str) -> str:
        return self.wh.table(self.schema, mart)

    def missing(self, mart: str, what: str, *needed: str) -> Missing:
        if not self.columns(mart):
            return Missing(f"{what} needs the {mart} mart, which this warehouse does not have yet: "
                           "build the current dbt project (python pipelines/run.py) to add it.")
        absent = ", ".join(c for c in needed if c not in self.columns(mart))
        return Missing(f"{what} needs the column(s) {absent} of {mart}, which this warehouse's version of "
                       "the mart lacks: build the current dbt project to add them.")

    def shop_filter(self, column: str = "shop_id") -> str:
        return f" and {column} in ({', '.join(str(int(s)) for s in self.shop_ids)})" if self.shop_ids else ""


def _d(day: dt.date) -> str:
    return f"date '{day.isoformat()}'"


# ----------------------------------------------------------------------------------------------
def load_shops(m: Marts) -> list[Shop]:
    if not m.has("dim_shops", "shop_id"):
        raise LookupError(f"the warehouse has no {m.schema}.dim_shops: build the marts first "
                          "(python pipelines/run.py), or pass --schema with the schema dbt builds into")
    cols = m.columns("dim_shops")
    name = "shop_name" if "shop_name" in cols else ("name" if "name" in cols else "cast(shop_id as varchar)")
    tz = next((c for c in ("timezone", "time_zone", "shop_timezone") if c in cols), None)
    rows = m.wh.query(f"select shop_id, {name} as shop_name{f', {tz} as timezone' if tz else ''} "
                      f"from {m.t('dim_shops')} order by shop_id")
    shops = [Shop(int(r["shop_id"]), str(r["shop_name"]), SHOP_COLOURS[i % len(SHOP_COLOURS)], r.get("timezone"))
             for i, r in enumerate(rows)]
    if not shops:
        raise LookupError(f"{m.schema}.dim_shops has no shop: sync a shop (python pipelines/run.py) before the report")
    if m.shop_ids:
        unknown = sorted(set(m.shop_ids) - {s.shop_id for s in shops})
        if unknown:
            raise LookupError(f"no shop {', '.join(map(str, unknown))} in the warehouse; its shops are "
                              f"{', '.join(str(s.shop_id) for s in shops) or 'none'}")
        shops = [s for s in shops if s.shop_id in m.shop_ids]
    return shops


def default_as_of(m: Marts) -> tuple[dt.date, str]:
    """The day the marts were built for: fct_accounts_receivable's as_of_date (dbt var as_of_date,
    else today in the shop's zone; the demo sets it to its world's today), so that what customers
    owe and every other figure of the page are as of one date. Without receivables to say it, the
    last day with an invoice: the report ends where the data ends."""
    if m.has("fct_accounts_receivable", "as_of_date"):
        row = m.wh.query(f"select max(as_of_date) as built_for from {m.t('fct_accounts_receivable')} "
                         f"where 1=1{m.shop_filter()}")
        if row and row[0]["built_for"] is not None:
            return _date(row[0]["built_for"]), "the day the marts were built for"
    if m.has("fct_revenue_daily", "date"):
        row = m.wh.query(f"select max(date) as last_day from {m.t('fct_revenue_daily')} where 1=1{m.shop_filter()}")
        if row and row[0]["last_day"] is not None:
            return _date(row[0]["last_day"]), "the last day with an invoice"
    return dt.datetime.now(dt.timezone.utc).date(), "today (UTC), the marts having no invoices"


def _date(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


HEADLINE_METRICS = ("invoiced_revenue", "car_count", "average_repair_order", "effective_labor_rate", "gross_margin")


def headline(m: Marts, start: dt.date, end: dt.date) -> tuple[Any, dict[str, str]]:
    """Headline figures per shop and for all shops (key None) over [start, end] months."""
    if m.has("fct_shop_kpis_monthly", "car_count", "invoiced_revenue", "labor_revenue", "labor_hours_sold",
             "gross_profit", "month_start"):
        rows = m.wh.query(f"""
            select shop_id,
                   sum(invoiced_revenue) as invoiced_revenue,
                   sum(car_count) as car_count,
                   cast(sum(invoiced_revenue) / nullif(sum(car_count), 0) as decimal(18, 2)) as average_repair_order,
                   cast(sum(labor_revenue) / nullif(sum(labor_hours_sold), 0) as decimal(18, 2)) as effective_labor_rate,
                   cast(sum(gross_profit) / nullif(sum(invoiced_revenue), 0) as decimal(9, 4)) as gross_margin
            from {m.t('fct_shop_kpis_monthly')}
            where month_start >= {_d(start)} and month_start <= {_d(end)}{m.shop_filter()}
            group by grouping sets ((shop_id), ())""")
        return {r["shop_id"]: r for r in rows}, {}
    if m.has("fct_revenue_daily", "date", "invoiced_revenue", "work_orders_invoiced"):
        # Until fct_shop_kpis_monthly exists: revenue and car count from the daily mart, over
        # the same whole months.
        end_exclusive = next_month(end)
        rows = m.wh.query(f"""
            select shop_id,
                   sum(invoiced_revenue) as invoiced_revenue,
                   sum(work_orders_invoiced) as car_count,
                   cast(sum(invoiced_revenue) / nullif(sum(work_orders_invoiced), 0) as decimal(18, 2)) as average_repair_order
            from {m.t('fct_revenue_daily')}
            where date >= {_d(start)} and date < {_d(end_exclusive)}{m.shop_filter()}
            group by grouping sets ((shop_id), ())""")
        note = ("needs the fct_shop_kpis_monthly mart, which this warehouse does not have yet "
                "(build the current dbt project)")
        return {r["shop_id"]: r for r in rows}, {"effective_labor_rate": note, "gross_margin": note}
    return m.missing("fct_shop_kpis_monthly", "The headline figures"), {}


def next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def revenue_weekly(m: Marts, p: Period) -> Any:
    if not m.has("fct_revenue_daily", "date", "invoiced_revenue", "work_orders_invoiced"):
        return m.missing("fct_revenue_daily", "Weekly revenue", "date", "invoiced_revenue", "work_orders_invoiced")
    return m.wh.query(f"""
        select shop_id, cast(date_trunc('week', cast(date as timestamp)) as date) as week_start,
               sum(invoiced_revenue) as invoiced_revenue, sum(work_orders_invoiced) as car_count
        from {m.t('fct_revenue_daily')}
        where date >= {_d(p.week_start)} and date <= {_d(p.as_of)}{m.shop_filter()}
        group by 1, 2 order by 1, 2""")


def revenue_monthly(m: Marts, p: Period) -> tuple[Any, str]:
    if m.has("fct_shop_kpis_monthly", "month_start", "invoiced_revenue", "car_count"):
        return m.wh.query(f"""
            select shop_id, month_start, invoiced_revenue, car_count
            from {m.t('fct_shop_kpis_monthly')}
            where month_start >= {_d(p.month_start)} and month_start <= {_d(p.as_of)}{m.shop_filter()}
            order by 1, 2"""), "fct_shop_kpis_monthly"
    if m.has("fct_revenue_daily", "date", "invoiced_revenue", "work_orders_invoiced"):
        return m.wh.query(f"""
            select shop_id, cast(date_trunc('month', cast(date as timestamp)) as date) as month_start,
                   sum(invoiced_revenue) as invoiced_revenue, sum(work_orders_invoiced) as car_count
            from {m.t('fct_revenue_daily')}
            where date >= {_d(p.month_start)} and date < {_d(next_month(p.as_of))}{m.shop_filter()}
            group by 1, 2 order by 1, 2"""), "fct_revenue_daily"
    return m.missing("fct_shop_kpis_monthly", "Monthly revenue"), ""


def technician_throughput(m: Marts, p: Period) -> Any:
    needed = ("week_start", "technician_id", "billed_labor_hours", "work_orders_completed")
    if not m.has("fct_technician_throughput_weekly", *needed):
        return m.missing("fct_technician_throughput_weekly", "Technician throughput", *needed)
    name = ("technician_name" if "technician_name" in m.columns("fct_technician_throughput_weekly")
            else "cast(technician_id as varchar)")
    return m.wh.query(f"""
        select shop_id, week_start, technician_id, {name} as technician_name,
               billed_labor_hours, work_orders_completed
        from {m.t('fct_technician_throughput_weekly')}
        where week_start >= {_d(p.week_start)} and week_start <= {_d(p.as_of)}{m.shop_filter()}
        order by 1, 3, 2""")


def inspection_approval(m: Marts, p: Period) -> Any:
    needed = ("month_start", "items_approved", "items_recommended")
    if not m.has("fct_inspection_approval_monthly", *needed):
        return m.missing("fct_inspection_approval_monthly", "Inspection approval", *needed)
    return m.wh.query(f"""
        select shop_id, month_start, sum(items_recommended) as items_recommended,
               cast(sum(items_approved) * 1.0 / nullif(sum(items_recommended), 0) as decimal(9, 4)) as item_approval_rate
        from {m.t('fct_inspection_approval_monthly')}
        where month_start >= {_d(p.month_start)} and month_start <= {_d(p.as_of)}{m.shop_filter()}
        group by 1, 2 order by 1, 2""")


def closing_ratio(m: Marts, p: Period) -> Any:
    needed = ("month_start", "jobs_sold", "jobs_declined")
    if not m.has("fct_service_advisor_monthly", *needed):
        return m.missing("fct_service_advisor_monthly", "The closing ratio", *needed)
    return m.wh.query(f"""
        select shop_id, month_start, sum(jobs_sold) as jobs_sold, sum(jobs_declined) as jobs_declined,
               cast(sum(jobs_sold) * 1.0 / nullif(sum(jobs_sold) + sum(jobs_declined), 0) as decimal(9, 4)) as closing_ratio
        from {m.t('fct_service_advisor_monthly')}
        where month_start >= {_d(p.month_start)} and month_start <= {_d(p.as_of)}{m.shop_filter()}
        group by 1, 2 order by 1, 2""")


def declined_work(m: Marts, p: Period) -> tuple[Any, Any]:
    """The follow-up list: declined work of the period not sold since (fct_declined_work.recovered),
    the largest amounts first, with who to call and about which vehicle."""
    needed = ("shop_id", "declined_on", "amount", "recovered", "vehicle_returned")
    if not m.has("fct_declined_work", *needed):
        missing = m.missing("fct_declined_work", "The declined-work follow-up list", *needed)
        return missing, missing
    cols = m.columns("fct_declined_work")
    pick = lambda *names: next((f"d.{n}" for n in names if n in cols), "null")  # noqa: E731
    vehicle = "null"
    join = ""
    if "vehicle_id" in cols and m.has("dim_vehicles", "vehicle_id", "make", "model"):
        year = "v.model_year" if "model_year" in m.columns("dim_vehicles") else "null"
        vehicle = f"concat_ws(' ', cast({year} as varchar), v.make, v.model)"
        join = f"left join {m.t('dim_vehicles')} v on v.vehicle_id = d.vehicle_id"
    where = (f"d.declined_on >= {_d(p.month_start)} and d.declined_on <= {_d(p.as_of)} "
             f"and not d.recovered{m.shop_filter('d.shop_id')}")
    rows = m.wh.query(f"""
        select * from (
            select d.shop_id, d.declined_on, d.amount,
                   {pick('source')} as source,
                   {pick('item_name', 'job_name', 'description', 'name')} as what,
                   {pick('customer_name')} as customer_name,
                   {pick('customer_phone', 'phone')} as phone,
                   {pick('customer_email', 'email')} as email,
                   {vehicle} as vehicle,
                   {pick('work_order_id')} as work_order_id,
                   d.vehicle_returned,
                   row_number() over (partition by d.shop_id order by d.amount desc, d.declined_on desc) as rank_in_shop
            from {m.t('fct_declined_work')} d {join}
            where {where}
        ) ranked
        where rank_in_shop <= {DECLINED_ROWS_PER_SHOP}
        order by shop_id, rank_in_shop""")
    totals = m.wh.query(f"""
        select d.shop_id, count(*) as items, sum(d.amount) as amount
        from {m.t('fct_declined_work')} d
        where {where}
        group by grouping sets ((d.shop_id), ())""")
    return rows, totals


def receivables(m: Marts, p: Period) -> Any:
    """What customers owe, aged on the report's as_of: fct_accounts_receivable's rows invoiced on
    or before it, in the mart's age buckets (days since the invoice: 0-30, 31-60, 61-90, 90+, as
    the mart defines them) counted from as_of rather than from the mart's own as_of_date. The
    amounts stay those the mart counted payments to (its as_of_date): the page says so when the
    two dates differ."""
    needed = ("shop_id", "invoiced_on", "amount_owed")
    if not m.has("fct_accounts_receivable", *needed):
        return m.missing("fct_accounts_receivable", "Accounts receivable", *needed)
    order = " ".join(f"when '{b}' then {i}" for i, b in enumerate(AGE_BUCKETS))
    age = f"({_d(p.as_of)} - invoiced_on)"  # date - date is a number of days on DuckDB and Postgres
    rows = m.wh.query(f"""
        select shop_id, age_bucket, count(*) as invoices, sum(amount_owed) as amount_owed
        from (
            select shop_id, amount_owed,
                   case when {age} <= 30 then '0-30' when {age} <= 60 then '31-60'
                        when {age} <= 90 then '61-90' else '90+' end as age_bucket
            from {m.t('fct_accounts_receivable')}
            where invoiced_on <= {_d(p.as_of)}{m.shop_filter()}
        ) aged
        group by grouping sets ((shop_id, age_bucket), (age_bucket))
        order by shop_id nulls first, case age_bucket {order} else 99 end""")
    owed_on = None
    if "as_of_date" in m.columns("fct_accounts_receivable"):
        built = m.wh.query(f"select max(as_of_date) as owed_on from {m.t('fct_accounts_receivable')} where 1=1{m.shop_filter()}")
        owed_on = _date(built[0]["owed_on"]) if built and built[0]["owed_on"] is not None else None
    return Receivables(rows, owed_on)


SYNC_LOG = "_autosync_runs"


def freshness(m: Marts) -> Any:
    """Last successful sync per shop and table, from the best source the warehouse has: the
    sync log the engine writes (one row per run, shop and resource), else the rows' own sync
    times."""
    wh = m.wh
    if m.has("sync_health", "shop_id", "table_name", "last_success_at", "last_status", "last_attempt_at"):
        error = "last_error" if "last_error" in m.columns("sync_health") else "null"
        rows = wh.query(f"""
            select table_name, shop_id, last_success_at as last_synced_at,
                   case when last_status <> 'ok' then last_attempt_at end as last_failed_at,
                   coalesce(last_status <> 'ok', false) as failing,
                   case when last_status <> 'ok' then {error} end as last_error
            from {m.t('sync_health')}
            where 1=1{m.shop_filter()}
            order by table_name, shop_id""")
        if rows:
            return Freshness(rows, None, "The last successful sync of each table per shop (sync_health, from the "
                                         "sync log); a red cell: the latest attempt after it failed.")
    if {"shop_id", "resource", "status", "finished_at"} <= wh.columns(m.raw, SYNC_LOG):
        rows = wh.query(f"""
            select resource as table_name, shop_id,
                   max(case when status = 'ok' then finished_at end) as last_synced_at,
                   max(case when status <> 'ok' then finished_at end) as last_failed_at,
                   coalesce(max(case when status <> 'ok' then finished_at end)
                            > coalesce(max(case when status = 'ok' then finished_at end), timestamp '1900-01-01'),
                            false) as failing
            from {wh.table(m.raw, SYNC_LOG)}
            where 1=1{m.shop_filter()}
            group by resource, shop_id
            order by resource, shop_id""")
        if rows:
            return Freshness(rows, None, "The last successful sync of each table per shop, from the sync log; "
                                         "a red cell: the latest attempt after it failed.")
    tables = [t for t in RAW_TABLES if {"shop_id", "_autosync_synced_at"} <= wh.columns(m.raw, t)]
    if not tables:
        return Missing(f"No raw tables in the dataset {m.raw}: nothing has been synced there "
                       "(or pass --dataset with the raw dataset the pipeline loads).")
    union = " union all ".join(
        f"select '{t}' as table_name, shop_id, max(_autosync_synced_at) as last_synced_at "
        f"from {wh.table(m.raw, t)} where 1=1{m.shop_filter()} group by shop_id" for t in tables)
    rows = wh.query(f"select * from ({union}) synced order by table_name, shop_id")
    last_load = None
    if {"status", "inserted_at"} <= wh.columns(m.raw, "_dlt_loads"):
        last_load = wh.query(f"select max(inserted_at) as last_load from {wh.table(m.raw, '_dlt_loads')} "
                             "where status = 0")[0]["last_load"]
    return Freshness(rows, last_load,
                     "The newest row each table received per shop (the rows' sync time). This warehouse has no "
                     "sync log yet, so a table where nothing changed shows the sync of its last change, "
                     "not the last run; the last completed load comes from dlt's load log.")


# ----------------------------------------------------------------------------------------------
def collect(warehouse: Warehouse, schema: str, raw_dataset: str, shop_ids: Sequence[int] | None,
            weeks: int, months: int, as_of: dt.date | None) -> ReportData:
    m = Marts(warehouse, schema, raw_dataset, shop_ids)
    shops = load_shops(m)
    if as_of is None:
        as_of, reason = default_as_of(m)
    else:
        reason = "the date asked for (--as-of)"
    period = Period(as_of, reason, weeks, months)
    head, notes = headline(m, period.month_start, period.as_of)
    head_month, _ = headline(m, period.current_month, period.as_of)
    monthly, monthly_source = revenue_monthly(m, period)
    declined, declined_totals = declined_work(m, period)
    return ReportData(
        period=period, shops=shops, warehouse=warehouse.description,
        headline=head, headline_month=head_month, headline_notes=notes,
        weekly=revenue_weekly(m, period), monthly=monthly,
        throughput=technician_throughput(m, period),
        approval=inspection_approval(m, period), closing=closing_ratio(m, period),
        declined=declined, declined_totals=declined_totals,
        receivables=receivables(m, period), freshness=freshness(m),
        sources={"monthly": monthly_source},
    )

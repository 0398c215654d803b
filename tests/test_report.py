"""The owner's report (pipelines/report.py) on a small demo warehouse: emulator -> connector -> dbt
-> report, opened in a real headless Chromium (Debian's `chromium`, installed by .ci/run).

Checked in the browser's rendered DOM: no script error or console message, every chart drawn (an
SVG with plotted traces), and every headline figure equal to the marts' values, queried here
independently. A screenshot is saved under the test's temp dir. On DuckDB and on Postgres.

One coherent thing, over 400 lines: one page, its figures and its drawing, on two warehouses.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import shutil
import subprocess
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

import dbt_helpers as h
from autosync_emulator import Emulator
from pipelines.dbt_runner import environment
from pipelines.engine.sync_log import COLUMNS as SYNC_LOG_COLUMNS
from pipelines.engine.sync_log import TABLE as SYNC_LOG_TABLE
from pipelines.report import main as report_main
from pipelines.report import write_report
from source_helpers import duckdb_pipeline, sync

WORLD = dict(seed=5, shops=3, work_orders=20, rate_limit=0)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")

# Injected first into <head> of a copy of the page: records every script error, unhandled promise
# rejection and console.error/warn into an element that --dump-dom then shows.
ERROR_COLLECTOR = """<script>
(function () {
  var errors = [];
  function record(kind, text) {
    errors.push(kind + ": " + text);
    var box = document.getElementById("test-errors");
    if (!box) { box = document.createElement("pre"); box.id = "test-errors"; (document.body || document.documentElement).appendChild(box); }
    box.textContent = errors.join("\\n");
  }
  window.addEventListener("error", function (e) { record("error", e.message + " at " + e.filename + ":" + e.lineno); });
  window.addEventListener("unhandledrejection", function (e) { record("rejection", String(e.reason)); });
  ["error", "warn"].forEach(function (level) {
    var original = console[level];
    console[level] = function () {
      record("console." + level, Array.prototype.join.call(arguments, " "));
      return original.apply(console, arguments);
    };
  });
  window.addEventListener("load", function () {
    var box = document.createElement("pre");
    box.id = "test-loaded"; box.hidden = true; box.textContent = "loaded";
    document.body.appendChild(box);
  });
})();
</script>"""


# ---------------------------------------------------------------------------------------------- the DOM
class Node:
    def __init__(self, tag: str, attrs: dict, parent: "Node | None"):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, attrs, parent, [], ""

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def classes(self) -> set:
        return set((self.attrs.get("class") or "").split())

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)


class DomParser(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        if self.current.tag not in ("script", "style"):
            self.current.text += data


def parse(html: str) -> Node:
    parser = DomParser()
    parser.feed(html)
    return parser.root


# ---------------------------------------------------------------------------------------------- Chromium
def open_in_chromium(page: Path, out_dir: Path) -> tuple[Node, str, Path]:
    """The rendered DOM of the page (with the error collector injected), Chromium's console log,
    and a screenshot, from one Chromium run (each run costs seconds on a busy machine)."""
    html = page.read_text(encoding="utf-8")
    probe = out_dir / "probe.html"
    probe.write_text(html.replace("<head>", "<head>" + ERROR_COLLECTOR, 1), encoding="utf-8")
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
              "--virtual-time-budget=10000", "--window-size=1366,3000", f"--user-data-dir={out_dir / 'chromium-profile'}"]
    screenshot = out_dir / "report.png"
    dumped = subprocess.run(common + ["--enable-logging=stderr", "--v=0", "--dump-dom", f"--screenshot={screenshot}",
                                      probe.as_uri()], capture_output=True, text=True, timeout=300)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000, dumped.stderr[-2000:]
    console = "\n".join(line for line in dumped.stderr.splitlines() if ":CONSOLE" in line)
    return parse(dumped.stdout), console, screenshot


# ---------------------------------------------------------------------------------------------- the marts
def _query(warehouse, sql: str) -> list[dict]:
    kind, where = warehouse
    if kind == "duckdb":
        with contextlib.closing(duckdb.connect(str(where), read_only=True)) as con:
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]
    import psycopg2
    with contextlib.closing(psycopg2.connect(**h.PG_DSN)) as con, con.cursor() as cur:
        cur.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def _has(warehouse, schema: str, table: str) -> bool:
    return bool(_query(warehouse, "select 1 from information_schema.tables "
                                  f"where table_schema = '{schema}' and table_name = '{table}'"))


def expected_headline(warehouse, schema: str) -> tuple[dict, dict, dt.date]:
    """Per shop (and 'all'): the headline figures of the last 12 months and of the as-of month,
    summed here from the marts' rows (the report has the warehouse sum them)."""
    as_of = page_date(warehouse, schema)
    index = as_of.year * 12 + as_of.month - 1 - 11
    first_month = dt.date(index // 12, index % 12 + 1, 1)
    this_month = as_of.replace(day=1)
    kpis = _has(warehouse, schema, "fct_shop_kpis_monthly")
    if kpis:
        rows = _query(warehouse, f"select * from {schema}.fct_shop_kpis_monthly")
        month_of = lambda r: r["month_start"]  # noqa: E731
        fields = dict(invoiced_revenue="invoiced_revenue", car_count="car_count")
    else:
        rows = _query(warehouse, f"select * from {schema}.fct_revenue_daily")
        month_of = lambda r: r["date"].replace(day=1)  # noqa: E731
        fields = dict(invoiced_revenue="invoiced_revenue", car_count="work_orders_invoiced")

    def figures(selected: list[dict]) -> dict:
        revenue = sum((Decimal(r[fields["invoiced_revenue"]]) for r in selected), Decimal(0))
        cars = sum(int(r[fields["car_count"]]) for r in selected)
        out = dict(invoiced_revenue=revenue, car_count=cars,
                   average_repair_order=(revenue / cars).quantize(Decimal("0.01")) if cars else None)
        if kpis:
            hours = sum((Decimal(r["labor_hours_sold"] or 0) for r in selected), Decimal(0))
            labor = sum((Decimal(r["labor_revenue"] or 0) for r in selected), Decimal(0))
            profit = sum((Decimal(r["gross_profit"] or 0) for r in selected), Decimal(0))
            out["effective_labor_rate"] = (labor / hours).quantize(Decimal("0.01")) if hours else None
            out["gross_margin"] = (profit / revenue).quantize(Decimal("0.0001")) if revenue else None
        return out

    period, month = {}, {}
    shops = sorted({r["shop_id"] for r in _query(warehouse, f"select shop_id from {schema}.dim_shops")})
    for key in shops + ["all"]:
        mine = [r for r in rows if key == "all" or r["shop_id"] == key]
        period[str(key)] = figures([r for r in mine if first_month <= month_of(r) <= as_of])
        month[str(key)] = figures([r for r in mine if month_of(r) == this_month])
    return period, month, as_of


def page_date(warehouse, schema: str) -> dt.date:
    """The one date a default report is as of: the day the marts were built for (the receivables'
    as_of_date), else the last day with an invoice."""
    built = _query(warehouse, f"select max(as_of_date) as d from {schema}.fct_accounts_receivable")[0]["d"]
    if built is None:
        built = _query(warehouse, f"select max(date) as d from {schema}.fct_revenue_daily")[0]["d"]
    return built if not isinstance(built, dt.datetime) else built.date()


def first_month(as_of: dt.date, months: int = 12) -> dt.date:
    index = as_of.year * 12 + as_of.month - 1 - (months - 1)
    return dt.date(index // 12, index % 12 + 1, 1)


def expected_receivables(warehouse, schema: str, as_of: dt.date) -> dict:
    """{(shop_id or 'all', bucket): (invoices, amount owed)}: the mart's rows invoiced by as_of,
    each put in its bucket here from the days between its invoice and as_of."""
    out: dict = {}
    for r in _query(warehouse, f"select shop_id, invoiced_on, amount_owed from {schema}.fct_accounts_receivable"):
        age = (as_of - r["invoiced_on"]).days
        if age < 0:
            continue
        bucket = "0-30" if age <= 30 else "31-60" if age <= 60 else "61-90" if age <= 90 else "90+"
        for key in (str(r["shop_id"]), "all"):
            invoices, owed = out.get((key, bucket), (0, Decimal(0)))
            out[(key, bucket)] = (invoices + 1, owed + Decimal(r["amount_owed"]))
    return out


def shown_receivables(dom: Node) -> dict:
    """{(shop key, bucket): (invoices, amount)} of the all-shops receivables table, zeros left out."""
    section = next(n for n in dom.walk() if n.attrs.get("id") == "all")
    table = next(n for n in section.walk() if "receivables" in n.classes())
    out = {}
    for row in (n for n in table.walk() if n.tag == "tr" and n.attrs.get("data-shop")):
        for cell in (n for n in row.walk() if n.attrs.get("data-bucket")):
            amount = Decimal(cell.attrs["data-value"])
            if amount:
                invoices = int(re.sub(r"\D", "", next(n for n in cell.walk() if "sub" in n.classes()).all_text()))
                out[(row.attrs["data-shop"], cell.attrs["data-bucket"])] = (invoices, amount)
    return out


def expected_declined(warehouse, schema: str, as_of: dt.date) -> dict:
    """{shop_id or 'all': (pieces, amount)}: declined work not recovered, declined in the
    report's 12 months up to as_of."""
    rows = _query(warehouse, f"select shop_id, amount from {schema}.fct_declined_work where not recovered "
                             f"and declined_on between date '{first_month(as_of)}' and date '{as_of}'")
    out: dict = {}
    for r in rows:
        for key in (str(r["shop_id"]), "all"):
            pieces, amount = out.get(key, (0, Decimal(0)))
            out[key] = (pieces + 1, amount + Decimal(r["amount"]))
    return out


def shown_declined(dom: Node) -> tuple[dict, dict]:
    """The declined-work headline as the page shows it: each shop section's caption, and the
    all-shops table; {shop key: (pieces, amount)}."""
    captions = {}
    for section in (n for n in dom.walk() if n.tag == "section" and n.attrs.get("id", "").startswith("shop-")):
        caption = next((n for n in section.walk() if "data-pieces" in n.attrs), None)
        if caption is not None:
            pieces, amount = int(caption.attrs["data-pieces"]), Decimal(caption.attrs["data-amount"])
            words = caption.all_text()
            assert words.startswith(f"{pieces:,} piece") and f"worth ${amount:,.0f} since" in words, words
            captions[section.attrs["id"][len("shop-"):]] = (pieces, amount)
    table = {}
    panel = next((n for n in dom.walk() if n.attrs.get("id") == "declined-all"), None)
    for row in (n for n in (panel.walk() if panel else []) if n.tag == "tr" and n.attrs.get("data-shop")):
        cells = [n for n in row.walk() if "data-value" in n.attrs]
        pieces, amount = int(cells[0].attrs["data-value"]), Decimal(cells[1].attrs["data-value"])
        if pieces:
            table[row.attrs["data-shop"]] = (pieces, amount)
    return captions, table


def _number(text: str) -> Decimal:
    return Decimal(re.sub(r"[$,%/h\s]", "", text))


def assert_headline_equals_marts(dom: Node, warehouse, schema: str) -> int:
    period, month, _ = expected_headline(warehouse, schema)
    cards = [n for n in dom.walk() if "kpi" in n.classes() and n.attrs.get("data-metric")]
    assert len(cards) >= 5 * len(period) - 5, "a headline card per metric, per shop and for all shops"
    checked = 0
    for card in cards:
        key, name = card.attrs["data-shop"], card.attrs["data-metric"]
        for role, expected in (("period", period), ("month", month)):
            node = next((n for n in card.walk() if n.attrs.get("data-role") == role), None)
            want = expected[key].get(name)
            if name not in expected[key]:  # a metric whose mart this warehouse lacks: said, not shown
                assert "Not shown" in card.all_text(), card.all_text()
                continue
            assert node is not None, (key, name, role)
            shown = node.all_text().strip()
            if want is None:
                assert shown == "—", (key, name, role, shown)
                continue
            value = Decimal(node.attrs["data-value"])
            tolerance = Decimal("0.0001") if name == "gross_margin" else Decimal("0.01")
            assert abs(value - Decimal(want)) <= tolerance, (key, name, role, value, want)
            # the text a reader sees is that value, formatted
            scale = {"invoiced_revenue": 1, "car_count": 1, "average_repair_order": Decimal("0.01"),
                     "effective_labor_rate": Decimal("0.01"), "gross_margin": Decimal("0.001")}[name]
            seen = _number(shown) / (100 if name == "gross_margin" else 1)
            assert abs(seen - Decimal(want)) <= scale, (key, name, role, shown, want)
            checked += 1
    return checked


def assert_page_sound(page: Path, tmp_path: Path) -> Node:
    html = page.read_text(encoding="utf-8")
    # self-contained: nothing is loaded from anywhere
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", html, re.I)
    dom, console, screenshot = open_in_chromium(page, tmp_path)
    ids = {n.attrs.get("id"): n for n in dom.walk() if n.attrs.get("id")}
    assert "test-loaded" in ids, "the page did not finish loading"
    assert "test-errors" not in ids, ids["test-errors"].all_text() if "test-errors" in ids else ""
    assert console == "", f"the page wrote to the console:\n{console}"
    charts = [n for n in dom.walk() if "chart" in n.classes()]
    assert len(charts) >= 8, f"expected the trend charts of 3 shops, found {len(charts)}"
    for chart in charts:
        assert "chart-failed" not in chart.classes(), chart.all_text()
        svgs = [n for n in chart.walk() if n.tag == "svg"]
        traces = [n for n in chart.walk() if "trace" in n.classes()]
        drawn = [n for n in chart.walk() if n.tag == "path" and len(n.attrs.get("d") or "") > 8]
        assert svgs and traces and drawn, f"chart {chart.attrs.get('id')} ({chart.attrs.get('data-chart')}) is not drawn"
    # no empty chart: an empty panel says why in a sentence; built by the current dbt project,
    # the warehouse has every mart the report reads
    for empty in (n for n in dom.walk() if "empty" in n.classes()):
        assert len(empty.all_text().strip()) > 20, empty.all_text()
        assert "does not have yet" not in empty.all_text(), empty.all_text()
    assert screenshot.is_file()
    return dom


# ---------------------------------------------------------------------------------------------- DuckDB
def emulated_today(emulator) -> dt.date:
    """The world's today, read here from the emulator's clock and its shops' zones."""
    from zoneinfo import ZoneInfo

    truth = emulator.truth()
    clock = dt.datetime.strptime(truth["clock"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    return min(clock.astimezone(ZoneInfo(shop["timezone"])).date() for shop in truth["objects"]["shops"])


def build_demo_warehouse(pipeline, model_schema: str | None = None) -> dt.date:
    """Sync a small emulator world and build what the report reads: the dbt exposure
    `owner_report` and its ancestors (`dbt run`: the marts' data tests belong to the dbt tests,
    here they would only double the cost), aged on the world's today as the demo does. The report
    then finding every mart it reads also checks that exposure lists them all. Returns that today."""
    import json

    from pipelines.dbt_runner import run_dbt

    with Emulator(**WORLD) as emu:
        sync(pipeline, emu)[0].raise_on_failed_jobs()
        today = emulated_today(emu)
    assert run_dbt(pipeline, "run", ["--select", "+exposure:owner_report", "--vars", json.dumps({"as_of_date": today.isoformat()})],
                   model_schema=model_schema).success
    return today


@pytest.fixture(scope="module")
def duckdb_built(tmp_path_factory):
    """A small demo warehouse in DuckDB (raw dataset autosync_raw, marts in autosync): its pipeline."""
    pipeline = duckdb_pipeline(tmp_path_factory.mktemp("report_duckdb"), name="report_test")
    pipeline.world_today = build_demo_warehouse(pipeline)
    return pipeline


@pytest.fixture(scope="module")
def duckdb_warehouse(duckdb_built):
    return Path(duckdb_built.destination_client().config.credentials.database)


def test_the_demo_writes_the_report_of_the_pipelines_warehouse(duckdb_built, tmp_path):
    """run.py --demo ends with report_for_pipeline: one line, where the page is."""
    from pipelines.report import report_for_pipeline

    line = report_for_pipeline(duckdb_built, tmp_path / "demo-report.html")
    assert line.startswith(f"The owner's report: {(tmp_path / 'demo-report.html').resolve()} ")
    assert "Revenue by shop, weekly" in (tmp_path / "demo-report.html").read_text(encoding="utf-8")


@needs_chromium
def test_duckdb_report_draws_every_chart_without_errors_and_shows_the_marts_figures(duckdb_warehouse, tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert report_main(["--duckdb-path", str(duckdb_warehouse), "--output", str(tmp_path / "report.html")]) == 0
    page = Path(out.getvalue().strip())
    assert page == (tmp_path / "report.html").resolve()
    dom = assert_page_sound(page, tmp_path)
    assert assert_headline_equals_marts(dom, ("duckdb", duckdb_warehouse), "autosync") >= 20
    text = dom.all_text()
    for section in ("All shops", "Data freshness", "Technician throughput", "Revenue and car count, weekly"):
        assert section in text


# Run in the page once it has loaded: waits until every chart is drawn (or failed), then reports
# the layout (document width, anything outside the viewport or cut short), the partial periods'
# labels and the colours of the technician charts, read from the figures plotly drew.
LAYOUT_PROBE = r"""(async () => {
  const charts = Array.from(document.querySelectorAll(".chart"));
  const drawn = () => charts.every(c => c.querySelector(".main-svg") || c.classList.contains("chart-failed"));
  for (let i = 0; i < 1200 && !drawn(); i++) { await new Promise(r => setTimeout(r, 100)); }
  const vw = document.documentElement.clientWidth;
  const describe = e => e.tagName.toLowerCase() + "." + (e.getAttribute("class") || "") + " '" +
                        (e.textContent || "").trim().slice(0, 40) + "'";
  const outside = [];
  document.querySelectorAll("h1, h2, h3, nav a, .kpi, .kpi .value, .panel, .caption, th, td, .chart .main-svg").forEach(e => {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && (r.right > vw + 0.5 || r.left < -0.5)) {
      outside.push(describe(e) + " spans " + Math.round(r.left) + "-" + Math.round(r.right));
    }
  });
  const cut = Array.from(document.querySelectorAll(".kpi .value, td, th"))
    .filter(e => e.getBoundingClientRect().width > 0 && e.scrollWidth > e.clientWidth + 1).map(describe);
  const sections = Array.from(document.querySelectorAll("section.shop[id^='shop-']")).map(s => {
    const figure = name => s.querySelector(".chart[data-chart='" + name + "']");
    const caption = name => { const f = figure(name); const c = f && f.previousElementSibling; return c ? c.textContent : ""; };
    const tech = figure("technician-hours");
    const monthly = figure("revenue-monthly");
    return {
      shop: s.id, colour: s.style.getPropertyValue("--accent").trim(),
      technicians: tech && tech.data ? tech.data.map(t => t.marker.color) : [],
      monthly_caption: caption("revenue-monthly"), weekly_caption: caption("revenue-weekly"),
      monthly_patterns: monthly && monthly.data ? Object.fromEntries(monthly.data[0].x.map((x, i) =>
        [x, ((monthly.data[0].marker.pattern || {}).shape || [])[i] || ""])) : {},
      month_labels: Array.from(s.querySelectorAll(".kpi .month")).map(m => m.textContent.split(":")[0].trim()),
    };
  });
  return {client: vw, document: document.documentElement.scrollWidth, outside: outside.slice(0, 20), cut: cut.slice(0, 20),
          charts: charts.length, drawn: charts.filter(c => c.querySelector(".main-svg")).length, sections: sections};
})()"""


def _lab(colour: str) -> tuple[float, float, float]:
    """CIELAB (D65) of #rrggbb, written here from the sRGB and CIE formulas (not the report's code)."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
    fx, fy, fz = (v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in (x, y, z))
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def colour_difference(a: str, b: str) -> float:
    """CIE76 delta E: about 2 is just noticeable; categories on a chart want 20 or more."""
    return sum((p - q) ** 2 for p, q in zip(_lab(a), _lab(b))) ** 0.5


def _inside_a_week_and_a_month(warehouse: Path) -> dt.date:
    """The latest day with an invoice that ends neither its month nor its ISO week, so that the
    report's last month and last week are both partial."""
    days = [r["date"] for r in _query(("duckdb", warehouse), "select distinct date from autosync.fct_revenue_daily")]
    return max(d for d in days if (d + dt.timedelta(days=1)).day != 1 and d.weekday() != 6)


@needs_chromium
def test_the_report_fits_a_phone_and_a_desktop_and_labels_partial_periods(duckdb_warehouse, tmp_path):
    """At 390 px (a phone) and 1280 px: the document is exactly as wide as the viewport, no figure
    lies outside it or is cut short, and every chart draws; the month the report ends inside is
    labelled partial; technicians never wear a shop's colour."""
    from browser_helpers import Browser
    from pipelines.report_data import SHOP_COLOURS

    as_of = _inside_a_week_and_a_month(duckdb_warehouse)
    page = write_report(tmp_path / "report.html", duckdb_path=str(duckdb_warehouse), as_of=as_of)
    days_in_month = ((as_of.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)).day
    with Browser() as browser:
        for width in (390, 1280):
            tab = browser.open(page.as_uri(), width)
            layout = tab.evaluate(LAYOUT_PROBE)
            tab.screenshot(tmp_path / f"report-{width}.png")
            assert tab.problems() == [], tab.problems()
            assert layout["client"] == width and layout["document"] == width, (width, layout)
            assert layout["outside"] == [] and layout["cut"] == [], (width, layout["outside"], layout["cut"])
            assert layout["charts"] >= 8 and layout["drawn"] == layout["charts"], (width, layout)
    sections = layout["sections"]
    assert len(sections) == 3
    month_label = f"{as_of:%B %Y} to date ({as_of.day} of {days_in_month} days)"
    partial_x = as_of.replace(day=1).isoformat()
    checked = 0
    for section in sections:
        assert section["month_labels"] and set(section["month_labels"]) == {month_label}, section
        if partial_x in section["monthly_patterns"]:  # the shop invoiced in the partial month
            assert f"{as_of:%B %Y} is a partial month ({as_of.day} of {days_in_month} days" in section["monthly_caption"]
            assert section["monthly_patterns"][partial_x] == "/", section["monthly_patterns"]
            assert set(section["monthly_patterns"].values()) == {"", "/"}  # only that month hatched
            checked += 1
        if section["weekly_caption"]:
            assert "is a partial week" in section["weekly_caption"], section
        technicians = section["technicians"]
        assert technicians and len(set(technicians)) == len(technicians), section
        for colour in technicians:
            nearest = min(colour_difference(colour, shop) for shop in SHOP_COLOURS)
            assert nearest >= 20, (section["shop"], colour, nearest)
    assert checked >= 1, "no shop invoiced in the partial month: the label went untested"


def test_the_page_is_as_of_one_date_and_re_ages_receivables_on_it(duckdb_built, duckdb_warehouse, tmp_path):
    """By default the page is as of the day the marts were built for (here the world's today):
    header, headline month and receivables all say that date. With --as-of another day, the
    receivables are aged on that day (the mart's buckets, counted from it) and the page says
    whose payments the amounts count; the declined-work headline is the work not recovered in
    the report's period."""
    warehouse = ("duckdb", duckdb_warehouse)
    today = duckdb_built.world_today
    assert {r["d"] for r in _query(warehouse, "select distinct as_of_date as d from autosync.fct_accounts_receivable")} == {today}
    page = write_report(tmp_path / "default.html", duckdb_path=str(duckdb_warehouse))
    dom = parse(page.read_text(encoding="utf-8"))
    text = " ".join(dom.all_text().split())
    shown = f"{today.day} {today:%b %Y}"
    assert f"as of {shown}" in text and f"the report ends on the day the marts were built for, {shown}" in text
    assert f"by days from the invoice to {shown};" in text and "the day the marts were built for:" not in text
    assert shown_receivables(dom) == expected_receivables(warehouse, "autosync", today)
    captions, table = shown_declined(dom)
    declined = expected_declined(warehouse, "autosync", today)
    assert captions == {k: v for k, v in declined.items() if k != "all"} and table == declined and declined

    # another day: 40 days back moves invoices between buckets and leaves later ones out
    earlier = today - dt.timedelta(days=40)
    page = write_report(tmp_path / "earlier.html", duckdb_path=str(duckdb_warehouse), as_of=earlier)
    dom = parse(page.read_text(encoding="utf-8"))
    text = " ".join(dom.all_text().split())
    again = f"{earlier.day} {earlier:%b %Y}"
    assert f"as of {again}" in text and "the report ends on the date asked for (--as-of)" in text
    assert f"by days from the invoice to {again};" in text
    assert f"those still owed on {shown}, the day the marts were built for" in text
    expected = expected_receivables(warehouse, "autosync", earlier)
    assert shown_receivables(dom) == expected and expected != expected_receivables(warehouse, "autosync", today)
    captions, table = shown_declined(dom)
    assert table == expected_declined(warehouse, "autosync", earlier)


@pytest.mark.slow
def test_the_demo_ages_receivables_on_its_worlds_today_and_its_report_is_as_of_that_day(tmp_path, monkeypatch):
    """`run.py --demo` as a user runs it (the demo world, dbt, the report): the receivables are
    aged on the emulated world's today, not the machine's, so they spread over several age
    buckets; the report is as of that day throughout, and its declined-work headline is the
    work not recovered in its period."""
    from pipelines import run

    with Emulator(**run.DEMO_WORLD) as emu:
        today = emulated_today(emu)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run.main(["--demo", "--quiet", "--pipelines-dir", str(tmp_path / "pipelines")]) == 0
    warehouse = ("duckdb", tmp_path / "autosync_demo.duckdb")
    aged = _query(warehouse, "select as_of_date, invoiced_on, age_bucket from autosync.fct_accounts_receivable")
    assert {r["as_of_date"] for r in aged} == {today}
    buckets = {r["age_bucket"] for r in aged}
    assert len(buckets) > 1, buckets
    assert today < dt.date.today()  # the world ends before the machine's today

    page = tmp_path / "autosync-report.html"
    assert f"The owner's report: {page}" in out.getvalue()
    dom = parse(page.read_text(encoding="utf-8"))
    text = " ".join(dom.all_text().split())
    shown = f"{today.day} {today:%b %Y}"
    assert f"as of {shown}" in text and f"the report ends on the day the marts were built for, {shown}" in text
    assert f"by days from the invoice to {shown};" in text and "the day the marts were built for:" not in text
    receivables = shown_receivables(dom)
    assert receivables == expected_receivables(warehouse, "autosync", today)
    assert len({bucket for _, bucket in receivables}) > 1
    captions, table = shown_declined(dom)
    declined = expected_declined(warehouse, "autosync", today)
    assert captions == {k: v for k, v in declined.items() if k != "all"} and table == declined and declined


def test_a_mart_the_warehouse_lacks_becomes_a_sentence(duckdb_warehouse, tmp_path):
    older = tmp_path / "older.duckdb"
    shutil.copy(duckdb_warehouse, older)
    with contextlib.closing(duckdb.connect(str(older))) as con:
        for mart in ("fct_technician_throughput_weekly", "fct_inspection_approval_monthly"):
            kind = con.execute("select table_type from information_schema.tables "
                               f"where table_schema = 'autosync' and table_name = '{mart}'").fetchone()[0]
            con.execute(f"drop {'view' if kind == 'VIEW' else 'table'} autosync.{mart}")
    page = write_report(tmp_path / "older.html", duckdb_path=str(older), shops=[2])
    dom = parse(page.read_text(encoding="utf-8"))
    text = " ".join(dom.all_text().split())
    assert "Technician throughput needs the fct_technician_throughput_weekly mart, which this warehouse does not have yet" in text
    assert "Inspection approval needs the fct_inspection_approval_monthly mart" in text
    assert not any(n.attrs.get("data-chart") == "technician-hours" for n in dom.walk())
    # one shop asked for: only its section, no all-shops comparison
    assert [n.attrs["id"] for n in dom.walk() if n.tag == "section"] == ["shop-2", "freshness"]


def test_freshness_comes_from_the_sync_log_and_a_failed_last_attempt_shows(duckdb_warehouse, tmp_path):
    logged = tmp_path / "logged.duckdb"
    shutil.copy(duckdb_warehouse, logged)
    page = write_report(tmp_path / "before.html", duckdb_path=str(logged))
    assert "This warehouse has no sync log yet" in " ".join(parse(page.read_text()).all_text().split())
    with contextlib.closing(duckdb.connect(str(logged))) as con:
        # the engine's sync log (its own columns): a row per run, shop and resource
        types = {"text": "text", "int": "bigint", "timestamp": "timestamptz"}
        con.execute(f"create table autosync_raw.{SYNC_LOG_TABLE} "
                    f"({', '.join(f'{name} {types[kind]}' for name, kind in SYNC_LOG_COLUMNS)})")
        con.execute(f"""insert into autosync_raw.{SYNC_LOG_TABLE} (run_id, shop_id, resource, started_at, finished_at, status, error) values
            ('a', 1, 'work_orders', '2025-06-01 09:59:00+00', '2025-06-01 10:00:00+00', 'ok', null),
            ('b', 1, 'work_orders', '2025-06-01 10:59:00+00', '2025-06-01 11:00:00+00', 'failed', 'API down'),
            ('c', 2, 'work_orders', '2025-06-01 07:59:00+00', '2025-06-01 08:00:00+00', 'failed', 'API down'),
            ('d', 2, 'work_orders', '2025-06-01 08:59:00+00', '2025-06-01 09:00:00+00', 'ok', null)""")

    def work_orders_row(page: Path) -> tuple[Node, list[Node]]:
        freshness = next(n for n in parse(page.read_text()).walk() if n.attrs.get("id") == "freshness")
        row = next(n for n in freshness.walk() if n.tag == "tr" and n.children[0].all_text() == "work orders")
        return freshness, [c for c in row.children if c.tag == "td"][1:]

    # read from the raw log
    freshness, (shop1, shop2, shop3) = work_orders_row(write_report(tmp_path / "raw-log.html", duckdb_path=str(logged)))
    assert "from the sync log" in freshness.all_text() and "sync_health" not in freshness.all_text()
    assert shop1.all_text().startswith("2025-06-01 10:00 UTC") and "failing" in shop1.classes()
    assert "last attempt failed at 2025-06-01 11:00 UTC" in shop1.all_text()
    assert shop2.all_text() == "2025-06-01 09:00 UTC" and "failing" not in shop2.classes()
    assert shop3.all_text() == "never"

    # read from the dbt model over it, which also gives the failure's message
    from pipelines.dbt_runner import DbtTarget, invoke_dbt
    invoke_dbt(DbtTarget.duckdb(logged, "autosync_raw", work_dir=str(tmp_path / "dbt")), "run", ["--select", "sync_health"])
    freshness, (shop1, shop2, shop3) = work_orders_row(write_report(tmp_path / "health.html", duckdb_path=str(logged)))
    assert "sync_health" in freshness.all_text()
    assert "last attempt failed at 2025-06-01 11:00 UTC: API down" in shop1.all_text() and "failing" in shop1.classes()
    assert shop2.all_text() == "2025-06-01 09:00 UTC" and "failing" not in shop2.classes()
    assert shop3.all_text() == "never"


@pytest.mark.parametrize("argv, code, message", [
    (["--shops", "1,x"], 2, "--shops takes comma-separated shop ids"),
    (["--as-of", "31/05/2025"], 2, "--as-of takes a date like 2025-05-31"),
    (["--weeks", "0"], 2, "--weeks must be 1-260"),
    (["--shops", "99"], 3, "no shop 99 in the warehouse"),
    (["--schema", "nothing_here"], 3, "has no nothing_here.dim_shops"),
])
def test_bad_arguments_get_one_clear_message(duckdb_warehouse, tmp_path, capsys, argv, code, message):
    assert report_main(["--duckdb-path", str(duckdb_warehouse), "-o", str(tmp_path / "r.html")] + argv) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_a_missing_warehouse_file_is_named(tmp_path, capsys):
    assert report_main(["--duckdb-path", str(tmp_path / "none.duckdb"), "-o", str(tmp_path / "r.html")]) == 3
    assert "no DuckDB warehouse at" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- Postgres
@pytest.mark.postgres
@needs_chromium
def test_postgres_report_draws_every_chart_without_errors_and_shows_the_marts_figures(tmp_path):
    import dlt

    raw, marts = h.unique_name("report_raw"), h.unique_name("report_marts")
    password = "pw-report-7731"  # trust auth takes any password; a distinctive one shows a leak
    try:
        pipeline = dlt.pipeline(
            pipeline_name="report_pg", dataset_name=raw, pipelines_dir=str(tmp_path / "dlt"),
            destination=dlt.destinations.postgres(f"postgresql://postgres:{password}@127.0.0.1:5432/test"))
        build_demo_warehouse(pipeline, marts)
        with environment({"DESTINATION__POSTGRES__CREDENTIALS": f"postgresql://postgres:{password}@127.0.0.1:5432/test"}):
            page = write_report(tmp_path / "report.html", destination="postgres", schema=marts, dataset=raw)
        assert password not in page.read_text(encoding="utf-8")
        dom = assert_page_sound(page, tmp_path)
        assert assert_headline_equals_marts(dom, ("postgres", None), marts) >= 20
        assert "Postgres 127.0.0.1:5432/test" in dom.all_text()
    finally:
        h.drop_postgres_schemas(raw, f"{raw}_staging", marts, f"{marts}_staging")


def test_postgres_without_credentials_says_which_setting(tmp_path, capsys):
    with environment({"DESTINATION__POSTGRES__CREDENTIALS": None}):
        code = report_main(["--destination", "postgres", "-o", str(tmp_path / "r.html")])
    assert code == 2 and "no Postgres credentials: set DESTINATION__POSTGRES__CREDENTIALS" in capsys.readouterr().err


@pytest.mark.postgres
def test_postgres_unreachable_is_one_message_without_the_password(tmp_path, capsys):
    with environment({"DESTINATION__POSTGRES__CREDENTIALS": "postgresql://postgres:sekrit-991@127.0.0.1:1/test"}):
        code = report_main(["--destination", "postgres", "-o", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert code == 3 and "cannot connect to Postgres at 127.0.0.1:1/test" in err and "sekrit-991" not in err

"""The MetricFlow commands of docs/analytics.md, run as written right after the demo, and a query
against a warehouse that does not exist failing with a message that names it (no empty file made).

The commands are read from the document (between its metricflow-commands markers), so an edit that
breaks them fails here. `pip install` is the one line not run: the test environment has the dev
extras; instead the extra it names must exist and bring MetricFlow."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "analytics.md"


def documented_commands() -> list[str]:
    text = DOC.read_text()
    block = re.search(r"<!-- metricflow-commands -->\s*```bash\n(.*?)```\s*<!-- /metricflow-commands -->", text, re.S)
    assert block, "docs/analytics.md lost its delimited ```bash block of MetricFlow commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_documented_install_line_names_an_extra_that_brings_metricflow():
    commands = documented_commands()
    installs = [c for c in commands if c.startswith("pip install")]
    assert len(installs) == 1
    extra = re.search(r"\.\[(\w+)\]", installs[0]).group(1)
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("dbt-metricflow") for d in extras[extra])
    assert commands.index(installs[0]) < commands.index("python pipelines/run.py --demo")
    assert any(c.startswith("mf query") for c in commands) and "mf validate-configs" in commands


def _workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A checkout-shaped directory: the repository's pipelines (linked) and a copy of dbt_project
    (dbt parse writes its target/ there), HOME of its own for dlt's state."""
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "pipelines").symlink_to(REPO / "pipelines")
    shutil.copytree(REPO / "dbt_project", root / "dbt_project", ignore=shutil.ignore_patterns("target", "logs"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOSYNC_", "DBT_"))}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO), DBT_SEND_ANONYMOUS_USAGE_STATS="false",
               DO_NOT_TRACK="1", RUNTIME__DLTHUB_TELEMETRY="false")
    (tmp_path / "home").mkdir()
    return root, env


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the demo (sync + dbt build), dbt parse and three MetricFlow runs
def test_the_documented_metricflow_commands_work_after_the_demo(tmp_path):
    pytest.importorskip("metricflow", reason="MetricFlow is in the metrics extra")
    root, env = _workspace(tmp_path)
    script = "\n".join(c for c in documented_commands() if not c.startswith("pip install"))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=root, env=env, capture_output=True,
                          text=True, timeout=1700)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    out = done.stdout
    assert "Successfully validated" in out and "ERRORS: 0" in out
    # the weekly effective labor rate of shop 2, and the monthly table by shop name
    assert re.search(r"metric_time__week\s+shop\s+effective_labor_rate", out), out[-3000:]
    assert re.search(r"metric_time__month\s+shop__shop_name\s+car_count\s+average_repair_order\s+gross_margin", out)
    assert len(re.findall(r"^\d{4}-\d{2}-\d{2}T00:00:00\s+2\s+\d", out, re.M)) >= 4  # weeks of shop 2 with a rate
    assert not (root / "dbt_project" / "warehouse.duckdb").exists()


@pytest.mark.timeout(600)
def test_a_query_against_a_missing_warehouse_names_it_and_creates_nothing(tmp_path):
    pytest.importorskip("metricflow", reason="MetricFlow is in the metrics extra")
    root, env = _workspace(tmp_path)
    commands = documented_commands()
    start = commands.index("cd dbt_project")
    query = next(c for c in commands if c.startswith("mf query"))
    # the documented lines from `cd dbt_project` on, without the validation (it would fail first)
    lines = [c for c in commands[start:] if c != "mf validate-configs" and not c.startswith("mf query")] + [query]
    script = "\n".join(lines)
    done = subprocess.run(["bash", "-eu", "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=550)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-2000:]
    missing = (root / "autosync_demo.duckdb").resolve()
    assert f'Cannot open database "{missing}" in read-only mode: database does not exist' in output, output[-2000:]
    assert not missing.exists() and not (root / "dbt_project" / "warehouse.duckdb").exists()

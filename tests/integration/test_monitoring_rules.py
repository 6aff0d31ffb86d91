"""monitoring/: the alert rules pass promtool's checks and unit tests; the dashboard is usable."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_metrics_promtool import promtool

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
RULES = MONITORING / "prometheus-alerts.yml"
RULE_TESTS = MONITORING / "tests" / "prometheus-alerts.test.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
# Names Prometheus or PromQL provide, not the daemon.
METRIC_NAME = re.compile(r"\b((?:telemetryd|process)_[a-z0-9_]+)\b")


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """promtool with these arguments (skipped only when told to, like the scrape check)."""
    binary = promtool()
    if binary is None:
        pytest.skip("TELEMETRYD_SKIP_PROMTOOL=1 and promtool is not installed")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120,
                          check=False, cwd=MONITORING)


def rule_expressions() -> list[str]:
    """Every `expr:` of the alert rules (the YAML is simple enough to read line-wise)."""
    text = RULES.read_text()
    blocks = re.findall(r"expr: \|\n((?:\s{10}.*\n)+)|expr: (.*)\n", text)
    return [multi or single for multi, single in blocks]


def dashboard_expressions() -> list[str]:
    """Every PromQL expression in the dashboard: panel targets, variables, annotations."""
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in board["templating"]["list"]
              if isinstance(v.get("query"), dict)]
    exprs += [a["expr"] for a in board["annotations"]["list"]]
    return exprs


def metric_names(exprs: list[str]) -> set[str]:
    """The daemon's metric names these expressions use."""
    return {name for expr in exprs for name in METRIC_NAME.findall(expr)}


def test_promtool_check_rules_passes() -> None:
    """`promtool check rules` accepts the alerting rules file."""
    checked = run_promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    """`promtool test rules`: each alert fires when it should and stays quiet when it should not."""
    tested = run_promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_rule_unit_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The unit tests are not vacuous: moving the time-to-critical bound makes them fail."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / RULES.name).write_text(
        RULES.read_text().replace("telemetryd_watch_seconds_to_critical) < 600",
                                  "telemetryd_watch_seconds_to_critical) < 60"))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / RULE_TESTS.name).write_text(
        RULE_TESTS.read_text().replace("../prometheus-alerts.yml", f"../rules/{RULES.name}"))
    tested = run_promtool("test", "rules", str(tmp_path / "tests" / RULE_TESTS.name))
    assert tested.returncode != 0
    assert "TelemetrydTimeToCriticalShort" in tested.stdout + tested.stderr


def test_every_alert_the_issue_asks_for_is_there_and_unit_tested() -> None:
    """Near critical, time to critical, orphans, pending, delivery, budget, not ticking, and
    the behaviour guard's reports per rule."""
    alerts = set(re.findall(r"- alert: (\w+)", RULES.read_text()))
    assert alerts == {
        "TelemetrydTreeNearCritical", "TelemetrydTimeToCriticalShort",
        "TelemetrydOrphansPilingUp", "TelemetrydReportsPendingTooLong",
        "TelemetrydDeliveryFailing", "TelemetrydBudgetAlmostSpent", "TelemetrydNotTicking",
        "TelemetrydDown", "TelemetrydGuardFired", "TelemetrydGuardRunaway",
    }
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == alerts


def test_dashboard_has_a_host_variable_every_daemon_query_filters_on() -> None:
    """One board serves many machines: a multi-valued `host` variable and every query uses it."""
    board = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    host = variables["host"]
    assert host["multi"] and host["includeAll"]
    assert "instance" in host["query"]["query"]
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'instance=~"$host"' in target["expr"], (panel["title"], target["expr"])
            assert target["datasource"]["uid"] == "${datasource}"


def test_rule_and_dashboard_expressions_name_known_metrics() -> None:
    """The name extraction the scrape test relies on finds what the files chart and alert on."""
    rules = metric_names(rule_expressions())
    assert {"telemetryd_orphans", "telemetryd_budget_used_ratio",
            "telemetryd_last_tick_timestamp_seconds", "telemetryd_guard_reports_total",
            "telemetryd_guard_active"} <= rules
    assert len(rule_expressions()) == 10
    board = metric_names(dashboard_expressions())
    assert {"telemetryd_watch_rss_bytes", "telemetryd_agent_cost_usd_total",
            "telemetryd_watch_rss_critical_bytes", "telemetryd_guard_reports_total"} <= board

"""Every metric the Grafana dashboard and the alert rules name is in a real daemon's scrape."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_agent_telemetry import otlp_port, scrape, send_claude_code_telemetry
from tests.e2e.test_watchdog import memory_watch, write_config
from tests.integration.test_monitoring_rules import (
    dashboard_expressions,
    metric_names,
    rule_expressions,
)
from tests.support.agents import Agent
from tests.support.daemon_proc import DaemonProcess
from tests.support.waiting import wait_for

BUDGET = '[[budget]]\nagent = "claude-code"\ndaily_usd = 1\n'


def sample_names(exposition: str) -> set[str]:
    """Names of every sample in an exposition (counters with `_total`, histogram `_bucket`...)."""
    return {s.name for f in text_string_to_metric_families(exposition) for s in f.samples}


def test_dashboard_and_rule_metrics_exist_in_a_real_scrape(tmp_path: Path) -> None:
    """A daemon with a leaking agent, its telemetry, a budget and a pending report exports all."""
    with Agent() as agent:
        body = memory_watch(agent, 20, 40)
        config = write_config(tmp_path, body)
        config.write_text(config.read_text() + BUDGET)
        daemon = DaemonProcess(config, tmp_path / "log.jsonl")
        try:
            daemon.wait_event("process.seen", pid=agent.pid)
            send_claude_code_telemetry(otlp_port(config), agent.pid)
            agent.command("grow 60")
            daemon.wait_event("report.written", pid=agent.pid)
            wanted = metric_names(rule_expressions()) | metric_names(dashboard_expressions())

            last: set[str] = set()
            steps: list[None] = []

            def complete() -> set[str] | None:
                last.clear()
                last.update(sample_names(scrape(config)))
                if "telemetryd_watch_seconds_to_critical" not in last and len(steps) < 200:
                    # The time to critical needs growth over half the trend window after the
                    # start-up ramp ([daemon] trend_startup), not one step: keep growing.
                    agent.command("grow 0.5")
                    steps.append(None)
                return set(last) if wanted <= last else None
            try:
                names = wait_for(complete, timeout=60, message="every named metric in the scrape")
            except AssertionError as exc:
                raise AssertionError(f"missing from the scrape: {sorted(wanted - last)}") from exc
        finally:
            assert daemon.stop() == 0
    assert names is not None
    assert "telemetryd_orphans" in names and "telemetryd_budget_used_ratio" in names

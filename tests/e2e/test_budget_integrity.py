"""End to end: spend only grows, and a new session of an agent over its daily budget is blocked.

A real daemon receives real OTLP exports (the OpenTelemetry SDK's exporters); the real
``budget check`` command answers as the Claude Code hook would be answered.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.e2e.test_agent_telemetry import otlp_port, scrape
from tests.e2e.test_budget_hook import hook
from tests.e2e.test_watchdog import write_config
from tests.support.daemon_proc import DaemonProcess, cli
from tests.support.waiting import wait_for

MODEL = "claude-sonnet-4-5"
SESSION = "sess-over"
BUDGET = '\n[[budget]]\nagent = "claude-code"\nsession_usd = 20.0\ndaily_usd = 20.0\n'
# The tick sees the test process under pid 1: the default trust ("watched") takes it.
WATCH_ALL = 'name = "init"\npid = 1'


def send_api_requests(port: int, session: str, cost_usd: float, requests: int = 5) -> None:
    """Claude Code's ``api_request`` events, as its log exporter sends them."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "claude-code"}))
    exporter = OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs")
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("com.anthropic.claude_code.events")
    try:
        for _ in range(requests):
            logger.emit(body="claude_code.api_request", attributes={
                "event.name": "api_request", "session.id": session, "model": MODEL,
                "cost_usd": str(cost_usd / requests), "duration_ms": "900",
                "input_tokens": "2000", "output_tokens": "500",
                "cache_read_tokens": "0", "cache_creation_tokens": "0"})
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()


def send_metrics(port: int, session: str, tokens: int, cost_usd: float) -> None:
    """One metrics export of Claude Code's token and cost counters for one session."""
    resource = Resource.create({"service.name": "claude-code"})
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}/v1/metrics"),
        export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("com.anthropic.claude_code")
    try:
        attrs = {"model": MODEL, "session.id": session}
        meter.create_counter("claude_code.token.usage").add(tokens, {**attrs, "type": "input"})
        meter.create_counter("claude_code.cost.usage", unit="USD").add(cost_usd, attrs)
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()


def agent_figure(config: Path) -> tuple[int, float, str]:
    """Exit code, USD spent and the line of `budget check --agent claude-code`."""
    result = cli("--config", str(config), "budget", "check", "--agent", "claude-code")
    line = (result.stdout + result.stderr).strip()
    found = re.search(r"(\d+\.\d\d) (?:USD )?of", line)
    assert found, line
    return result.returncode, float(found.group(1)), line


def stored_tokens(config: Path, at_least: int) -> bool:
    """Whether `stats` shows at least this many input tokens for claude-code."""
    rows = json.loads(cli("--config", str(config), "stats", "--json").stdout)["agents"]
    return any((r.get("tokens") or {}).get("input", 0) >= at_least
               for r in rows.get("rows") or [])


@pytest.mark.parametrize("trust", [None, "any"])
def test_a_cheap_metrics_export_does_not_unblock_a_session_over_budget(
        tmp_path: Path, trust: str | None) -> None:
    """50 M tokens at 0.000001 USD sent as metrics for a session over its limit: the hook
    still blocks (exit 2) and `budget check --agent` does not drop below what was spent,
    under the default trust and with every sender trusted alike."""
    config = write_config(tmp_path, WATCH_ALL, extra=BUDGET, trust=trust)
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        port = otlp_port(config)
        send_api_requests(port, SESSION, cost_usd=25.0)
        wait_for(lambda: stored_tokens(config, 10_000), message="api_request events stored")
        before_code, _ = hook(config, SESSION)
        before = agent_figure(config)

        send_metrics(port, SESSION, tokens=50_000_000, cost_usd=0.000001)
        wait_for(lambda: stored_tokens(config, 50_000_000), message="metrics export stored")
        after_code, after_stderr = hook(config, SESSION, tool="Write")
        after = agent_figure(config)
        exposition = scrape(config)
    finally:
        assert daemon.stop() == 0
    assert before_code == 2 and before[0] == 2 and before[1] == 25.0, before
    assert after_code == 2, after_stderr
    assert "Write blocked" in after_stderr
    assert after[0] == 2 and after[1] >= before[1], after
    # The 0.000001 USD was refused as implausible for 50 M tokens, and counted as such.
    assert 'telemetryd_otlp_points_total{outcome="implausible_cost",signal="metrics"} 1.0' \
        in exposition


def test_an_agent_over_its_daily_budget_cannot_start_a_fresh_session(tmp_path: Path) -> None:
    """claude-code spent 25 of its 20 USD daily budget in one session; a brand-new session
    that has sent nothing yet has its tool calls blocked too, naming the daily budget."""
    config = write_config(tmp_path, WATCH_ALL, extra=BUDGET.replace("session_usd = 20.0\n", ""),
                          trust=None)
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        port = otlp_port(config)
        send_api_requests(port, "sess-first", cost_usd=25.0)
        wait_for(lambda: stored_tokens(config, 10_000), message="api_request events stored")
        code, stderr = hook(config, "sess-brand-new")
    finally:
        assert daemon.stop() == 0
    assert code == 2, stderr
    [line] = stderr.strip().splitlines()
    assert "claude-code spent 25.00 USD of its 20.00 USD daily budget" in line, line

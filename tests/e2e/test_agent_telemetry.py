"""End to end: an agent's OpenTelemetry reaches the daemon, `stats`, and its crash report."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_watchdog import memory_watch, pending_envelopes, write_config
from tests.support.agents import Agent
from tests.support.daemon_proc import DaemonProcess, cli
from tests.support.waiting import wait_for


def otlp_port(config: Path) -> int:
    """The receiver's real port, as `status` reports it."""
    def port() -> int | None:
        result = cli("--config", str(config), "status", "--json")
        otlp = json.loads(result.stdout).get("otlp") or {}
        return int(otlp["listen"].rsplit(":", 1)[1]) if otlp.get("up") else None
    return wait_for(port, message="OTLP receiver up")  # type: ignore[no-any-return]


def scrape(config: Path) -> str:
    """GET /metrics from the daemon's Prometheus listener."""
    status = json.loads(cli("--config", str(config), "status", "--json").stdout)
    host, port = status["metrics"]["listen"].rsplit(":", 1)
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=30) as response:
        return response.read().decode()


def send_claude_code_telemetry(port: int, pid: int) -> None:
    """What Claude Code exports, sent by the real OpenTelemetry SDK over OTLP/HTTP protobuf."""
    resource = Resource.create({
        "service.name": "claude-code", "service.instance.id": "inst-1",
        "session.id": "sess-42", "process.pid": pid,
    })
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}/v1/metrics"),
        export_interval_millis=3_600_000,
    )
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meters.get_meter("com.anthropic.claude_code")
    tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
    cost = meter.create_counter("claude_code.cost.usage", unit="USD")
    model = "claude-sonnet-4-5"
    tokens.add(12_000, {"type": "input", "model": model})
    tokens.add(800, {"type": "output", "model": model})
    tokens.add(50_000, {"type": "cacheRead", "model": model})
    cost.add(0.0912, {"model": model})
    assert meters.force_flush(10_000)
    meters.shutdown()

    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs"))
    )
    logger = logs.get_logger("com.anthropic.claude_code.events")
    logger.emit(body="claude_code.api_request", attributes={
        "event.name": "api_request", "model": model, "duration_ms": 2300, "cost_usd": 0.0912,
        "input_tokens": 12_000, "output_tokens": 800})
    logger.emit(body="claude_code.tool_result", attributes={
        "event.name": "tool_result", "tool_name": "Bash", "success": "false",
        "duration_ms": 1500})
    logger.emit(body="claude_code.api_error", attributes={
        "event.name": "api_error", "model": model, "status_code": 429,
        "error": "rate_limit_error: too many requests"})
    assert logs.force_flush(10_000)
    logs.shutdown()


def test_agent_telemetry_shows_in_stats_and_in_its_crash_report(tmp_path: Path) -> None:
    """Tokens and cost appear in `stats`; the agent's crash report carries its last activity."""
    with Agent() as agent:
        config = write_config(tmp_path, memory_watch(agent, 30, 60))
        daemon = DaemonProcess(config, tmp_path / "log.jsonl")
        try:
            daemon.wait_event("process.seen", pid=agent.pid)
            send_claude_code_telemetry(otlp_port(config), agent.pid)

            def model_rows() -> list[dict] | None:
                result = cli("--config", str(config), "stats", "--json", "--by", "model")
                rows = json.loads(result.stdout)["agents"].get("rows")
                return rows or None
            rows = wait_for(model_rows, message="tokens in `telemetryd stats`")
            exposition = scrape(config)
            agent.command("grow 90")
            written = daemon.wait_event("report.written", pid=agent.pid)
        finally:
            assert daemon.stop() == 0
    [row] = rows
    assert row["key"] == "claude-sonnet-4-5"
    assert row["tokens"] == {"input": 12_000, "output": 800, "cache_read": 50_000}
    assert abs(row["cost_usd"] - 0.0912) < 1e-9
    human = cli("--config", str(config), "stats", "--by", "agent").stdout
    assert "claude-code" in human and "0.0912" in human

    [envelope] = [e for e in pending_envelopes(tmp_path / "state")
                  if e.get_event()["event_id"] == written["id"]]
    context = envelope.get_event()["contexts"]["agent"]
    assert context["matched_by"] == ["pid"] and context["match"] == "pid"
    assert context["tokens"]["input"] == 12_000
    assert abs(context["cost_usd"] - 0.0912) < 1e-9
    assert [t["tool"] for t in context["last_tool_calls"]] == ["Bash"]
    assert context["errors"] == {"rate_limit": 1}
    # The same figures on /metrics, in an exposition promtool accepts.
    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    tokens = {(s.labels["agent"], s.labels["model"], s.labels["type"]): s.value
              for s in families["telemetryd_agent_tokens"].samples if s.name.endswith("_total")}
    assert tokens[("claude-code", "claude-sonnet-4-5", "input")] == 12_000
    watch_rss = [s for s in families["telemetryd_watch_rss_bytes"].samples
                 if s.labels["watch"] == "leaky"]
    assert watch_rss and watch_rss[0].value > 0
    assert "pid" not in exposition.split("telemetryd_watch_rss_bytes")[1].split("\n")[0]
    check = subprocess.run(["promtool", "check", "metrics"], input=exposition,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    # What the agent sent is summarised, never logged verbatim.
    assert "too many requests" not in (tmp_path / "log.jsonl").read_text()


def send_pidless_sessions(port: int, agent_started: float) -> None:
    """Claude Code's own shape: no process.pid, no host.name, session.id on every event; one
    session before the process started, one during it, and a Codex session during it."""
    def emit(service: str, session: str, at: float, tokens: int) -> None:
        logs = LoggerProvider(resource=Resource.create({"service.name": service}))
        logs.add_log_record_processor(SimpleLogRecordProcessor(
            OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs")))
        logger = logs.get_logger("events")
        logger.emit(timestamp=int(at * 1e9), body=f"{service}.api_request", attributes={
            "event.name": "api_request", "session.id": session, "model": "claude-opus-4-8",
            "duration_ms": 900, "input_tokens": tokens, "output_tokens": 10,
            "cost_usd": 0.01})
        assert logs.force_flush(10_000)
        logs.shutdown()

    emit("claude-code", "before-start", agent_started - 3600, 111)
    emit("claude-code", "during", time.time(), 4242)
    emit("codex_exec", "codex-session", time.time(), 999)


def test_report_without_pid_carries_the_agents_session(tmp_path: Path) -> None:
    """A watched agent whose telemetry carries no process.pid still gets its session context
    in its crash report, matched by agent and time, and the report says so."""
    with Agent() as agent:
        watch = memory_watch(agent, 30, 60).replace('name = "leaky"', 'name = "claude-code"')
        config = write_config(tmp_path, watch)
        daemon = DaemonProcess(config, tmp_path / "log.jsonl")
        try:
            daemon.wait_event("process.seen", pid=agent.pid)
            started = psutil.Process(agent.pid).create_time()
            send_pidless_sessions(otlp_port(config), started)

            def sessions() -> list[dict] | None:
                result = cli("--config", str(config), "stats", "--json", "--by", "session")
                return json.loads(result.stdout)["agents"].get("rows") or None
            rows = wait_for(sessions, message="sessions in `telemetryd stats`")
            agent.command("grow 90")
            written = daemon.wait_event("report.written", pid=agent.pid)
        finally:
            assert daemon.stop() == 0
    assert {row["key"] for row in rows} >= {"claude-code/during", "codex/codex-session"}
    [envelope] = [e for e in pending_envelopes(tmp_path / "state")
                  if e.get_event()["event_id"] == written["id"]]
    event = envelope.get_event()
    context = event["contexts"]["agent"]
    assert context["match"] == "agent+time"
    assert (context["agent"], context["session_id"]) == ("claude-code", "during")
    assert context["tokens"]["input"] == 4242
    assert context["requests"] == 1
    assert event["tags"]["agent"] == "claude-code"
    assert event["tags"]["agent.match"] == "agent+time"

"""Names from outside are redacted before anything shows them: an agent that sends its service,
instance, session, model and tool names shaped like credentials over OTLP, and a watched process
named like one, leave no trace of them in /metrics, `stats --json`, the status API and page,
`status --json`, a crash report or the log."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.e2e.test_agent_telemetry import otlp_port, scrape
from tests.e2e.test_watchdog import memory_watch, pending_envelopes, write_config
from tests.support.agents import Agent
from tests.support.daemon_proc import DaemonProcess, cli
from tests.support.waiting import wait_for

# The body of each credential: what must appear nowhere.
BODIES = {
    "service": "Q9sVc7XkLm2PqRtY8wBnA4zH6jD0fG3sQ1eW5rT9yU",
    "instance": "Q9iNs7XkLm2PqRtY8wBnA4zH",
    "session": "Q9sEs7XkLm2PqRtY8wBnA4zH6jD0",
    "model": "Q9mDl7XkLm2PqRtY8wBnA4zH6jD0fG3sQ1e",
    "tool": "Q9tOl7XkLm2PqRtY8wBnA4zH6jD0fG3sQ1e",
    "event tool": "Q9eVt7XkLm2PqRtY8wBnA4zH",
}
SERVICE = "sk-ant-api03-" + BODIES["service"]
INSTANCE = "xoxb-1234567890-" + BODIES["instance"]
SESSION = "hvs." + BODIES["session"]
MODEL = "ghp_" + BODIES["model"]
TOOL = "npm_" + BODIES["tool"]
EVENT_TOOL = "glpat-" + BODIES["event tool"]
PROCESS_NAME = "sk-Q9pRc7XkLm"  # 13 characters: a process name holds at most 15


def send_secret_shaped_names(port: int, pid: int) -> None:
    """Tokens, cost, a tool call and an API request, with every name shaped like a secret,
    sent by the real OpenTelemetry SDK."""
    resource = Resource.create({"service.name": SERVICE, "service.instance.id": INSTANCE,
                                "session.id": SESSION, "process.pid": pid})
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}/v1/metrics"),
        export_interval_millis=3_600_000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meters.get_meter("com.anthropic.claude_code")
    tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
    tokens.add(12_000, {"type": "input", "model": MODEL})
    tokens.add(800, {"type": "output", "model": MODEL})
    meter.create_counter("claude_code.cost.usage", unit="USD").add(0.25, {"model": MODEL})
    meter.create_histogram("codex.tool.call.duration_ms", unit="ms").record(
        40, {"tool": TOOL, "success": "true"})
    assert meters.force_flush(10_000)
    meters.shutdown()
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(SimpleLogRecordProcessor(
        OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs")))
    logger = logs.get_logger("com.anthropic.claude_code.events")
    logger.emit(body="claude_code.tool_result", attributes={
        "event.name": "tool_result", "tool_name": EVENT_TOOL, "success": "true",
        "duration_ms": 15})
    logger.emit(body="claude_code.api_request", attributes={
        "event.name": "api_request", "model": MODEL, "duration_ms": 900,
        "input_tokens": 10, "output_tokens": 2, "cost_usd": 0.01})
    assert logs.force_flush(10_000)
    logs.shutdown()


def renamed_process(name: str) -> subprocess.Popen[bytes]:
    """A real process that renames itself (prctl PR_SET_NAME)."""
    script = ("import ctypes, sys, time\n"
              "ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)\n"
              "time.sleep(600)\n")
    return subprocess.Popen([sys.executable, "-c", script, name])


def get(config: Path, path: str) -> str:
    """GET a path from the daemon's metrics listener (the status page and its API)."""
    status = json.loads(cli("--config", str(config), "status", "--json").stdout)
    host, port = status["metrics"]["listen"].rsplit(":", 1)
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=30) as response:
        return str(response.read().decode())


def leaks(text: str) -> list[str]:
    """Which credential bodies (or the process name) appear in ``text``."""
    found = [what for what, body in BODIES.items() if body in text]
    return found + (["process name"] if "Q9pRc7XkLm" in text else [])


def test_secret_shaped_names_reach_no_output(tmp_path: Path) -> None:
    """After real OTLP exports whose names are credentials, and with a watched process named
    like one, every place that shows names shows ``[redacted]`` instead."""
    named = renamed_process(PROCESS_NAME)
    try:
        with Agent() as agent:
            extra_watch = f'\n[[watch]]\nname = "renamed"\npid = {named.pid}\n'
            config = write_config(tmp_path, memory_watch(agent, 30, 60) + extra_watch)
            daemon = DaemonProcess(config, tmp_path / "log.jsonl")
            try:
                daemon.wait_event("process.seen", pid=agent.pid)
                daemon.wait_event("process.seen", pid=named.pid)
                send_secret_shaped_names(otlp_port(config), agent.pid)

                def rows(by: str) -> list[dict] | None:
                    result = cli("--config", str(config), "stats", "--json", "--by", by)
                    return json.loads(result.stdout)["agents"].get("rows") or None
                by_model = wait_for(lambda: rows("model"), message="tokens in `stats`")
                outputs = {
                    "stats --by " + by: json.dumps(rows(by))
                    for by in ("agent", "model", "session", "tool")}
                outputs["/metrics"] = scrape(config)
                outputs["/api/status"] = get(config, "/api/status")
                outputs["page"] = get(config, "/")
                outputs["status --json"] = cli("--config", str(config), "status",
                                               "--json").stdout
                agent.command("grow 90")
                written = daemon.wait_event("report.written", pid=agent.pid)
            finally:
                assert daemon.stop() == 0
    finally:
        named.kill()
        named.wait()
    [envelope] = [e for e in pending_envelopes(tmp_path / "state")
                  if e.get_event()["event_id"] == written["id"]]
    outputs["report"] = json.dumps(envelope.get_event())
    outputs["log"] = (tmp_path / "log.jsonl").read_text()
    outputs["status.json"] = (tmp_path / "state" / "status.json").read_text()
    assert {where: leaks(text) for where, text in outputs.items() if leaks(text)} == {}
    assert [row["key"] for row in by_model] == ["[redacted]"]
    assert "[redacted]" in outputs["/metrics"] and "[redacted]" in outputs["stats --by tool"]
    assert json.loads(outputs["report"])["contexts"]["agent"]["tokens"]["input"] == 12_000

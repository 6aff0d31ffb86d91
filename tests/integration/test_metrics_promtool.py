"""A real /metrics server fed by a real OTLP receiver and store: promtool passes, values right."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon.runtime.agent_telemetry import AgentTelemetry
from daemon.runtime.paths import StatePaths
from daemon.status.snapshot import (
    FlushStatus,
    OtlpStatus,
    ProcessStatus,
    ReportCounts,
    StatusSnapshot,
)
from daemon.web.exposition.metrics import DaemonMetricsCollector
from daemon.web.metrics_server import MetricsServer, serve_metrics
from tests.integration.agents.conftest import post
from tests.support import snapshots as build
from tests.support.agents import loopback_otlp
from tests.unit.agents.payloads import (
    SECOND_NS,
    claude_code_events,
    claude_code_metrics,
    claude_resource,
    histogram_metric,
    metrics_request,
)

AGENTS = ("claude-code", "aider", "codex")
MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4o", "gpt-4o-mini", "house-model-7b")
TOOLS = ("Read", "Edit", "Bash", "Grep", "WebFetch", "Write")


def promtool() -> str | None:
    """The promtool binary, or None when the test may be skipped (TELEMETRYD_SKIP_PROMTOOL=1)."""
    found = shutil.which("promtool")
    if found is not None:
        return found
    if os.environ.get("TELEMETRYD_SKIP_PROMTOOL") == "1":
        return None
    pytest.fail(
        "promtool not found: install Debian's prometheus package "
        "(apt-get install -y --no-install-recommends prometheus) "
        "or set TELEMETRYD_SKIP_PROMTOOL=1 to skip this check"
    )


def snapshot() -> StatusSnapshot:
    """A status snapshot with several watches at different levels."""
    def proc(pid: int, rss: int, cpu: float, state: str) -> ProcessStatus:
        return build.process(pid, rss, cpu, state, rate=1200.0, eta=900.0)

    now = time.time()
    return build.snapshot(
        [build.watch("claude", proc(100, 1 << 30, 80.0, "critical"),
                     proc(101, 1 << 28, 5.0, "ok")),
         build.watch("aider", proc(200, 1 << 29, 120.0, "warning")),
         build.watch("builds")],
        now=now, last_tick_at=now, tick_count=12, started_at=now - 60,
        reports=ReportCounts(pending=2, quarantined=0, written_since_start=3),
        flush=FlushStatus(enabled=True, delivered_total=1, failures_total=1),
        otlp=OtlpStatus(up=True),
    )


@pytest.fixture
def telemetry(tmp_path: Path) -> Iterator[AgentTelemetry]:
    """A real receiver on loopback with a real store, fed with several agents' telemetry."""
    agents = AgentTelemetry(loopback_otlp(read_timeout_seconds=2.0),
                            StatePaths(tmp_path).events_db)
    agents.start()
    try:
        feed(agents)
        yield agents
    finally:
        agents.stop()


def feed(agents: AgentTelemetry) -> None:
    """Tokens and cost per model, request and tool events with errors, and GenAI durations."""
    port = agents.receiver.port
    now_ns = time.time_ns()
    for a, agent in enumerate(AGENTS):
        resource = claude_resource(**{"service.name": agent, "service.instance.id": f"h-{a}"})
        for m, model in enumerate(MODELS):
            cost = 0.01 * (m + 1) if agent == "claude-code" else None
            tokens = {"input": 1000 * (m + 1), "output": 100 * (a + 1), "cacheRead": 50}
            body = claude_code_metrics(resource, f"s-{a}", model, tokens, cost, now_ns)
            assert post(port, "/v1/metrics", body.SerializeToString()).status == 200
        events: list[tuple[str, dict[str, Any], int]] = []
        for m, model in enumerate(MODELS):
            events.append(("api_request", {"model": model, "duration_ms": 800 * (m + 1),
                                           "session.id": f"s-{a}"}, now_ns))
        events.append(("api_error", {"model": MODELS[0], "status_code": 429,
                                     "error": "rate limited", "duration_ms": 50}, now_ns))
        for t, tool in enumerate(TOOLS):
            events.append(("tool_result", {"tool_name": tool, "success": str(t != 2).lower(),
                                           "duration_ms": 10 ** t}, now_ns))
        body = claude_code_events(resource, events)
        assert post(port, "/v1/logs", body.SerializeToString()).status == 200
    durations = histogram_metric(
        "gen_ai.client.operation.duration",
        [({"gen_ai.request.model": "gpt-4o"}, 130.0, 2, now_ns - 60 * SECOND_NS, now_ns)],
        unit="s",
    )
    genai = metrics_request({"service.name": "genai-bot"}, [durations])
    assert post(port, "/v1/metrics", genai.SerializeToString()).status == 200
    assert agents.ingestor.flush(10.0)


@pytest.fixture
def server(telemetry: AgentTelemetry) -> Iterator[MetricsServer]:
    """/metrics on a free loopback port, fed by the snapshot, the receiver and the store."""
    collector = DaemonMetricsCollector(snapshot, telemetry.stats, telemetry.reader)
    for seconds in (0.004, 0.02, 0.6):
        collector.observe_tick(seconds)
    handle = serve_metrics("127.0.0.1", 0, collector)
    try:
        yield handle
    finally:
        handle.stop()


def get(port: int, path: str = "/metrics") -> tuple[int, str, str]:
    """Status, content type and body of one GET on loopback."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode()
    finally:
        conn.close()


def test_promtool_accepts_a_real_scrape(server: MetricsServer) -> None:
    """`promtool check metrics` finds no problem in a scrape with watches, agents and histograms."""
    status, content_type, body = get(server.port)
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert "telemetryd_agent_request_duration_seconds_bucket" in body
    binary = promtool()
    if binary is None:
        pytest.skip("TELEMETRYD_SKIP_PROMTOOL=1 and promtool is not installed")
    checked = subprocess.run([binary, "check", "metrics"], input=body, capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""


def test_scrape_parses_and_values_match_what_was_sent(server: MetricsServer) -> None:
    """The exposition parses, and tokens, cost, errors, tools and durations match the input."""
    _, _, body = get(server.port)
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def at(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert at("telemetryd_watch_rss_bytes", watch="claude") == (1 << 30) + (1 << 28)
    assert at("telemetryd_watch_level", watch="aider") == 1
    assert at("telemetryd_tick_duration_seconds_count") == 3
    assert at("telemetryd_agent_tokens_total", agent="aider", model="gpt-4o",
              type="input") == 3000
    assert at("telemetryd_agent_tokens_total", agent="codex", model="house-model-7b",
              type="output") == 300
    assert at("telemetryd_agent_cost_usd_total", agent="claude-code",
              model="claude-haiku-4-5") == pytest.approx(0.02)
    assert at("telemetryd_agent_tokens_unpriced_total", agent="aider",
              model="house-model-7b") == 5000 + 200 + 50
    assert ("telemetryd_agent_cost_usd_total",
            (("agent", "aider"), ("model", "house-model-7b"))) not in samples
    assert at("telemetryd_agent_cost_usd_total", agent="aider", model="gpt-4o") > 0
    assert at("telemetryd_agent_requests_total", agent="codex",
              model="claude-sonnet-4-5") == 2
    assert at("telemetryd_agent_errors_total", agent="codex", model="claude-sonnet-4-5",
              **{"class": "rate_limit"}) == 1
    assert at("telemetryd_agent_tool_calls_total", agent="aider", tool="Bash",
              outcome="error") == 1
    hist = "telemetryd_agent_request_duration_seconds"
    assert at(f"{hist}_bucket", agent="aider", model="house-model-7b", le="2.5") == 0
    assert at(f"{hist}_bucket", agent="aider", model="house-model-7b", le="5.0") == 1
    # The GenAI histogram point (2 calls, 130 s) lands both calls past 60 s at their mean.
    assert at(f"{hist}_bucket", agent="genai-bot", model="gpt-4o", le="60.0") == 0
    assert at(f"{hist}_bucket", agent="genai-bot", model="gpt-4o", le="120.0") == 2
    assert at(f"{hist}_sum", agent="genai-bot", model="gpt-4o") == pytest.approx(130.0)
    tool = "telemetryd_agent_tool_duration_seconds"
    assert at(f"{tool}_bucket", agent="claude-code", tool="Write", le="60.0") == 0
    assert at(f"{tool}_bucket", agent="claude-code", tool="Write", le="120.0") == 1
    events_sent = len(AGENTS) * (len(MODELS) + 1 + len(TOOLS))
    assert at("telemetryd_otlp_points_total", signal="logs", outcome="accepted") == events_sent
    assert at("process_resident_memory_bytes") > 0
    assert not any(dict(labels).get("pid") for _, labels in samples)


def test_server_binds_loopback_port_zero_and_stop_frees_it(telemetry: AgentTelemetry) -> None:
    """Port 0 gives a real port on 127.0.0.1; after stop() nothing listens there."""
    handle = serve_metrics("127.0.0.1", 0, DaemonMetricsCollector(lambda: None),
                           process_metrics=False)
    port = handle.port
    assert port > 0
    status, _, body = get(port)
    assert status == 200 and "telemetryd_build_info" in body
    assert "process_resident_memory_bytes" not in body
    handle.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_a_taken_port_raises_oserror(server: MetricsServer) -> None:
    """Asking for a port already in use fails at once with OSError (the caller logs it)."""
    with pytest.raises(OSError):
        serve_metrics("127.0.0.1", server.port, DaemonMetricsCollector(lambda: None))


def test_missing_promtool_fails_clearly_unless_skipping_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without promtool the check fails naming the package, or yields None when told to skip."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("TELEMETRYD_SKIP_PROMTOOL", raising=False)
    with pytest.raises(pytest.fail.Exception, match="prometheus package"):
        promtool()
    monkeypatch.setenv("TELEMETRYD_SKIP_PROMTOOL", "1")
    assert promtool() is None

"""Gemini CLI requests are counted once, from its api_response / api_error events: its
request-count metric counts each failure twice and loses the failure's class."""

from __future__ import annotations

import collections
import time
from typing import Any

import psutil

from daemon.config.parse import parse_config_text
from daemon.runtime.agent_link import AgentLink
from daemon.runtime.agent_telemetry import AgentTelemetry
from daemon.runtime.paths import StatePaths
from daemon.watch.monitor import TrackedProcess
from daemon.watch.proc.sampler import TreeSample
from tests.integration.agents.conftest import post
from tests.support.captures import replay
from tests.support.gemini_failures import failed_requests

FOREVER = (0.0, time.time() + 365 * 86400.0)
CAPTURED_AT = 1796065565.0  # gemini-fakeapi-http was sent then
GEMINI_PID = 24421  # the process.pid of gemini-fakeapi-http


def _send(agents: AgentTelemetry, metrics: bytes, logs: bytes) -> None:
    for path, body in (("/v1/metrics", metrics), ("/v1/logs", logs)):
        assert post(agents.receiver.port, path, body, "application/json").status == 200
    assert agents.ingestor.flush(30.0)


def test_network_failures_counted_once_with_their_class(make_agents: Any) -> None:
    """12 requests failing with `fetch failed sending request`: 12 requests, 12 network
    errors, 480 ms (not 24 requests, 0 errors, no class, 960 ms)."""
    agents: AgentTelemetry = make_agents()
    _send(agents, *failed_requests(12, "fetch failed sending request", "error", "TypeError"))
    (row,) = agents.reader.stats(*FOREVER, "agent")
    assert (row.key, row.requests, row.request_errors) == ("gemini", 12, 12)
    assert row.errors == {"network": 12}
    assert row.request_duration_ms_total == 480


def test_auth_failures_counted_once(make_agents: Any) -> None:
    """Two auth failures are two requests and two auth errors, not four of each."""
    agents: AgentTelemetry = make_agents()
    _send(agents, *failed_requests(
        2, "Request had invalid authentication credentials.", 401, "UNAUTHENTICATED"))
    (row,) = agents.reader.stats(*FOREVER, "agent")
    assert (row.requests, row.request_errors, row.errors) == (2, 2, {"auth": 2})


def _tracked(pid: int) -> TrackedProcess:
    sample = TreeSample("gemini", pid, (pid, 1), "node", 0.0, 1, 0.0, 1, 0.0, 1,
                        member_pids=())
    return TrackedProcess("gemini", (pid, 1), 0.0, sample, collections.deque())


def test_report_matched_by_pid_lists_each_call_once(tmp_path: Any) -> None:
    """A report on the captured Gemini run, matched by its pid: 4 requests with their tokens,
    2 tool calls with read_file failed, the agent, session and agent version keys the
    agent+time path gives."""
    config = parse_config_text('[otlp]\nlisten = "127.0.0.1:0"\ntrust = "any"\n', "<t>", {},
                               psutil.virtual_memory().total)
    paths = StatePaths(tmp_path)
    link = AgentLink(config, paths.events_db, paths.budgets)
    link.start()
    try:
        assert all(s == 200 for s in replay(link.telemetry.receiver.port,
                                            "gemini-fakeapi-http"))
        assert link.telemetry.ingestor.flush(30.0)
        context = link.context_for(_tracked(GEMINI_PID), CAPTURED_AT + 60.0)
    finally:
        link.stop()
    assert context is not None and context["match"] == "pid"
    tools = [(t["tool"], t["success"]) for t in context["last_tool_calls"]]
    assert tools == [("run_shell_command", True), ("read_file", False)]
    requests = context["last_requests"]
    assert [r["model"] for r in requests] == (
        ["gemini-3.5-flash-lite"] + ["gemini-3.8-flash"] * 3)
    assert all(r["input_tokens"] == 700 and r["cache_read_tokens"] == 500 for r in requests)
    assert context["session_id"] == "267cd09f-e231-45c4-8f75-3583a20c1a3f"
    assert context["agent"] == "gemini"
    # Present as on the agent+time path; None because Gemini CLI sends Node's version as its
    # service.version, never its own.
    assert "agent_version" in context and context["agent_version"] is None

"""Requests captured from real Claude Code, Gemini CLI and Codex runs, replayed into the real
receiver over loopback, give the figures their decoded bodies hold.

Expected figures were read off the decoded bodies (opentelemetry-proto): tokens made disjoint
(Gemini and Codex count cached input inside input, Codex reasoning inside output), one source
per figure (Claude sends its spend as metrics and again as events), one row per model.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from daemon.agents.decoding.counters import OtlpCounter
from daemon.agents.store.queries import StatsRow
from daemon.runtime.agent_telemetry import AgentTelemetry
from daemon.web.exposition.metrics import DaemonMetricsCollector
from tests.support.captures import replay

FOREVER = (0.0, time.time() + 365 * 86400.0)


def replayed(make_agents: Any, folder: str, **settings: object) -> AgentTelemetry:
    """A fresh receiver and store that got every request of ``folder``, all answered 2xx."""
    agents: AgentTelemetry = make_agents(**settings)
    statuses = replay(agents.receiver.port, folder)
    assert statuses and all(200 <= s < 300 for s in statuses), statuses
    assert agents.ingestor.flush(30.0)
    return agents


def stats(agents: AgentTelemetry, by: str) -> dict[str, StatsRow]:
    """Stats rows keyed by agent, model, tool or session over all time."""
    return {r.key: r for r in agents.reader.stats(*FOREVER, by)}  # type: ignore[arg-type]


def test_claude_code_with_a_provider(make_agents: Any) -> None:
    """Claude Code: one model row for claude-opus-4-8 and claude-opus-4-8[1m], spend counted
    once though metrics and api_request events both carry it, tools, session, active time."""
    agents = replayed(make_agents, "claude-fakeapi-protobuf")
    (agent,) = stats(agents, "agent").values()
    assert agent.key == "claude-code"
    assert agent.tokens == {"input": 4800, "output": 140, "cache_read": 2000,
                            "cache_creation": 400}
    assert (agent.cost_usd, agent.cost_status) == (pytest.approx(0.031), "reported")
    assert (agent.requests, agent.request_errors, agent.request_duration_ms_total) == (4, 0, 114)
    assert (agent.tool_calls, agent.tool_failures, agent.tool_duration_ms_total) == (2, 1, 89)
    assert agent.sessions == 1
    assert agent.work == {"active_seconds": pytest.approx(0.401)}
    assert agent.context_max_tokens == 1800
    assert list(stats(agents, "model")) == ["claude-opus-4-8"]
    tools = stats(agents, "tool")
    assert (tools["Bash"].tool_calls, tools["Bash"].tool_failures,
            tools["Bash"].tool_duration_ms_total) == (1, 0, 78)
    assert (tools["Read"].tool_calls, tools["Read"].tool_failures,
            tools["Read"].tool_duration_ms_total) == (1, 1, 11)
    (session,) = stats(agents, "session").values()
    assert session.key == "claude-code/6396c3cb-a22f-4c16-88d4-eafbb496bc9c"
    assert session.tokens == agent.tokens and session.requests == 4


def test_claude_code_logs_only_give_tokens_and_cost_from_events(make_agents: Any) -> None:
    """With only its log export on, Claude Code's tokens and cost come from its api_request
    events: the same figures as from its metrics."""
    agents: AgentTelemetry = make_agents()
    assert replay(agents.receiver.port, "claude-fakeapi-protobuf", only="/v1/logs") == [200]
    assert agents.ingestor.flush(30.0)
    (agent,) = stats(agents, "agent").values()
    assert agent.tokens == {"input": 4800, "output": 140, "cache_read": 2000,
                            "cache_creation": 400}
    assert (agent.cost_usd, agent.cost_status) == (pytest.approx(0.031), "reported")
    assert agent.requests == 4


def test_claude_code_without_a_provider(make_agents: Any) -> None:
    """Claude Code failing to connect: one network error (retries exhausted is the same
    failure), no tokens, one session, 178 s active."""
    agents = replayed(make_agents, "claude-protobuf")
    (agent,) = stats(agents, "agent").values()
    assert agent.key == "claude-code"
    assert agent.tokens == {}
    assert (agent.requests, agent.request_errors, agent.errors) == (1, 1, {"network": 1})
    assert agent.sessions == 1
    assert agent.work == {"active_seconds": pytest.approx(178.132)}
    assert list(stats(agents, "model")) == ["claude-opus-4-8"]
    assert list(stats(agents, "session")) == [
        "claude-code/8c929116-9892-43ea-838a-781680a1321b"]


def test_gemini_cli_with_a_provider(make_agents: Any) -> None:
    """Gemini CLI (OTLP JSON with hex span ids): cached input taken out of input, thoughts as
    reasoning, two models, tools with their failure, traces accepted and partly dropped."""
    agents = replayed(make_agents, "gemini-fakeapi-http")
    (agent,) = stats(agents, "agent").values()
    assert agent.key == "gemini"
    assert agent.tokens == {"input": 2800, "output": 140, "cache_read": 2000, "reasoning": 80}
    assert agent.cost_status == "computed"
    assert (agent.requests, agent.request_errors, agent.request_duration_ms_total) == (4, 0, 157)
    assert agent.errors == {} and agent.sessions == 1
    models = stats(agents, "model")
    assert models["gemini-3.5-flash-lite"].tokens == {
        "input": 700, "output": 35, "cache_read": 500, "reasoning": 20}
    assert models["gemini-3.8-flash"].tokens == {
        "input": 2100, "output": 105, "cache_read": 1500, "reasoning": 60}
    assert (models["gemini-3.5-flash-lite"].requests,
            models["gemini-3.5-flash-lite"].request_duration_ms_total) == (1, 27)
    assert (models["gemini-3.8-flash"].requests,
            models["gemini-3.8-flash"].request_duration_ms_total) == (3, 130)
    tools = stats(agents, "tool")
    assert (tools["run_shell_command"].tool_calls, tools["run_shell_command"].tool_failures,
            tools["run_shell_command"].tool_duration_ms_total) == (1, 0, 50)
    assert (tools["read_file"].tool_calls, tools["read_file"].tool_failures,
            tools["read_file"].tool_duration_ms_total) == (1, 1, 3)
    assert list(stats(agents, "session")) == ["gemini/267cd09f-e231-45c4-8f75-3583a20c1a3f"]
    counters = agents.stats()
    assert counters.get(OtlpCounter.POINTS, ("traces", "accepted")) == 8
    # the two schedule_tool_calls spans:
    assert counters.get(OtlpCounter.POINTS, ("traces", "dropped_no_timing")) == 2


def test_gemini_cli_start_up_only(make_agents: Any) -> None:
    """Gemini CLI that exited after start-up: one session and nothing else."""
    agents = replayed(make_agents, "gemini-http")
    (agent,) = stats(agents, "agent").values()
    assert (agent.key, agent.sessions, agent.requests, agent.tokens) == ("gemini", 1, 0, {})


def test_codex_with_a_provider(make_agents: Any) -> None:
    """Codex (service codex_exec, source locations in event_name, no record time): tokens from
    its events made disjoint, priced from genai-prices, requests, nested tool calls, one
    session, one agent row."""
    agents = replayed(make_agents, "codex-fakeapi-tools-binary")
    (agent,) = stats(agents, "agent").values()
    assert agent.key == "codex"
    assert agent.tokens == {"input": 2100, "output": 45, "cache_read": 1500,
                            "cache_creation": 0, "reasoning": 60}
    # genai-prices 0.2.5 knows gpt-6.2-sol ($2 input, $0.1 cached input, $10 output per MTok):
    # 2100 x 2 + 1500 x 0.1 + (45 + 60) x 10 = 5400 micro-dollars. Codex reports no cost.
    assert (agent.cost_status, agent.cost_usd) == ("computed", pytest.approx(0.0054))
    assert (agent.requests, agent.request_errors, agent.request_duration_ms_total) == (3, 0, 38)
    assert agent.sessions == 1
    assert list(stats(agents, "model")) == ["gpt-6.2-sol"]
    tools = stats(agents, "tool")
    assert (tools["exec"].tool_calls, tools["exec"].tool_failures,
            tools["exec"].tool_duration_ms_total) == (2, 0, 119)
    assert (tools["exec_command"].tool_calls, tools["exec_command"].tool_failures,
            tools["exec_command"].tool_duration_ms_total) == (2, 0, 84)
    (session,) = stats(agents, "session").values()
    assert session.key == "codex/01a22dde-540a-7503-8517-670a3eb81e1a"
    assert session.tokens == agent.tokens


def test_codex_without_a_provider(make_agents: Any) -> None:
    """Codex failing to connect: every failed attempt is a network error, 30 to the model's
    /responses and 20 to the /models catalogue (no model), no tokens, one session."""
    agents = replayed(make_agents, "codex-exec-binary")
    (agent,) = stats(agents, "agent").values()
    assert (agent.key, agent.requests, agent.request_errors) == ("codex", 50, 50)
    assert agent.errors == {"network": 50}
    assert agent.tokens == {} and agent.sessions == 1
    models = stats(agents, "model")
    assert (models["gpt-6.2-sol"].requests, models["gpt-6.2-sol"].errors,
            models["gpt-6.2-sol"].request_duration_ms_total) == (30, {"network": 30}, 283)
    assert (models["unknown"].requests, models["unknown"].errors) == (20, {"network": 20})


def test_every_capture_into_one_store_is_one_row_per_agent(make_agents: Any) -> None:
    """All six captures into one daemon: three agents, one model row per model, and /metrics
    speaks of the same agents with the same figures."""
    agents: AgentTelemetry = make_agents()
    for folder in ("claude-fakeapi-protobuf", "claude-protobuf", "gemini-fakeapi-http",
                   "gemini-http", "codex-fakeapi-tools-binary", "codex-exec-binary"):
        assert all(s == 200 for s in replay(agents.receiver.port, folder))
    assert agents.ingestor.flush(30.0)
    by_agent = stats(agents, "agent")
    assert sorted(by_agent) == ["claude-code", "codex", "gemini"]
    assert by_agent["claude-code"].errors == {"network": 1}
    assert by_agent["codex"].errors == {"network": 50}
    assert sorted(stats(agents, "model")) == [
        "claude-opus-4-8", "gemini-3.5-flash-lite", "gemini-3.8-flash", "gpt-6.2-sol",
        "unknown"]
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in DaemonMetricsCollector(lambda: None, agent_reader=agents.reader).collect()
        for s in family.samples
    }

    def sample(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert sample("telemetryd_agent_tokens_total", agent="claude-code", model="claude-opus-4-8",
                  type="input") == 4800
    assert sample("telemetryd_agent_tokens_total", agent="codex", model="gpt-6.2-sol",
                  type="reasoning") == 60
    assert sample("telemetryd_agent_cost_usd_total", agent="claude-code",
                  model="claude-opus-4-8") == pytest.approx(0.031)
    assert sample("telemetryd_agent_requests_total", agent="gemini",
                  model="gemini-3.8-flash") == 3
    assert sample("telemetryd_agent_errors_total", agent="codex", model="gpt-6.2-sol",
                  **{"class": "network"}) == 30
    assert sample("telemetryd_agent_tool_calls_total", agent="gemini", tool="read_file",
                  outcome="error") == 1
    assert sample("telemetryd_agent_sessions_total", agent="codex") == 2
    assert not any(labels and dict(labels).get("agent") in ("codex_exec", "gemini-cli")
                   for _, labels in samples)


def _store_text(agents: AgentTelemetry) -> str:
    agents.stop()
    db = sqlite3.connect(agents.reader.path)
    try:
        return "\n".join(
            str(row) for table in ("events", "hourly", "totals", "session_totals")
            for row in db.execute(f"SELECT * FROM {table}")
        )
    finally:
        db.close()


def test_prompts_responses_and_tool_io_are_not_stored_by_default(make_agents: Any) -> None:
    """Gemini's clear-text prompt, request/response text and system instructions and Codex's
    tool arguments and output never reach the store unless store_content is on."""
    agents = replayed(make_agents, "gemini-fakeapi-http")
    replay(agents.receiver.port, "codex-fakeapi-tools-binary")
    assert agents.ingestor.flush(30.0)
    stored = _store_text(agents)
    for secret in ("run echo hi then read", "Task Routing AI", "does-not-exist",
                   "session_context", "candidates", '"cmd"', "[Score: 5"):
        assert secret not in stored, secret
    kept = _store_text(replayed(make_agents, "gemini-fakeapi-http", store_content=True))
    assert "run echo hi then read does-not-exist.txt" in kept

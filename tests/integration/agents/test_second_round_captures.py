"""The second-round captures of Gemini CLI 0.61.0 and Codex CLI 0.171.0 (OTLP/JSON) give the
figures their per-request events hold (decoded by hand, see each test).
Claude Code 2.1.332's are in test_claude_2_1_332.py."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.integration.agents.test_captures import stats
from tests.support.captures import replay


def replayed(make_agents: Any, folder: str) -> AgentTelemetry:
    agents: AgentTelemetry = make_agents(retention_days=3650.0)
    assert all(s == 200 for s in replay(agents.receiver.port, folder))
    assert agents.ingestor.flush(30.0)
    return agents


def test_gemini_print_run(make_agents: Any) -> None:
    """4 api_response events (1 router call to gemini-3.5-flash-lite 29 ms, 3 to
    gemini-3.8-flash 155 + 29 + 26 ms), each 1300 prompt of which 600 cached, 40 candidates,
    25 thoughts; run_shell_command ok 83 ms, read_file failed 7 ms."""
    agents = replayed(make_agents, "gemini-print-http")
    (agent,) = stats(agents, "agent").values()
    assert agent.key == "gemini"
    assert agent.tokens == {"input": 2800, "output": 160, "cache_read": 2400, "reasoning": 100}
    assert agent.cost_status == "computed"
    assert (agent.requests, agent.request_errors, agent.request_duration_ms_total) == (4, 0, 239)
    assert agent.errors == {} and agent.sessions == 1
    assert agent.context_max_tokens == 1300
    models = stats(agents, "model")
    assert (models["gemini-3.5-flash-lite"].requests,
            models["gemini-3.5-flash-lite"].request_duration_ms_total) == (1, 29)
    assert (models["gemini-3.8-flash"].requests,
            models["gemini-3.8-flash"].request_duration_ms_total) == (3, 210)
    tools = stats(agents, "tool")
    assert (tools["run_shell_command"].tool_calls, tools["run_shell_command"].tool_failures,
            tools["run_shell_command"].tool_duration_ms_total) == (1, 0, 83)
    assert (tools["read_file"].tool_calls, tools["read_file"].tool_failures,
            tools["read_file"].tool_duration_ms_total) == (1, 1, 7)
    assert list(stats(agents, "session")) == ["gemini/8bc779ec-b1f6-48b9-8172-8792541dea7b"]


def test_codex_exec_json_run(make_agents: Any) -> None:
    """3 codex.api_request (24 + 24 + 50 ms) each followed by a response.completed with 1300
    input of which 600 cached, 40 output of which 25 reasoning; 4 tool results (exec 78 + 70,
    exec_command 54 + 47 ms, all reported successful by Codex); gpt-6.2-sol priced."""
    agents = replayed(make_agents, "codex-exec-json")
    (agent,) = stats(agents, "agent").values()
    assert agent.key == "codex"
    assert agent.tokens == {"input": 2100, "output": 45, "cache_read": 1800,
                            "cache_creation": 0, "reasoning": 75}
    # $2 input, $0.1 cached input, $10 output per MTok: 4200 + 180 + 1200 micro-dollars.
    assert (agent.cost_status, agent.cost_usd) == ("computed", pytest.approx(0.00558))
    assert (agent.requests, agent.request_errors, agent.request_duration_ms_total) == (3, 0, 98)
    assert agent.sessions == 1
    tools = stats(agents, "tool")
    assert (tools["exec"].tool_calls, tools["exec"].tool_failures,
            tools["exec"].tool_duration_ms_total) == (2, 0, 148)
    assert (tools["exec_command"].tool_calls, tools["exec_command"].tool_failures,
            tools["exec_command"].tool_duration_ms_total) == (2, 0, 101)
    assert list(stats(agents, "session")) == ["codex/01a24ea6-d164-7f21-aecd-0b112ce114de"]

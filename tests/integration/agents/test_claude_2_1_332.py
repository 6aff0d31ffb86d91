"""Claude Code 2.1.332 (second-round captures): every figure as its own per-request events
give it, traces never added to them, time to first token as a histogram, cache writes priced
by their time to live, content never stored, its new events accepted.

Decoded from `claude-print-protobuf`: 3 api_request events to claude-opus-5-5, each 1300
input / 40 output / 600 cache read / 150 cache creation tokens and cost_usd 0.00687
(duration 68, 50, 45 ms; ttft 17, 14, 40 ms), tool_result Bash ok 81 ms and Read failed
35 ms, active time 0.645 s. `claude-print-traces-protobuf`: the same run with traces
(duration 98, 107, 15 ms; Bash 79 ms, Read 54 ms; llm_request spans with
gen_ai.usage.input_tokens 2050 = 1300 + 600 + 150).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from daemon.runtime.agent_telemetry import AgentTelemetry
from daemon.web.exposition.metrics import DaemonMetricsCollector
from tests.integration.agents.conftest import post
from tests.integration.agents.test_captures import _store_text, stats
from tests.support.captures import replay, requests

KEEP = {"retention_days": 3650.0}
TOKENS = {"input": 3900, "output": 120, "cache_read": 1800, "cache_creation": 450}
FOREVER = (0.0, time.time() + 365 * 86400.0)


def replayed(make_agents: Any, folder: str, only: str | None = None,
             **settings: object) -> AgentTelemetry:
    agents: AgentTelemetry = make_agents(**{**KEEP, **settings})
    assert all(s == 200 for s in replay(agents.receiver.port, folder, only=only))
    assert agents.ingestor.flush(30.0)
    return agents


def test_print_run_figures(make_agents: Any) -> None:
    """Tokens, reported cost, requests, tools, session, active time and context."""
    agents = replayed(make_agents, "claude-print-protobuf")
    (agent,) = stats(agents, "agent").values()
    assert (agent.key, agent.tokens) == ("claude-code", TOKENS)
    assert (agent.cost_usd, agent.cost_status) == (pytest.approx(0.02061), "reported")
    assert (agent.requests, agent.request_errors, agent.request_duration_ms_total) == (3, 0, 163)
    assert (agent.tool_calls, agent.tool_failures, agent.tool_duration_ms_total) == (2, 1, 116)
    assert agent.sessions == 1 and agent.work == {"active_seconds": pytest.approx(0.645)}
    assert agent.context_max_tokens == 2050
    assert list(stats(agents, "model")) == ["claude-opus-5-5"]
    assert list(stats(agents, "session")) == ["claude-code/f2041705-6884-4c65-bf3c-182b28a0222f"]


def _samples(agents: AgentTelemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in DaemonMetricsCollector(lambda: None,
                                                 agent_reader=agents.reader).collect()
            for s in family.samples}


def test_time_to_first_token_is_a_histogram(make_agents: Any) -> None:
    """ttft_ms of the three requests: /metrics has 3 observations summing to 0.071 s."""
    samples = _samples(replayed(make_agents, "claude-print-protobuf"))
    labels = (("agent", "claude-code"), ("model", "claude-opus-5-5"))
    name = "telemetryd_agent_time_to_first_token_seconds"
    assert samples[(f"{name}_count", labels)] == 3
    assert samples[(f"{name}_sum", labels)] == pytest.approx(0.071)


def test_traces_never_add_to_the_events_figures(make_agents: Any) -> None:
    """With traces on: the events' figures, not spans' on top (input 3900, not 3900 + 6150;
    3 requests and 220 ms, 2 tools)."""
    agents = replayed(make_agents, "claude-print-traces-protobuf")
    (agent,) = stats(agents, "agent").values()
    assert agent.tokens == TOKENS
    assert (agent.cost_usd, agent.cost_status) == (pytest.approx(0.02061), "reported")
    assert (agent.requests, agent.request_duration_ms_total) == (3, 220)
    assert (agent.tool_calls, agent.tool_failures) == (2, 1)
    assert agent.context_max_tokens == 2050


def test_traces_alone_give_the_same_tokens(make_agents: Any) -> None:
    """Only the traces: the llm_request spans' gen_ai.usage.* (input including cached
    input) made disjoint give the events' tokens."""
    agents = replayed(make_agents, "claude-print-traces-protobuf", only="/v1/traces")
    (agent,) = stats(agents, "agent").values()
    assert agent.tokens == TOKENS
    assert agent.requests == 3


def test_content_is_not_stored_and_new_events_are_kept(make_agents: Any) -> None:
    """prompt_text and message.uuid are not stored by default; managed_settings_resolved
    and plugin_loaded are kept as events."""
    agents = replayed(make_agents, "claude-print-protobuf")
    stored = _store_text(agents)
    for content in ("<REDACTED>", "1208909c-cf95-453b-a0bd-93833f229cfe",
                    "4f526d71-904d-43f8-96f4-5da7203e0b44", "prompt_text", "message.uuid"):
        assert content not in stored, content
    assert "managed_settings_resolved" in stored and "plugin_loaded" in stored
    kept = _store_text(replayed(make_agents, "claude-print-protobuf", store_content=True))
    assert "1208909c-cf95-453b-a0bd-93833f229cfe" in kept


def test_one_hour_cache_writes_priced_apart(make_agents: Any) -> None:
    """The same events with the split sent (50 five-minute, 100 one-hour cache writes) and no
    cost of their own: priced from genai-prices, 1-hour writes at their higher rate.

    claude-opus-5-5 in genai-prices 0.2.5: $4 input, $20 output, $0.2 cache read, $5 cache
    write (5 min), $8 cache write (1 h) per MTok. Per request 1300 x 4 + 40 x 20 + 600 x 0.2
    + 50 x 5 + 100 x 8 = 7170 micro-dollars; three requests 0.02151 (not 0.021 as 150 x 5).
    """
    logs = next(r for r in requests("claude-print-protobuf") if r.path == "/v1/logs")
    body = ExportLogsServiceRequest()
    body.ParseFromString(logs.body)
    for resource in body.resource_logs:
        for scope in resource.scope_logs:
            for record in scope.log_records:
                attrs = record.attributes
                names = [a.key for a in attrs]
                if "cache_creation_5m_tokens" not in names:
                    continue
                for a in attrs:
                    if a.key == "cache_creation_5m_tokens":
                        a.value.string_value = "50"
                    elif a.key == "cache_creation_1h_tokens":
                        a.value.string_value = "100"
                for index in sorted((i for i, a in enumerate(attrs)
                                     if a.key in ("cost_usd", "cost_usd_micros")), reverse=True):
                    del attrs[index]
    agents: AgentTelemetry = make_agents(**KEEP)
    assert post(agents.receiver.port, "/v1/logs", body.SerializeToString()).status == 200
    assert agents.ingestor.flush(30.0)
    (agent,) = agents.reader.stats(*FOREVER, "agent")
    assert agent.tokens == TOKENS
    assert (agent.cost_status, agent.cost_usd) == ("computed", pytest.approx(0.02151))

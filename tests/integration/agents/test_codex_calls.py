"""Codex: a report's last requests carry each request's tokens, which Codex sends in the
`codex.sse_event` `response.completed` after each `codex.api_request`.

Replays `codex-exec-json` (Codex CLI 0.171.0, `codex exec`, 3 requests to gpt-6.2-sol, each
1300 input of which 600 cached, 40 output of which 25 reasoning, at 03:58 UTC 2026-12-07).
"""

from __future__ import annotations

import calendar
from typing import Any

from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.support.captures import replay

SESSION = "01a24ea6-d164-7f21-aecd-0b112ce114de"
AFTER_RUN = calendar.timegm((2026, 12, 7, 4, 0, 0, 0, 0, 0))


def test_last_requests_carry_their_tokens(make_agents: Any) -> None:
    """Three requests, each with its disjoint tokens: 700 input, 600 cached, 15 output,
    25 reasoning (not empty)."""
    agents: AgentTelemetry = make_agents(retention_days=3650.0)
    assert all(s == 200 for s in replay(agents.receiver.port, "codex-exec-json"))
    assert agents.ingestor.flush(30.0)
    context = agents.reader.agent_context(None, SESSION, None, AFTER_RUN, 900.0)
    assert context is not None
    requests = context["last_requests"]
    assert [r["model"] for r in requests] == ["gpt-6.2-sol"] * 3
    assert [(r["input_tokens"], r["cache_read_tokens"], r["output_tokens"],
             r["reasoning_tokens"]) for r in requests] == [(700, 600, 15, 25)] * 3
    assert context["tokens"] == {"input": 2100, "output": 45, "cache_read": 1800,
                                 "cache_creation": 0, "reasoning": 75}

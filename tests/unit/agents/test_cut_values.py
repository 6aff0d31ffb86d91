"""Values cut to their caps never merge: a hostile model or tool that shares a real one's
beginning keeps figures of its own."""

from __future__ import annotations

from daemon.agents.decoding.decode import decode_logs, decode_metrics
from daemon.agents.decoding.records import TokenUsage, ToolCall
from daemon.agents.decoding.series import SeriesTracker
from tests.unit.agents.payloads import (
    SECOND_NS,
    claude_code_events,
    claude_resource,
    metrics_request,
    sum_metric,
)

NOW = 1_800_000_000.0
T = int(NOW * SECOND_NS)


def test_a_cut_value_never_merges_into_another() -> None:
    """Two models that share their first 600 bytes stay two models (a plain cut, as before,
    made them one and merged a hostile model's tokens into a real one's)."""
    shared = "claude-opus-4-8-" + "x" * 600
    points = [({"type": "input", "model": shared + tail}, 10, 0, T) for tail in ("A", "B")]
    request = metrics_request(claude_resource(), [sum_metric("claude_code.token.usage", points)])
    tracker = SeriesTracker(100, 10, 3600.0)
    result = decode_metrics(request, tracker.begin(NOW), NOW)
    tokens = {r.model: r.tokens for r in result.records if isinstance(r, TokenUsage)}
    assert len(tokens) == 2 and set(tokens.values()) == {10}
    assert all(len(m.encode()) <= 512 for m in tokens)


def test_long_tool_names_that_share_a_beginning_stay_apart() -> None:
    """Tool names past the 64 characters kept are cut with a digest, not merged."""
    events = [("tool_result", {"tool_name": "mcp__server__" + "t" * 60 + tail,
                               "success": "true", "duration_ms": "5"}, T)
              for tail in ("read", "write")]
    result = decode_logs(claude_code_events(claude_resource(), events),
                         SeriesTracker(100, 10, 3600.0).begin(NOW), NOW)
    tools = [r.tool for r in result.records if isinstance(r, ToolCall)]
    assert len(tools) == 2 and tools[0] != tools[1] and all(len(t) <= 64 for t in tools)

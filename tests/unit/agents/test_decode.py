"""Decoding OTLP requests into records: names, temporality, refusals, cardinality."""

from __future__ import annotations

import math

from daemon.agents.decoding.decode import decode_logs, decode_metrics
from daemon.agents.decoding.records import (
    ApiRequest,
    CostUsage,
    GenericEvent,
    GenericPoint,
    TokenUsage,
    ToolCall,
)
from daemon.agents.decoding.series import SeriesTracker
from tests.unit.agents.payloads import (
    CUMULATIVE,
    SECOND_NS,
    claude_code_events,
    claude_code_metrics,
    claude_resource,
    histogram_metric,
    metrics_request,
    sum_metric,
)

NOW = 1_800_000_000.0
T = int(NOW * SECOND_NS)


def tracker(cap: int = 100) -> SeriesTracker:
    """A tracker with a small series cap."""
    return SeriesTracker(max_series_per_metric=cap, max_metrics=50, idle_seconds=3600.0)


def run_metrics(t: SeriesTracker, request: object) -> object:
    """Decode and commit like the receiver does."""
    txn = t.begin(NOW)
    result = decode_metrics(request, txn, NOW)
    t.commit(txn, NOW)
    return result


def test_claude_code_tokens_and_cost_become_records() -> None:
    """Claude Code's token types map to input/output/cache_read/cache_creation with session."""
    request = claude_code_metrics(
        claude_resource(**{"service.instance.id": "inst-1"}),
        "sess-1",
        "claude-sonnet-4-5",
        {"input": 10, "output": 20, "cacheRead": 30, "cacheCreation": 40},
        0.25,
        T,
    )
    result = run_metrics(tracker(), request)
    tokens = {r.token_type: r.tokens for r in result.records if isinstance(r, TokenUsage)}
    assert tokens == {"input": 10, "output": 20, "cache_read": 30, "cache_creation": 40}
    (cost,) = [r for r in result.records if isinstance(r, CostUsage)]
    assert cost.usd == 0.25 and cost.model == "claude-sonnet-4-5" and cost.session_id == "sess-1"
    assert cost.agent.stream == "claude-code/inst-1"
    assert result.accepted == 5 and result.rejected == 0


def test_cumulative_sums_are_differenced_and_resets_start_over() -> None:
    """A cumulative counter yields increases; a lower value with a new start is a reset."""
    t = tracker()
    start = T - 100 * SECOND_NS
    attrs = {"type": "input", "model": "m"}

    def send(value: int, start_ns: int) -> list[int]:
        metric = sum_metric(
            "claude_code.token.usage", [(attrs, value, start_ns, T)], temporality=CUMULATIVE
        )
        result = run_metrics(t, metrics_request({"service.name": "py"}, [metric]))
        return [r.tokens for r in result.records]

    assert send(100, start) == [100]
    assert send(150, start) == [50]
    assert send(150, start) == []  # unchanged: nothing new to store
    assert send(30, start + SECOND_NS) == [30]  # restarted process
    assert send(45, start + SECOND_NS) == [15]


def test_uncommitted_request_leaves_cumulative_state_untouched() -> None:
    """A request refused after decoding (429) does not advance the series, so its retry counts."""
    t = tracker()
    metric = sum_metric(
        "claude_code.token.usage",
        [({"type": "output"}, 70, T - SECOND_NS, T)],
        temporality=CUMULATIVE,
    )
    request = metrics_request({"service.name": "py"}, [metric])
    decode_metrics(request, t.begin(NOW), NOW)  # decoded, never committed
    assert [r.tokens for r in run_metrics(t, request).records] == [70]


def test_nan_infinite_and_negative_counters_are_refused() -> None:
    """NaN, inf and negative values of counters are refused and counted by reason."""
    points = [
        ({"type": "input", "n": 1}, math.nan, 0, T),
        ({"type": "input", "n": 2}, math.inf, 0, T),
        ({"type": "input", "n": 3}, -5.0, 0, T),
        ({"type": "input", "n": 4}, 5.0, 0, T),
    ]
    request = metrics_request(
        {"service.name": "a"}, [sum_metric("claude_code.token.usage", points)]
    )
    result = run_metrics(tracker(), request)
    assert dict(result.refusals) == {"not_finite": 2, "negative": 1}
    assert [r.tokens for r in result.records] == [5]
    assert result.message() == "refused 3: negative=1, not_finite=2"


def test_negative_gauge_and_updown_values_are_kept() -> None:
    """Negative values are fine for gauges and up-down counters: they are not counters."""
    gauge = sum_metric("queue.depth.change", [({}, -3.0, 0, T)], monotonic=False)
    result = run_metrics(tracker(), metrics_request({"service.name": "a"}, [gauge]))
    assert result.rejected == 0
    (point,) = result.records
    assert isinstance(point, GenericPoint) and point.value == -3.0


def test_cardinality_cap_refuses_new_series_but_keeps_known_ones() -> None:
    """Past the cap new series are refused; already-known series keep flowing."""
    t = tracker(cap=3)
    flood = [({"type": "input", "model": f"m{i}"}, 1, 0, T) for i in range(10)]
    request = metrics_request({"service.name": "a"}, [sum_metric("claude_code.token.usage", flood)])
    first = run_metrics(t, request)
    assert first.accepted == 3 and first.refusals["cardinality"] == 7
    again = run_metrics(t, request)
    assert again.accepted == 3 and again.refusals["cardinality"] == 7


def test_idle_series_free_their_slots() -> None:
    """Series not seen for the idle time are forgotten, so new sessions are not refused forever."""
    t = SeriesTracker(max_series_per_metric=1, max_metrics=10, idle_seconds=60.0)

    def one(session: str, now: float) -> int:
        metric = sum_metric(
            "claude_code.token.usage", [({"session.id": session, "type": "input"}, 1, 0, T)]
        )
        txn = t.begin(now)
        result = decode_metrics(metrics_request({"service.name": "a"}, [metric]), txn, now)
        t.commit(txn, now)
        return result.accepted

    assert one("s1", NOW) == 1
    assert one("s2", NOW + 1) == 0
    assert one("s3", NOW + 3600) == 1  # s1 went idle and was swept


def test_genai_histograms_give_tokens_requests_errors_and_tools() -> None:
    """GenAI token, operation and tool histograms become tokens, requests and tool calls."""
    res = {"service.name": "py-agent", "process.pid": 4242}
    metrics = [
        histogram_metric(
            "gen_ai.client.token.usage",
            [({"gen_ai.token.type": "input", "gen_ai.request.model": "gpt-4o"}, 1200, 3, 0, T)],
            unit="{token}",
        ),
        histogram_metric(
            "gen_ai.client.operation.duration",
            [
                ({"gen_ai.response.model": "gpt-4o"}, 2.5, 2, 0, T),
                ({"gen_ai.response.model": "gpt-4o", "error.type": "timeout"}, 30.0, 1, 0, T),
                ({"gen_ai.response.model": "gpt-4o", "error.type": "429"}, 0.1, 1, 0, T),
            ],
            unit="s",
        ),
        histogram_metric(
            "gen_ai.execute_tool.duration",
            [({"gen_ai.tool.name": "search", "error.type": "ValueError"}, 0.5, 1, 0, T)],
            unit="s",
        ),
    ]
    result = run_metrics(tracker(), metrics_request(res, metrics))
    (tokens,) = [r for r in result.records if isinstance(r, TokenUsage)]
    assert (tokens.tokens, tokens.requests, tokens.model) == (1200, 3, "gpt-4o")
    assert tokens.agent.pid == 4242
    requests = [r for r in result.records if isinstance(r, ApiRequest)]
    assert [(r.count, r.duration_ms, r.error_class) for r in requests] == [
        (2, 2500.0, None),
        (1, 30000.0, "network"),
        (1, 100.0, "rate_limit"),
    ]
    (tool,) = [r for r in result.records if isinstance(r, ToolCall)]
    assert (tool.tool, tool.success, tool.duration_ms) == ("search", False, 500.0)


def test_claude_code_events_become_requests_errors_and_tool_calls() -> None:
    """api_request, api_error and tool_result events carry their fields; others are kept by name."""
    request = claude_code_events(
        claude_resource(),
        [
            (
                "api_request",
                {
                    "model": "claude-sonnet-4-5",
                    "cost_usd": 0.012,
                    "duration_ms": 2300,
                    "input_tokens": 12,
                    "output_tokens": 340,
                    "cache_read_tokens": 9000,
                    "cache_creation_tokens": 100,
                    "session.id": "s-9",
                },
                T,
            ),
            (
                "api_error",
                {
                    "model": "claude-sonnet-4-5",
                    "error": "Request timed out",
                    "status_code": "undefined",
                    "duration_ms": 60000,
                },
                T,
            ),
            (
                "api_error",
                {"model": "claude-sonnet-4-5", "error": "prompt is too long", "status_code": 400},
                T,
            ),
            ("tool_result", {"tool_name": "Bash", "success": "false", "duration_ms": 12}, T),
            ("user_prompt", {"prompt": "my secret prompt", "prompt_length": 16}, T),
        ],
    )
    txn = tracker().begin(NOW)
    result = decode_logs(request, txn, NOW)
    spend = [r for r in result.records if isinstance(r, TokenUsage)]
    assert {r.token_type: r.tokens for r in spend} == {
        "input": 12, "output": 340, "cache_read": 9000, "cache_creation": 100}
    assert all(r.source == "event" and r.session_id == "s-9" for r in spend)
    (cost,) = [r for r in result.records if isinstance(r, CostUsage)]
    assert (cost.usd, cost.source) == (0.012, "event")
    ok, timeout, overflow = [r for r in result.records if isinstance(r, ApiRequest)]
    tool, prompt = result.records[-2:]
    assert ok.error_class is None and ok.cost_usd == 0.012
    assert (ok.input_tokens, ok.cache_read_tokens, ok.session_id) == (12, 9000, "s-9")
    assert timeout.error_class == "network" and timeout.error == "Request timed out"
    assert timeout.status_code is None
    assert overflow.error_class == "client"
    assert overflow.status_code == 400
    assert isinstance(tool, ToolCall) and tool.success is False and tool.tool == "Bash"
    assert prompt == GenericEvent(NOW, prompt.agent, None, "user_prompt",
                                  (("prompt_length", "16"),))
    assert "my secret prompt" not in repr(result.records)


def test_events_with_bad_numbers_are_refused_and_plain_logs_ignored() -> None:
    """An event with a NaN or negative field is refused; a plain log line is taken, not stored."""
    request = claude_code_events(
        claude_resource(),
        [
            ("api_request", {"model": "m", "cost_usd": "NaN"}, T),
            ("api_request", {"model": "m", "input_tokens": -4}, T),
        ],
    )
    plain = request.resource_logs[0].scope_logs[0].log_records.add()
    plain.body.string_value = "INFO starting worker"
    result = decode_logs(request, tracker().begin(NOW), NOW)
    assert result.records == []
    assert dict(result.refusals) == {"not_finite": 1, "negative": 1}
    assert result.accepted == 1

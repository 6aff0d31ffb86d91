"""OTLP export requests to normalized records (pure but for the series state passed in).

Metrics, log events and spans of Claude Code, Gemini CLI, Codex and the OpenTelemetry
GenAI conventions get meaning (``metric_map``, ``events``, ``spans``); any other metric is
kept as a generic series, any other event by name, any other span counted and dropped.
Values that cannot be counted (NaN, infinite, negative counters) and series over the
cardinality cap are refused and counted by reason; nothing received is ever logged.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from daemon.agents import attributes as attr
from daemon.agents.events import map_event
from daemon.agents.metric_map import TokenBundles, map_metric
from daemon.agents.records import Agent, ApiRequest, Record, ToolCall
from daemon.agents.series import SeriesKey, SeriesTxn
from daemon.agents.spans import map_span

_CUMULATIVE = 2  # AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_FUTURE_SLACK_SECONDS = 300.0
_COUNTERS = frozenset(
    {
        "claude_code.token.usage",
        "claude_code.cost.usage",
        "claude_code.session.count",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.execute_tool.duration",
    }
)


@dataclass(slots=True)
class DecodeResult:
    """Records from one request, how many points, log records or spans were taken and refused."""

    records: list[Record] = field(default_factory=list)
    accepted: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    dropped_spans: int = 0

    @property
    def rejected(self) -> int:
        """Points or log records refused."""
        return sum(self.refusals.values())

    def message(self) -> str:
        """A partial-success message naming reasons and counts only, never input.

        >>> r = DecodeResult(); r.refusals.update({"cardinality": 2, "not_finite": 1}); r.message()
        'refused 3: cardinality=2, not_finite=1'
        """
        if not self.refusals:
            return ""
        parts = ", ".join(f"{reason}={n}" for reason, n in sorted(self.refusals.items()))
        return f"refused {self.rejected}: {parts}"


def timestamp(time_unix_nano: int, now: float) -> float:
    """Seconds since the epoch; a missing or far-future time becomes ``now``.

    >>> timestamp(0, 100.0), timestamp(50 * 10**9, 100.0), timestamp(10**19, 100.0)
    (100.0, 50.0, 100.0)
    """
    if time_unix_nano <= 0:
        return now
    seconds = time_unix_nano / 1e9
    return now if seconds > now + _FUTURE_SLACK_SECONDS else seconds


def decode_metrics(
    request: Any, txn: SeriesTxn, now: float, *, store_content: bool = False
) -> DecodeResult:
    """Every data point of an ``ExportMetricsServiceRequest`` into records."""
    result = DecodeResult()
    bundles = TokenBundles()
    for resource_metrics in request.resource_metrics:
        agent = attr.agent_of(attr.to_dict(resource_metrics.resource.attributes))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _decode_metric(metric, agent, txn, now, result, bundles, store_content)
    result.records.extend(bundles.records())
    return result


def _decode_metric(
    metric: Any, agent: Agent, txn: SeriesTxn, now: float, out: DecodeResult,
    bundles: TokenBundles, store_content: bool,
) -> None:
    name = str(metric.name)[: attr.MAX_VALUE_CHARS]
    kind = metric.WhichOneof("data")
    if kind is None:
        return
    data = getattr(metric, kind)
    cumulative = getattr(data, "aggregation_temporality", 0) == _CUMULATIVE
    monotonic = bool(getattr(data, "is_monotonic", False)) or name in _COUNTERS
    histogram = kind in ("histogram", "exponential_histogram", "summary")
    for dp in data.data_points:
        if dp.flags & _NO_RECORDED_VALUE:
            continue
        if histogram:
            value, count = float(dp.sum), int(dp.count)
        else:
            is_int = dp.WhichOneof("value") == "as_int"
            value, count = (float(dp.as_int) if is_int else float(dp.as_double)), 0
        if not math.isfinite(value):
            out.refusals["not_finite"] += 1
            continue
        if value < 0 and monotonic:
            out.refusals["negative"] += 1
            continue
        attrs = attr.to_dict(dp.attributes)
        key: SeriesKey = (agent.stream, name, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if not txn.admit(name, key):
            out.refusals["cardinality"] += 1
            continue
        out.accepted += 1
        if cumulative and (monotonic or kind in ("histogram", "exponential_histogram")):
            # Per series: a cumulative point counts by its increase since the last one.
            value, count = txn.delta(name, key, int(dp.start_time_unix_nano), value, count)
            if value == 0 and count == 0:
                continue
        ts = timestamp(int(dp.time_unix_nano), now)
        out.records.extend(
            map_metric(name, kind, str(metric.unit), ts, attrs, value, count, agent, bundles,
                       store_content)
        )


def decode_logs(
    request: Any, txn: SeriesTxn, now: float, *, store_content: bool = False
) -> DecodeResult:
    """Every log record of an ``ExportLogsServiceRequest``: known events become records."""
    result = DecodeResult()
    for resource_logs in request.resource_logs:
        agent = attr.agent_of(attr.to_dict(resource_logs.resource.attributes))
        for scope_logs in resource_logs.scope_logs:
            for log_record in scope_logs.log_records:
                _decode_log(log_record, agent, txn, now, result, store_content)
    return result


def _is_source_location(name: str) -> bool:
    """Codex puts ``event otel/src/events/session_telemetry.rs:837`` into ``event_name``.

    >>> _is_source_location("event otel/src/tool_result.rs:54"), _is_source_location("a.b")
    (True, False)
    """
    return "/" in name or " " in name or ".rs:" in name


def event_name(log_record: Any, attrs: dict[str, attr.Scalar]) -> str | None:
    """The event a log record is: ``event_name`` unless empty or a source location, else the
    ``event.name`` attribute, else a Claude Code body (``claude_code.<name>``)."""
    name = str(log_record.event_name)
    if not name or _is_source_location(name):
        name = attr.text(attrs, "event.name") or ""
    if not name and log_record.body.WhichOneof("value") == "string_value":
        body = str(log_record.body.string_value)
        if body.startswith("claude_code.") and len(body) <= 64:
            name = body
    if not name:
        return None
    return name.removeprefix("claude_code.")[: attr.MAX_VALUE_CHARS]


_NUMERIC_CHECKED = (
    "cost_usd", "duration_ms", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_creation_tokens", "input_token_count", "output_token_count",
)


def _decode_log(
    log_record: Any, agent: Agent, txn: SeriesTxn, now: float, out: DecodeResult,
    store_content: bool,
) -> None:
    attrs = attr.to_dict(log_record.attributes)
    name = event_name(log_record, attrs)
    if name is None:
        # Plain application logs are not agent events; taking them is enough.
        out.accepted += 1
        return
    # Codex sets only the observed time on its log records.
    ts = timestamp(int(log_record.time_unix_nano or log_record.observed_time_unix_nano), now)
    present = [v for v in (attr.number(attrs, k) for k in _NUMERIC_CHECKED) if v is not None]
    if any(not math.isfinite(v) for v in present):
        out.refusals["not_finite"] += 1
        return
    if any(v < 0 for v in present):
        out.refusals["negative"] += 1
        return
    records = map_event(name, ts, attrs, agent, store_content)
    dimension = _dimension(name, records)
    if not txn.admit("event." + name, (agent.stream, "event." + name, dimension)):
        out.refusals["cardinality"] += 1
        return
    out.accepted += 1
    out.records.extend(records)


def _dimension(name: str, records: list[Record]) -> tuple[tuple[str, str], ...]:
    for record in records:
        if isinstance(record, ApiRequest):
            return (("model", record.model),)
        if isinstance(record, ToolCall):
            return (("tool", record.tool),)
    return (("event", name),)


def decode_traces(
    request: Any, txn: SeriesTxn, now: float, *, store_content: bool = False
) -> DecodeResult:
    """Spans of an ``ExportTraceServiceRequest``: model and tool timings become records,
    the rest are counted (``dropped_spans``) and dropped."""
    result = DecodeResult()
    for resource_spans in request.resource_spans:
        agent = attr.agent_of(attr.to_dict(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attrs = attr.to_dict(span.attributes)
                ts = timestamp(int(span.end_time_unix_nano), now)
                duration_ms = max(0, int(span.end_time_unix_nano) - int(span.start_time_unix_nano))
                records = map_span(str(span.name), ts, duration_ms / 1e6, attrs,
                                   int(span.status.code), agent)
                if not records:
                    result.dropped_spans += 1
                    result.accepted += 1
                    continue
                dimension = _dimension("span", records)
                if not txn.admit("span", (agent.stream, "span", dimension)):
                    result.refusals["cardinality"] += 1
                    continue
                result.accepted += 1
                result.records.extend(records)
    return result

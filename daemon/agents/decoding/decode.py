"""OTLP export requests to normalized records (pure but for the series state passed in).

Metrics, log events and spans of Claude Code, Gemini CLI, Codex and the OpenTelemetry
GenAI conventions get meaning (``metric_map``, ``events``, ``spans``); any other metric is
kept as a generic series, any other event by name, any other span counted and dropped.
Values that cannot be counted (NaN, infinite, negative counters, magnitudes past
``MAX_VALUE`` or counts past ``MAX_COUNT``) and series over the cardinality cap are refused
per point and counted by reason, so one bad point never costs another; nothing received is
ever logged.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from daemon.agents.decoding import attributes as attr
from daemon.agents.decoding.attributes import DEFAULT_LIMITS, AttributeLimits
from daemon.agents.decoding.bounded import bounded
from daemon.agents.decoding.events import map_event
from daemon.agents.decoding.metric_map import TokenBundles, map_metric
from daemon.agents.decoding.records import Agent, ApiRequest, Record, ToolCall
from daemon.agents.decoding.series import SeriesTxn
from daemon.agents.decoding.spans import map_span

_CUMULATIVE = 2  # AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_FUTURE_SLACK_SECONDS = 300.0
# Far past any real amount (USD, tokens, milliseconds, bytes), far below float overflow:
# sums of a few billion such points stay finite.
MAX_VALUE = 1e15
MAX_COUNT = 2**53
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
    """Records from one request, how many points, log records or spans were taken and
    refused, and how many attributes were cut or dropped (``attributes.to_dict``)."""

    records: list[Record] = field(default_factory=list)
    accepted: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    dropped_spans: int = 0
    truncated: attr.Tally = field(default_factory=Counter)

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


def value_refusal(value: float, count: int, counter: bool) -> str | None:
    """Why a point's value cannot be taken, or None.

    >>> value_refusal(float("nan"), 0, False), value_refusal(-1.0, 0, True)
    ('not_finite', 'negative')
    >>> value_refusal(1e308, 0, True), value_refusal(1.0, 2**64 - 1, True)
    ('overflow', 'overflow')
    >>> value_refusal(-3.0, 0, False) is None
    True
    """
    if not math.isfinite(value):
        return "not_finite"
    if (value < 0 and counter) or count < 0:
        return "negative"
    if abs(value) > MAX_VALUE or count > MAX_COUNT:
        return "overflow"
    return None


def too_many_items(request: Any, limit: int) -> bool:
    """Whether a request holds more than ``limit`` resources, scopes, metrics, points, log
    records and spans; stops counting at the limit, so a request of millions of empty
    messages costs no more than ``limit`` steps.
    """
    if hasattr(request, "resource_metrics"):
        resources, scopes_of, items_of = request.resource_metrics, "scope_metrics", "metrics"
    elif hasattr(request, "resource_logs"):
        resources, scopes_of, items_of = request.resource_logs, "scope_logs", "log_records"
    else:
        resources, scopes_of, items_of = request.resource_spans, "scope_spans", "spans"
    seen = len(resources)
    for resource in resources:
        if seen > limit:
            return True
        scopes = getattr(resource, scopes_of)
        seen += len(scopes)
        for scope in scopes:
            if seen > limit:
                return True
            items = getattr(scope, items_of)
            seen += len(items)
            if items_of != "metrics":
                continue
            for metric in items:
                if seen > limit:
                    return True
                kind = metric.WhichOneof("data")
                if kind is not None:
                    seen += len(getattr(metric, kind).data_points)
    return seen > limit


def decode_metrics(
    request: Any, txn: SeriesTxn, now: float, *, store_content: bool = False,
    limits: AttributeLimits = DEFAULT_LIMITS, sender_pid: int | None = None,
) -> DecodeResult:
    """Every data point of an ``ExportMetricsServiceRequest`` into records."""
    result = DecodeResult()
    bundles = TokenBundles()
    for resource_metrics in request.resource_metrics:
        resource = attr.to_dict(resource_metrics.resource.attributes, limits, result.truncated)
        agent = attr.agent_of(resource, sender_pid)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _decode_metric(metric, agent, txn, now, result, bundles, store_content, limits)
    result.records.extend(bundles.records())
    return result


def _decode_metric(
    metric: Any, agent: Agent, txn: SeriesTxn, now: float, out: DecodeResult,
    bundles: TokenBundles, store_content: bool, limits: AttributeLimits,
) -> None:
    name = bounded(str(metric.name), limits.value_bytes)
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
        refusal = value_refusal(value, count, monotonic)
        if refusal is not None:
            out.refusals[refusal] += 1
            continue
        attrs = attr.to_dict(dp.attributes, limits, out.truncated)
        key = txn.admit(name, agent.stream, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key is None:
            out.refusals["cardinality"] += 1
            continue
        out.accepted += 1
        if cumulative and (monotonic or kind in ("histogram", "exponential_histogram")):
            # Per series: a cumulative point counts by its increase since the last one.
            value, count = txn.delta(key, int(dp.start_time_unix_nano), value, count)
            if value == 0 and count == 0:
                continue
        ts = timestamp(int(dp.time_unix_nano), now)
        out.records.extend(
            map_metric(name, kind, str(metric.unit), ts, attrs, value, count, agent, bundles,
                       store_content)
        )


def decode_logs(
    request: Any, txn: SeriesTxn, now: float, *, store_content: bool = False,
    limits: AttributeLimits = DEFAULT_LIMITS, sender_pid: int | None = None,
) -> DecodeResult:
    """Every log record of an ``ExportLogsServiceRequest``: known events become records."""
    result = DecodeResult()
    for resource_logs in request.resource_logs:
        agent = attr.agent_of(attr.to_dict(resource_logs.resource.attributes, limits,
                                           result.truncated), sender_pid)
        for scope_logs in resource_logs.scope_logs:
            for log_record in scope_logs.log_records:
                _decode_log(log_record, agent, txn, now, result, store_content, limits)
    return result


def _is_source_location(name: str) -> bool:
    """Codex puts ``event otel/src/events/session_telemetry.rs:837`` into ``event_name``.

    >>> _is_source_location("event otel/src/tool_result.rs:54"), _is_source_location("a.b")
    (True, False)
    """
    return "/" in name or " " in name or ".rs:" in name


def event_name(log_record: Any, attrs: dict[str, attr.Scalar],
               max_bytes: int = DEFAULT_LIMITS.value_bytes) -> str | None:
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
    return bounded(name.removeprefix("claude_code."), max_bytes)


_NUMERIC_CHECKED = (
    "cost_usd", "duration_ms", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_creation_tokens", "input_token_count", "output_token_count",
)


def _decode_log(
    log_record: Any, agent: Agent, txn: SeriesTxn, now: float, out: DecodeResult,
    store_content: bool, limits: AttributeLimits,
) -> None:
    attrs = attr.to_dict(log_record.attributes, limits, out.truncated)
    name = event_name(log_record, attrs, limits.value_bytes)
    if name is None:
        # Plain application logs are not agent events; taking them is enough.
        out.accepted += 1
        return
    # Codex sets only the observed time on its log records.
    ts = timestamp(int(log_record.time_unix_nano or log_record.observed_time_unix_nano), now)
    present = [v for v in (attr.number(attrs, k) for k in _NUMERIC_CHECKED) if v is not None]
    refusal = next((r for r in (value_refusal(v, 0, True) for v in present) if r), None)
    if refusal is not None:
        out.refusals[refusal] += 1
        return
    records = map_event(name, ts, attrs, agent, store_content)
    dimension = _dimension(name, records)
    if txn.admit("event." + name, agent.stream, dimension) is None:
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
    request: Any, txn: SeriesTxn, now: float, *, store_content: bool = False,
    limits: AttributeLimits = DEFAULT_LIMITS, sender_pid: int | None = None,
) -> DecodeResult:
    """Spans of an ``ExportTraceServiceRequest``: model and tool timings become records,
    the rest are counted (``dropped_spans``) and dropped."""
    result = DecodeResult()
    for resource_spans in request.resource_spans:
        agent = attr.agent_of(attr.to_dict(resource_spans.resource.attributes, limits,
                                           result.truncated), sender_pid)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attrs = attr.to_dict(span.attributes, limits, result.truncated)
                ts = timestamp(int(span.end_time_unix_nano), now)
                duration_ms = max(0, int(span.end_time_unix_nano) - int(span.start_time_unix_nano))
                records = map_span(str(span.name), ts, duration_ms / 1e6, attrs,
                                   int(span.status.code), agent)
                if not records:
                    result.dropped_spans += 1
                    result.accepted += 1
                    continue
                dimension = _dimension("span", records)
                if txn.admit("span", agent.stream, dimension) is None:
                    result.refusals["cardinality"] += 1
                    continue
                result.accepted += 1
                result.records.extend(records)
    return result

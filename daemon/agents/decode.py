"""OTLP export requests to normalized records (pure but for the series state passed in).

Claude Code names (``claude_code.*`` metrics and events) and the OpenTelemetry GenAI
conventions (``gen_ai.*``) get meaning; any other metric is kept as a generic series.
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

from daemon.agents import attributes as attr
from daemon.agents.classify import classify_error
from daemon.agents.records import (
    Agent,
    ApiRequest,
    CostUsage,
    GenericEvent,
    GenericPoint,
    Record,
    SessionStart,
    TokenType,
    TokenUsage,
    ToolCall,
)
from daemon.agents.series import SeriesKey, SeriesTxn

_CUMULATIVE = 2  # AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_FUTURE_SLACK_SECONDS = 300.0
# Far past any real amount (USD, tokens, milliseconds, bytes), far below float overflow:
# sums of a few billion such points stay finite.
MAX_VALUE = 1e15
MAX_COUNT = 2**53
_TOKEN_TYPES: dict[str, TokenType] = {
    "input": "input",
    "output": "output",
    "cacheRead": "cache_read",
    "cache_read": "cache_read",
    "cacheCreation": "cache_creation",
    "cache_creation": "cache_creation",
}
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
    """Records from one request, how many points or log records were taken and refused."""

    records: list[Record] = field(default_factory=list)
    accepted: int = 0
    refusals: Counter[str] = field(default_factory=Counter)

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


@dataclass(frozen=True, slots=True)
class _Point:
    """One data point reduced to what records need, after temporality is resolved."""

    ts: float
    attrs: dict[str, attr.Scalar]
    value: float
    count: int


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
    """Whether a request holds more than ``limit`` resources, scopes, metrics, points and log
    records; stops counting at the limit, so a request of millions of empty messages costs
    no more than ``limit`` steps.
    """
    metrics = hasattr(request, "resource_metrics")
    resources = request.resource_metrics if metrics else request.resource_logs
    seen = len(resources)
    for resource in resources:
        if seen > limit:
            return True
        scopes = resource.scope_metrics if metrics else resource.scope_logs
        seen += len(scopes)
        for scope in scopes:
            if seen > limit:
                return True
            if not metrics:
                seen += len(scope.log_records)
                continue
            seen += len(scope.metrics)
            for metric in scope.metrics:
                if seen > limit:
                    return True
                kind = metric.WhichOneof("data")
                if kind is not None:
                    seen += len(getattr(metric, kind).data_points)
    return seen > limit


def decode_metrics(request: Any, txn: SeriesTxn, now: float) -> DecodeResult:
    """Every data point of an ``ExportMetricsServiceRequest`` into records."""
    result = DecodeResult()
    for resource_metrics in request.resource_metrics:
        agent = attr.agent_of(attr.to_dict(resource_metrics.resource.attributes))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _decode_metric(metric, agent, txn, now, result)
    return result


def _decode_metric(
    metric: Any, agent: Agent, txn: SeriesTxn, now: float, out: DecodeResult
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
        refusal = value_refusal(value, count, monotonic)
        if refusal is not None:
            out.refusals[refusal] += 1
            continue
        attrs = attr.to_dict(dp.attributes)
        key: SeriesKey = (agent.stream, name, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if not txn.admit(name, key):
            out.refusals["cardinality"] += 1
            continue
        out.accepted += 1
        if cumulative and (monotonic or kind in ("histogram", "exponential_histogram")):
            value, count = txn.delta(name, key, int(dp.start_time_unix_nano), value, count)
            if value == 0 and count == 0:
                continue
        point = _Point(timestamp(int(dp.time_unix_nano), now), attrs, value, count)
        out.records.append(_metric_record(name, kind, str(metric.unit), point, agent))


def _metric_record(name: str, kind: str, unit: str, p: _Point, agent: Agent) -> Record:
    session = attr.text(p.attrs, "session.id") or agent.session_id
    if name == "claude_code.token.usage" or name == "gen_ai.client.token.usage":
        raw_type = attr.text(p.attrs, "type", "gen_ai.token.type") or ""
        token_type = _TOKEN_TYPES.get(raw_type)
        if token_type is not None:
            return TokenUsage(
                p.ts,
                agent,
                session,
                _model(p.attrs),
                token_type,
                round(p.value),
                source=name.split(".", 1)[0],
                requests=p.count,
            )
    elif name == "claude_code.cost.usage":
        return CostUsage(p.ts, agent, session, _model(p.attrs), p.value)
    elif name == "claude_code.session.count":
        return SessionStart(p.ts, agent, session, round(p.value))
    elif name == "gen_ai.client.operation.duration":
        error_type = attr.text(p.attrs, "error.type")
        status = int(error_type) if error_type and error_type.isdigit() else None
        return ApiRequest(
            p.ts,
            agent,
            session,
            _model(p.attrs),
            p.count,
            _millis(p.value, unit),
            error_class=classify_error(status, error_type) if error_type else None,
            status_code=status,
        )
    elif name == "gen_ai.execute_tool.duration":
        tool = attr.text(p.attrs, "gen_ai.tool.name") or "unknown"
        failed = attr.text(p.attrs, "error.type") is not None
        return ToolCall(p.ts, agent, session, tool, not failed, p.count, _millis(p.value, unit))
    attributes = tuple(sorted((k, str(v)) for k, v in p.attrs.items()))
    return GenericPoint(p.ts, agent, session, name, kind, p.value, p.count, attributes)


def _model(attrs: dict[str, attr.Scalar]) -> str:
    return attr.text(attrs, "model", "gen_ai.response.model", "gen_ai.request.model") or "unknown"


def _millis(value: float, unit: str) -> float:
    return value if unit == "ms" else value * 1000.0


def decode_logs(request: Any, txn: SeriesTxn, now: float) -> DecodeResult:
    """Every log record of an ``ExportLogsServiceRequest``: known events become records."""
    result = DecodeResult()
    for resource_logs in request.resource_logs:
        agent = attr.agent_of(attr.to_dict(resource_logs.resource.attributes))
        for scope_logs in resource_logs.scope_logs:
            for log_record in scope_logs.log_records:
                _decode_log(log_record, agent, txn, now, result)
    return result


def event_name(log_record: Any, attrs: dict[str, attr.Scalar]) -> str | None:
    """The event a log record is: ``event_name``, ``event.name``, or a Claude Code body."""
    name = str(log_record.event_name) or attr.text(attrs, "event.name")
    if not name and log_record.body.WhichOneof("value") == "string_value":
        body = str(log_record.body.string_value)
        if body.startswith("claude_code.") and len(body) <= 64:
            name = body
    if not name:
        return None
    return name.removeprefix("claude_code.")[: attr.MAX_VALUE_CHARS]


def _decode_log(
    log_record: Any, agent: Agent, txn: SeriesTxn, now: float, out: DecodeResult
) -> None:
    attrs = attr.to_dict(log_record.attributes)
    name = event_name(log_record, attrs)
    if name is None:
        # Plain application logs are not agent events; taking them is enough.
        out.accepted += 1
        return
    ts = timestamp(int(log_record.time_unix_nano or log_record.observed_time_unix_nano), now)
    session = attr.text(attrs, "session.id") or agent.session_id
    numbers = {
        key: attr.number(attrs, key)
        for key in (
            "cost_usd",
            "duration_ms",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_creation_tokens",
        )
    }
    refusals = [value_refusal(v, 0, True) for v in numbers.values() if v is not None]
    refusal = next((r for r in refusals if r is not None), None)
    if refusal is not None:
        out.refusals[refusal] += 1
        return
    record: Record
    if name in ("api_request", "api_error"):
        model = _model(attrs)
        dimension = (("model", model),)
        record = _api_record(name, ts, agent, session, model, attrs, numbers)
    elif name == "tool_result":
        tool = attr.text(attrs, "tool_name", "gen_ai.tool.name") or "unknown"
        dimension = (("tool", tool),)
        success = attr.flag(attrs, "success")
        record = ToolCall(
            ts, agent, session, tool, success is not False, 1, numbers["duration_ms"] or 0.0
        )
    else:
        dimension = (("event", name),)
        record = GenericEvent(ts, agent, session, name)
    if not txn.admit("event." + name, (agent.stream, "event." + name, dimension)):
        out.refusals["cardinality"] += 1
        return
    out.accepted += 1
    out.records.append(record)


def _api_record(
    name: str,
    ts: float,
    agent: Agent,
    session: str | None,
    model: str,
    attrs: dict[str, attr.Scalar],
    numbers: dict[str, float | None],
) -> ApiRequest:
    def whole(key: str) -> int | None:
        value = numbers[key]
        return None if value is None else round(value)

    if name == "api_error":
        code = attr.number(attrs, "status_code")
        status = int(code) if code is not None and 0 < code < 1000 and code.is_integer() else None
        error_class = classify_error(status, attr.text(attrs, "error"))
    else:
        status, error_class = None, None
    return ApiRequest(
        ts,
        agent,
        session,
        model,
        1,
        numbers["duration_ms"] or 0.0,
        error_class=error_class,
        status_code=status,
        input_tokens=whole("input_tokens"),
        output_tokens=whole("output_tokens"),
        cache_read_tokens=whole("cache_read_tokens"),
        cache_creation_tokens=whole("cache_creation_tokens"),
        cost_usd=numbers["cost_usd"],
    )

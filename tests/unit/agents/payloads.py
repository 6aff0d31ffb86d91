"""Builders of OTLP export requests shaped like what Claude Code and GenAI agents send."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
SECOND_NS = 1_000_000_000


def kvs(attrs: Mapping[str, Any]) -> list[KeyValue]:
    """OTLP attributes from a dict of str/int/float/bool."""
    out = []
    for key, value in attrs.items():
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        elif isinstance(value, float):
            any_value = AnyValue(double_value=value)
        else:
            any_value = AnyValue(string_value=str(value))
        out.append(KeyValue(key=key, value=any_value))
    return out


def claude_resource(**extra: Any) -> dict[str, Any]:
    """Resource attributes as Claude Code sends them, plus what a test adds."""
    return {"service.name": "claude-code", "service.version": "2.0.0", "os.type": "linux", **extra}


def sum_metric(
    name: str,
    points: Sequence[tuple[Mapping[str, Any], float, int, int]],
    *,
    temporality: int = DELTA,
    monotonic: bool = True,
    unit: str = "",
) -> metrics_pb2.Metric:
    """A Sum metric from (attributes, value, start_ns, time_ns) points."""
    metric = metrics_pb2.Metric(name=name, unit=unit)
    metric.sum.aggregation_temporality = temporality
    metric.sum.is_monotonic = monotonic
    for attrs, value, start_ns, time_ns in points:
        dp = metric.sum.data_points.add()
        dp.attributes.extend(kvs(attrs))
        dp.start_time_unix_nano = start_ns
        dp.time_unix_nano = time_ns
        if isinstance(value, int):
            dp.as_int = value
        else:
            dp.as_double = value
    return metric


def histogram_metric(
    name: str,
    points: Sequence[tuple[Mapping[str, Any], float, int, int, int]],
    *,
    temporality: int = DELTA,
    unit: str = "",
) -> metrics_pb2.Metric:
    """A Histogram metric from (attributes, sum, count, start_ns, time_ns) points."""
    metric = metrics_pb2.Metric(name=name, unit=unit)
    metric.histogram.aggregation_temporality = temporality
    for attrs, total, count, start_ns, time_ns in points:
        dp = metric.histogram.data_points.add()
        dp.attributes.extend(kvs(attrs))
        dp.sum, dp.count = total, count
        dp.start_time_unix_nano, dp.time_unix_nano = start_ns, time_ns
    return metric


def metrics_request(
    resource: Mapping[str, Any], metrics: Sequence[metrics_pb2.Metric]
) -> ExportMetricsServiceRequest:
    """One resource, one scope, these metrics."""
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(kvs(resource))
    sm = rm.scope_metrics.add()
    sm.scope.name = "com.anthropic.claude_code"
    sm.metrics.extend(metrics)
    return request


def claude_code_metrics(
    resource: Mapping[str, Any],
    session_id: str,
    model: str,
    tokens: Mapping[str, int],
    cost_usd: float | None,
    time_ns: int,
) -> ExportMetricsServiceRequest:
    """Token usage (types input/output/cacheRead/cacheCreation) and cost, delta, per session."""
    attrs = {"session.id": session_id, "user.id": "u-1", "model": model}
    token_points = [
        ({**attrs, "type": kind}, n, time_ns - 60 * SECOND_NS, time_ns)
        for kind, n in tokens.items()
    ]
    metrics = [sum_metric("claude_code.token.usage", token_points, unit="tokens")]
    if cost_usd is not None:
        cost_point = (attrs, cost_usd, time_ns - 60 * SECOND_NS, time_ns)
        metrics.append(sum_metric("claude_code.cost.usage", [cost_point], unit="USD"))
    return metrics_request(resource, metrics)


def claude_code_events(
    resource: Mapping[str, Any], events: Sequence[tuple[str, Mapping[str, Any], int]]
) -> ExportLogsServiceRequest:
    """Log records the way Claude Code sends events: body and ``event.name``, string fields."""
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(kvs(resource))
    sl = rl.scope_logs.add()
    sl.scope.name = "com.anthropic.claude_code.events"
    for name, attrs, time_ns in events:
        record = sl.log_records.add()
        record.time_unix_nano = time_ns
        record.body.string_value = f"claude_code.{name}"
        fields = {"event.name": name, "event.timestamp": "2026-11-01T00:00:00Z"}
        fields.update({k: str(v) for k, v in attrs.items()})
        record.attributes.extend(kvs(fields))
    return request

"""Payloads shaped like Claude Code's, in protobuf and OTLP JSON: stats, cost rule, replay."""

from __future__ import annotations

import base64
import json
import time

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.integration.agents.conftest import post
from tests.unit.agents.payloads import (
    claude_code_events,
    claude_code_metrics,
    claude_resource,
)

HOUR = 3600.0


def now_ns() -> int:
    """Wall clock in nanoseconds."""
    return time.time_ns()


def test_reported_cost_wins_and_events_do_not_double_count(agents: AgentTelemetry) -> None:
    """Claude Code's own cost is used, and api_request events add no tokens or cost to totals."""
    port = agents.receiver.port
    resource = claude_resource(**{"service.instance.id": "laptop-1"})
    tokens = {"input": 1000, "output": 2000, "cacheRead": 50_000, "cacheCreation": 3000}
    metrics = claude_code_metrics(resource, "s-1", "claude-sonnet-4-5", tokens, 0.4321, now_ns())
    reply = post(port, "/v1/metrics", metrics.SerializeToString())
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/x-protobuf"
    response = ExportMetricsServiceResponse.FromString(reply.body)
    assert not response.HasField("partial_success")
    events = claude_code_events(
        resource,
        [
            (
                "api_request",
                {
                    "model": "claude-sonnet-4-5",
                    "cost_usd": 0.4321,
                    "input_tokens": 1000,
                    "output_tokens": 2000,
                    "duration_ms": 5000,
                    "session.id": "s-1",
                },
                now_ns(),
            ),
            (
                "tool_result",
                {"tool_name": "Read", "success": "true", "duration_ms": 3, "session.id": "s-1"},
                now_ns(),
            ),
        ],
    )
    assert post(port, "/v1/logs", events.SerializeToString()).status == 200
    assert agents.ingestor.flush(10.0)

    now = time.time()
    (row,) = agents.reader.stats(now - HOUR, now, "agent")
    assert row.key == "claude-code"
    assert row.tokens == {
        "input": 1000,
        "output": 2000,
        "cache_read": 50_000,
        "cache_creation": 3000,
    }
    assert (row.cost_usd, row.cost_status) == (0.4321, "reported")
    assert (row.requests, row.tool_calls, row.tool_failures) == (1, 1, 0)
    assert agents.reader.spend_usd("claude-code", now - HOUR, now) == 0.4321
    assert agents.reader.spend_usd("someone-else", now - HOUR, now) == 0.0


def test_unknown_model_gets_unknown_cost_not_a_guess(agents: AgentTelemetry) -> None:
    """Tokens of a model genai-prices does not know leave cost unknown (None), never guessed."""
    metrics = claude_code_metrics(
        claude_resource(), "s-2", "house-model-7b", {"input": 10, "output": 5}, None, now_ns()
    )
    assert post(agents.receiver.port, "/v1/metrics", metrics.SerializeToString()).status == 200
    assert agents.ingestor.flush(10.0)
    now = time.time()
    (row,) = agents.reader.stats(now - HOUR, now, "model")
    assert (row.key, row.cost_usd, row.cost_status) == ("house-model-7b", None, "unknown")
    assert row.tokens == {"input": 10, "output": 5}


def test_events_replay_per_stream_in_sequence(agents: AgentTelemetry) -> None:
    """Each stream numbers its events 1, 2, 3…; events(stream, after_seq) resumes after a point."""
    port = agents.receiver.port
    for instance in ("a", "b"):
        resource = claude_resource(**{"service.instance.id": instance})
        for i in range(3):
            events = claude_code_events(
                resource, [("tool_result", {"tool_name": f"T{i}", "success": "true"}, now_ns())]
            )
            assert post(port, "/v1/logs", events.SerializeToString()).status == 200
    assert agents.ingestor.flush(10.0)
    assert agents.reader.streams() == {"claude-code/a": 3, "claude-code/b": 3}
    replay = agents.reader.events("claude-code/b", after_seq=1)
    assert [(e.seq, e.data["tool"]) for e in replay] == [(2, "T1"), (3, "T2")]


def otlp_json(message: object) -> bytes:
    """OTLP JSON of a real request: camelCase, int64 as strings, enums as integers, hex ids."""
    document = json.loads(json_format.MessageToJson(message, use_integers_for_enums=True))

    def hexify(node: object) -> object:
        if isinstance(node, dict):
            return {
                k: (base64.b64decode(v).hex() if k in ("traceId", "spanId") else hexify(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [hexify(item) for item in node]
        return node

    return json.dumps(hexify(document)).encode()


def test_json_encoded_sdk_metrics_and_events_are_understood(agents: AgentTelemetry) -> None:
    """JSON requests (from real SDK data and Claude Code-shaped events) get JSON answers."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=Resource.create({"service.name": "json-agent"}), metric_readers=[reader]
    )
    counter = provider.get_meter("m").create_counter("claude_code.cost.usage", unit="USD")
    counter.add(1.5, {"model": "claude-opus-4-1"})
    body = otlp_json(encode_metrics(reader.get_metrics_data()))
    assert b'"timeUnixNano": "' in body  # int64 travels as a string in OTLP JSON
    reply = post(agents.receiver.port, "/v1/metrics", body, "application/json")
    assert (reply.status, reply.headers["Content-Type"], reply.body) == (
        200,
        "application/json",
        b"{}",
    )

    events = claude_code_events(
        claude_resource(),
        [("api_error", {"model": "m", "error": "overloaded_error", "status_code": 529}, now_ns())],
    )
    events.resource_logs[0].scope_logs[0].log_records[0].trace_id = bytes(range(16))
    events.resource_logs[0].scope_logs[0].log_records[0].span_id = bytes(range(8))
    json_events = otlp_json(events)
    assert b"000102030405060708090a0b0c0d0e0f" in json_events
    reply = post(agents.receiver.port, "/v1/logs", json_events, "application/json; charset=utf-8")
    assert reply.status == 200 and json.loads(reply.body) == {}
    provider.shutdown()
    assert agents.ingestor.flush(10.0)

    now = time.time()
    rows = {r.key: r for r in agents.reader.stats(now - HOUR, now, "agent")}
    assert (rows["json-agent"].cost_usd, rows["json-agent"].cost_status) == (1.5, "reported")
    assert rows["claude-code"].errors == {"overloaded": 1}


def test_json_partial_success_reports_refused_points(agents: AgentTelemetry) -> None:
    """A JSON request with a negative counter gets a JSON partial_success naming the count."""
    metrics = claude_code_metrics(claude_resource(), "s", "m", {"input": 5}, -1.0, now_ns())
    reply = post(agents.receiver.port, "/v1/metrics", otlp_json(metrics), "application/json")
    assert reply.status == 200
    body = json.loads(reply.body)
    assert body["partialSuccess"]["rejectedDataPoints"] == "1"
    assert body["partialSuccess"]["errorMessage"] == "refused 1: negative=1"

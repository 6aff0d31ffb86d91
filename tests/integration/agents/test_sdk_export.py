"""The real OpenTelemetry Python SDK and OTLP/HTTP exporters, pointed at the receiver."""

from __future__ import annotations

import os
import time
from decimal import Decimal

import genai_prices
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from daemon.agents.decoding.counters import OtlpCounter
from daemon.runtime.agent_telemetry import AgentTelemetry

HOUR = 3600.0


def meter_provider(port: int, resource: Resource, **exporter_args: object) -> MeterProvider:
    """A MeterProvider whose reader exports only when flushed (cumulative, the SDK default)."""
    exporter = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}/v1/metrics", **exporter_args)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    return MeterProvider(resource=resource, metric_readers=[reader])


def test_sdk_cumulative_genai_metrics_are_stored_once(agents: AgentTelemetry) -> None:
    """Two cumulative exports store each token once, price it, and count requests and tools."""
    resource = Resource.create(
        {"service.name": "py-agent", "service.instance.id": "inst-7", "process.pid": os.getpid()}
    )
    provider = meter_provider(agents.receiver.port, resource)
    meter = provider.get_meter("agent")
    tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    tool = meter.create_histogram("gen_ai.execute_tool.duration", unit="s")
    jobs = meter.create_counter("app.jobs.completed")
    model = {"gen_ai.request.model": "gpt-4o", "gen_ai.operation.name": "chat"}
    try:
        tokens.record(1000, {**model, "gen_ai.token.type": "input"})
        tokens.record(200, {**model, "gen_ai.token.type": "output"})
        duration.record(1.25, model)
        tool.record(0.05, {"gen_ai.tool.name": "search"})
        jobs.add(3)
        assert provider.force_flush(10_000)
        tokens.record(500, {**model, "gen_ai.token.type": "input"})
        duration.record(0.5, {**model, "error.type": "RateLimitError"})
        jobs.add(2)
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
    assert agents.ingestor.flush(10.0)

    now = time.time()
    (row,) = agents.reader.stats(now - HOUR, now, "model")
    assert row.key == "gpt-4o"
    assert row.tokens == {"input": 1500, "output": 200}
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1500, output_tokens=200), "gpt-4o"
    )
    assert row.cost_status == "computed"
    assert Decimal(str(row.cost_usd)).quantize(Decimal("1e-9")) == expected.total_price.quantize(
        Decimal("1e-9")
    )
    assert (row.requests, row.request_errors, row.errors) == (2, 1, {"rate_limit": 1})
    assert abs(row.request_duration_ms_total - 1750.0) < 1e-6
    (tool_row,) = agents.reader.stats(now - HOUR, now, "tool")
    assert (tool_row.key, tool_row.tool_calls, tool_row.tool_failures) == ("search", 1, 0)

    stream = "py-agent/inst-7"
    series = [e for e in agents.reader.events(stream) if e.kind == "series"]
    assert sum(e.data["value"] for e in series) == 5
    assert all(e.data["metric"] == "app.jobs.completed" for e in series)
    stats = agents.stats()
    assert stats.get(OtlpCounter.REQUESTS_RECEIVED, ("metrics",)) >= 2
    assert [outcome for (_, outcome) in stats.by_labels(OtlpCounter.POINTS)] == ["accepted"]


def test_sdk_gzip_metrics_are_accepted(agents: AgentTelemetry) -> None:
    """The exporter's gzip compression is undone before decoding."""
    resource = Resource.create({"service.name": "gz-agent"})
    provider = meter_provider(agents.receiver.port, resource, compression=Compression.Gzip)
    try:
        provider.get_meter("m").create_counter("claude_code.session.count").add(4)
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
    assert agents.ingestor.flush(10.0)
    now = time.time()
    (row,) = agents.reader.stats(now - HOUR, now, "agent")
    assert (row.key, row.sessions) == ("gz-agent", 4)


def test_sdk_log_events_feed_the_crash_report_context(agents: AgentTelemetry) -> None:
    """Claude Code-shaped events sent by the SDK log exporter show up in agent_context by pid."""
    resource = Resource.create({"service.name": "claude-code", "process.pid": os.getpid()})
    provider = LoggerProvider(resource=resource)
    exporter = OTLPLogExporter(endpoint=f"http://127.0.0.1:{agents.receiver.port}/v1/logs")
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("com.anthropic.claude_code.events")
    request = {
        "event.name": "api_request",
        "session.id": "sess-42",
        "model": "claude-sonnet-4-5",
        "cost_usd": "0.0123",
        "duration_ms": "2100",
        "input_tokens": "15",
        "output_tokens": "300",
        "cache_read_tokens": "12000",
        "cache_creation_tokens": "0",
    }
    try:
        logger.emit(body="claude_code.api_request", attributes=request)
        logger.emit(
            body="claude_code.api_error",
            attributes={
                "event.name": "api_error",
                "session.id": "sess-42",
                "model": "claude-sonnet-4-5",
                "error": "Rate limited",
                "status_code": "429",
            },
        )
        for success in ("true", "false"):
            logger.emit(
                event_name="tool_result",
                attributes={
                    "session.id": "sess-42",
                    "tool_name": "Edit",
                    "success": success,
                    "duration_ms": "40",
                },
            )
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
    assert agents.ingestor.flush(10.0)

    context = agents.reader.agent_context(os.getpid(), None, None, now=time.time())
    assert context is not None
    assert context["agents"] == ["claude-code"]
    assert context["requests"] == 2
    assert context["errors"] == {"rate_limit": 1}
    assert context["tool_calls"] == {"ok": 1, "error": 1}
    first = context["last_requests"][0]
    assert (first["model"], first["cost_usd"], first["output_tokens"]) == (
        "claude-sonnet-4-5",
        0.0123,
        300,
    )
    assert [t["success"] for t in context["last_tool_calls"]] == [True, False]
    by_session = agents.reader.agent_context(None, "sess-42", None, now=time.time())
    assert by_session is not None and by_session["requests"] == 2
    assert agents.reader.agent_context(os.getpid() + 1, None, None, now=time.time()) is None
    assert agents.reader.agent_context(os.getpid(), None, None, now=time.time() + 3600) is None

"""GenAI semantic-convention names, current and coming, in spans the real OpenTelemetry SDK
exports over OTLP/HTTP to the receiver.

``gen_ai.provider.name`` (current) and ``gen_ai.system`` (its older name) say who served the
model: the provider is stored with the request and its tokens, and prices are looked up for
it. ``llama-3.3-70b-versatile`` shows why it matters: ``genai-prices`` knows it only under
Groq, so without a provider its cost is unknown.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from daemon.runtime.agent_telemetry import AgentTelemetry

HOUR = 3600.0
GROQ_MODEL = "llama-3.3-70b-versatile"
STREAM = "py-agent/inst-genai"


def send_spans(port: int, spans: list[dict[str, Any]]) -> None:
    """One ``chat`` span per attribute set, exported by the SDK's OTLP/HTTP span exporter."""
    resource = Resource.create({"service.name": "py-agent", "service.instance.id": "inst-genai"})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("py-agent")
    try:
        for attributes in spans:
            with tracer.start_as_current_span("chat", attributes={
                    "gen_ai.operation.name": "chat", **attributes}):
                pass
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()


def sessions(agents: AgentTelemetry) -> dict[str, Any]:
    assert agents.ingestor.flush(10.0)
    now = time.time()
    return {row.key: row for row in agents.reader.stats(now - HOUR, now, "session")}


def groq_price(input_tokens: int, output_tokens: int) -> Decimal:
    """What genai-prices says Groq charges for one such call (input and output apart, as
    each token type is priced on its own)."""
    total = Decimal(0)
    for usage in (genai_prices.Usage(input_tokens=input_tokens),
                  genai_prices.Usage(output_tokens=output_tokens)):
        total += genai_prices.calc_price(usage, GROQ_MODEL, provider_id="groq").total_price
    return total


def test_the_provider_is_read_under_its_current_and_its_older_name(
        agents: AgentTelemetry) -> None:
    """A span naming its provider by gen_ai.provider.name and one by gen_ai.system: both are
    priced as Groq prices the model and keep the provider; a span naming none stays unknown."""
    call = {"gen_ai.request.model": GROQ_MODEL, "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 200}
    send_spans(agents.receiver.port, [
        {**call, "gen_ai.conversation.id": "new-name", "gen_ai.provider.name": "groq"},
        {**call, "gen_ai.conversation.id": "old-name", "gen_ai.system": "groq"},
        {**call, "gen_ai.conversation.id": "no-name"},
    ])
    rows = sessions(agents)
    expected = groq_price(1000, 200).quantize(Decimal("1e-12"))
    for session in ("new-name", "old-name"):
        row = rows[f"py-agent/{session}"]
        assert row.tokens == {"input": 1000, "output": 200}, session
        assert row.cost_status == "computed", session
        assert Decimal(str(row.cost_usd)).quantize(Decimal("1e-12")) == expected, session
    assert rows["py-agent/no-name"].cost_status == "unknown"
    stored = [(e.kind, e.data.get("provider")) for e in agents.reader.events(STREAM)]
    assert stored.count(("request", "groq")) == 2 and stored.count(("tokens", "groq")) == 4
    assert stored.count(("request", None)) == 1


def test_a_provider_unknown_to_the_price_tables_falls_back_to_the_model(
        agents: AgentTelemetry) -> None:
    """gen_ai.provider.name = "gcp.gen_ai" (Gemini CLI's) is not a provider genai-prices
    lists: the model name alone prices the call, as without a provider."""
    send_spans(agents.receiver.port, [{
        "gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "gcp.gen_ai",
        "gen_ai.conversation.id": "s", "gen_ai.usage.input_tokens": 1000}])
    row = sessions(agents)["py-agent/s"]
    expected = genai_prices.calc_price(genai_prices.Usage(input_tokens=1000), "gpt-4o")
    assert row.cost_status == "computed"
    assert Decimal(str(row.cost_usd)).quantize(Decimal("1e-12")) == \
        expected.total_price.quantize(Decimal("1e-12"))


@pytest.mark.parametrize(("cache_read", "cache_write", "reasoning"), [
    ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens",
     "gen_ai.usage.reasoning.output_tokens"),
    ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_write.input_tokens",
     "gen_ai.usage.reasoning.output_tokens"),
])
def test_cache_and_reasoning_token_names_are_read(
        agents: AgentTelemetry, cache_read: str, cache_write: str, reasoning: str) -> None:
    """Cached input (read and written, under the current name and the coming cache_write
    rename) is counted inside input and reasoning inside output, as the conventions count
    them: stored apart, so the types add up to what was sent."""
    send_spans(agents.receiver.port, [{
        "gen_ai.request.model": "gpt-4o", "gen_ai.conversation.id": "t",
        "gen_ai.usage.input_tokens": 2000, cache_read: 500, cache_write: 300,
        "gen_ai.usage.output_tokens": 100, reasoning: 40}])
    row = sessions(agents)["py-agent/t"]
    assert row.tokens == {"input": 1200, "cache_read": 500, "cache_creation": 300,
                          "output": 60, "reasoning": 40}

"""Attacks with values: overflow, huge counts, non-finite totals; one bad point costs no other."""

from __future__ import annotations

import math
import time

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from daemon.agents.decoding.counters import OtlpCounter
from daemon.agents.store.totals import read_totals
from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.integration.agents.conftest import post
from tests.unit.agents.payloads import (
    claude_code_metrics,
    claude_resource,
    histogram_metric,
    metrics_request,
    sum_metric,
)

HOUR = 3600.0


def two_agents(bad: ExportMetricsServiceRequest) -> bytes:
    """The bad request's resources plus a good agent's tokens, in one request."""
    good = claude_code_metrics(claude_resource(**{"service.instance.id": "good"}), "s",
                               "claude-haiku-4-5", {"input": 5}, None, time.time_ns())
    bad.resource_metrics.extend(good.resource_metrics)
    return bytes(bad.SerializeToString())


def good_tokens(agents: AgentTelemetry) -> int:
    """Input tokens the good agent has in the store."""
    assert agents.ingestor.flush(10.0)
    now = time.time()
    rows = agents.reader.stats(now - HOUR, now + HOUR, "agent")
    return sum(r.tokens.get("input", 0) for r in rows)


def test_pid_1e300_costs_no_point(agents: AgentTelemetry) -> None:
    """A resource with process.pid = 1e300 is stored without a pid; no point is lost."""
    bad = claude_code_metrics(claude_resource(**{"process.pid": 1e300}), "s", "m",
                              {"input": 3}, None, time.time_ns())
    assert post(agents.receiver.port, "/v1/metrics", two_agents(bad)).status == 200
    assert good_tokens(agents) == 8
    assert agents.stats().get(OtlpCounter.POINTS_DROPPED, ("write_error",)) == 0


def test_count_of_2_pow_64_is_refused_per_point(agents: AgentTelemetry) -> None:
    """A histogram count of 2^64-1 is refused as overflow in a partial success; others stay."""
    now = time.time_ns()
    histogram = histogram_metric("gen_ai.client.operation.duration",
                                 [({"gen_ai.request.model": "m"}, 1.0, 2**64 - 1, now, now)])
    bad = metrics_request({"service.name": "bot"}, [histogram])
    reply = post(agents.receiver.port, "/v1/metrics", two_agents(bad))
    assert reply.status == 200
    answer = ExportMetricsServiceResponse.FromString(reply.body)
    assert answer.partial_success.rejected_data_points == 1
    assert "overflow=1" in answer.partial_success.error_message
    assert good_tokens(agents) == 5
    assert agents.stats().get(OtlpCounter.POINTS_DROPPED, ("write_error",)) == 0


def test_cost_1e308_twice_never_makes_totals_infinite(agents: AgentTelemetry) -> None:
    """A cost of 1e308 sent twice is refused; every stored total stays finite."""
    for _ in range(2):
        metric = sum_metric("claude_code.cost.usage", [({"model": "m"}, 1e308, 0, 0)])
        reply = post(agents.receiver.port, "/v1/metrics",
                     two_agents(metrics_request({"service.name": "bot"}, [metric])))
        assert reply.status == 200
        answer = ExportMetricsServiceResponse.FromString(reply.body)
        assert answer.partial_success.rejected_data_points == 1
    assert good_tokens(agents) == 10
    totals = read_totals(agents.store.path)
    assert totals and all(math.isfinite(t.value) for t in totals)


def test_store_totals_are_clamped_even_when_values_reach_it(agents: AgentTelemetry) -> None:
    """Large values added many times saturate instead of becoming +Inf (store-level bound)."""
    from daemon.agents.decoding.records import Agent, CostUsage

    bot = Agent("bot", None, None, None)
    for _ in range(3):
        agents.store.append([CostUsage(time.time(), bot, None, "m", 1e308)])
    assert all(math.isfinite(t.value) for t in read_totals(agents.store.path))

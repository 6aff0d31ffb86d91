"""Attacks on the receiver's memory through what it parses: attribute bombs, protobuf or JSON."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest

from daemon.agents.decoding.counters import OtlpCounter
from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.integration.agents.conftest import post
from tests.integration.agents.test_bad_input import good_metrics
from tests.support.floods import BOMB_ATTRIBUTES, attribute_bomb_request


@contextmanager
def peak_rss() -> Iterator[list[int]]:
    """This process's RSS (the receiver runs in it) sampled every 5 ms: [before, peak]."""
    process = psutil.Process()
    seen = [process.memory_info().rss, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            seen[1] = max(seen[1], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        done.set()
        sampler.join()
        seen[1] = max(seen[1], process.memory_info().rss)


def json_bomb() -> bytes:
    """The same attack in OTLP JSON: 1.3 million empty attributes in 4 MB."""
    attributes = b",".join([b"{}"] * (BOMB_ATTRIBUTES * 2 // 3))
    return (b'{"resourceMetrics": [{"resource": {"attributes": [' + attributes + b"]}}]}")


@pytest.mark.parametrize(("body", "content_type"), [
    (attribute_bomb_request(), "application/x-protobuf"),
    (json_bomb(), "application/json"),
], ids=["protobuf", "json"])
def test_attribute_bombs_are_refused_before_parsing(agents: AgentTelemetry, body: bytes,
                                                    content_type: str) -> None:
    """4 MB requests of empty attributes (2 bytes each in protobuf): 413 before the parser
    allocates them (it held 113 MB per protobuf request, more for JSON), so RSS barely moves
    and a real export still gets in."""
    assert len(body) < 4 << 20
    with peak_rss() as rss:
        replies = [post(agents.receiver.port, "/v1/metrics", body, content_type)
                   for _ in range(3)]
    assert [r.status for r in replies] == [413] * 3
    assert b"too_many_messages" in replies[0].body
    assert agents.stats().get(OtlpCounter.REQUESTS_REFUSED, ("413", "too_many_messages")) == 3
    assert rss[1] - rss[0] < 40 << 20, f"RSS grew {(rss[1] - rss[0]) >> 20} MiB"
    assert post(agents.receiver.port, "/v1/metrics", good_metrics()).status == 200


def test_a_real_json_export_of_many_values_still_parses(agents: AgentTelemetry) -> None:
    """The JSON bound is an upper bound on values: 1.5 MB of 15,000 points (about 135,000
    braces, brackets and commas) is counted and passes."""
    points = [{"asInt": "1", "timeUnixNano": "1", "attributes": [
        {"key": "k", "value": {"stringValue": f"v{i % 1000}"}}]} for i in range(15_000)]
    body = json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "m", "gauge": {"dataPoints": points}}]}]}]}).encode()
    assert len(body) // 2 > agents.settings.max_messages_per_request  # so it is counted
    reply = post(agents.receiver.port, "/v1/metrics", body, "application/json")
    assert reply.status == 200
    assert agents.stats().get(OtlpCounter.POINTS, ("metrics", "accepted")) == 15_000

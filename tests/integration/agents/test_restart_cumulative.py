"""A cumulative exporter (the Python SDK's default) is not counted twice across a restart."""

from __future__ import annotations

import time
from pathlib import Path

from daemon.runtime.agent_telemetry import AgentTelemetry
from daemon.runtime.paths import StatePaths
from tests.integration.agents.conftest import BASE_SETTINGS, post
from tests.unit.agents.payloads import CUMULATIVE, claude_resource, metrics_request, sum_metric


def start(db: Path) -> AgentTelemetry:
    telemetry = AgentTelemetry(BASE_SETTINGS, db)
    telemetry.start()
    return telemetry


def cumulative_tokens(total: int, start_ns: int) -> bytes:
    """A protobuf export of a cumulative token counter at ``total``."""
    metric = sum_metric("claude_code.token.usage",
                        [({"type": "input", "model": "claude-sonnet-4-5"}, total, start_ns,
                          time.time_ns())], temporality=CUMULATIVE)
    resource = claude_resource(**{"service.instance.id": "i-1"})
    return metrics_request(resource, [metric]).SerializeToString()


def input_tokens(telemetry: AgentTelemetry) -> dict[str, int]:
    assert telemetry.ingestor.flush(10.0)
    now = time.time()
    rows = telemetry.reader.stats(now - 3600, now, "model")
    return rows[0].tokens if rows else {}


def test_cumulative_counter_continues_after_a_clean_restart(tmp_path: Path) -> None:
    """1000 tokens, clean restart, cumulative 1500: the store holds 1500, not 2500."""
    db = StatePaths(tmp_path).events_db
    start_ns = time.time_ns() - 10**9
    first = start(db)
    assert post(first.receiver.port, "/v1/metrics", cumulative_tokens(1000, start_ns)).status == 200
    first.stop()
    second = start(db)
    try:
        reply = post(second.receiver.port, "/v1/metrics", cumulative_tokens(1500, start_ns))
        assert reply.status == 200
        assert input_tokens(second) == {"input": 1500}
    finally:
        second.stop()


def test_series_state_is_used_once(tmp_path: Path) -> None:
    """After a start has read the saved state, a crash cannot make a later start reuse it."""
    db = StatePaths(tmp_path).events_db
    start_ns = time.time_ns() - 10**9
    first = start(db)
    post(first.receiver.port, "/v1/metrics", cumulative_tokens(1000, start_ns))
    first.stop()
    saved = StatePaths(tmp_path).events_series
    assert saved.exists()
    second = start(db)
    assert not saved.exists()  # read and removed: a kill -9 now leaves no stale state
    second.stop()
    assert saved.exists()

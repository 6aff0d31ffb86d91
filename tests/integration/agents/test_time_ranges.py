"""Figures over a time range are exact to the event within the raw events' retention
(`stats --since 5m` is five minutes, not the whole hour), and a maximum stays a maximum over
several hours.

Replays the Claude Code 2.1.332 capture `claude-print-protobuf` (three api_request events at
03:57:24.886, 03:57:25.028 and 03:57:25.200 UTC on 2026-12-07, each 1300 input + 600 cache
read + 150 cache creation tokens: a context of 2050).
"""

from __future__ import annotations

import calendar
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.integration.agents.conftest import post
from tests.support.captures import replay, requests

CAPTURE = "claude-print-protobuf"
SECOND = calendar.timegm((2026, 12, 7, 3, 57, 25, 0, 0, 0))  # between requests 1 and 2
KEEP = {"retention_days": 3650.0}  # the capture's events must outlive its date


def test_since_inside_an_hour_counts_only_what_happened_since(make_agents: Any) -> None:
    """From 03:57:25 on: two requests, 2600 input tokens; before it, one (not three each)."""
    agents: AgentTelemetry = make_agents(**KEEP)
    assert all(s == 200 for s in replay(agents.receiver.port, CAPTURE))
    assert agents.ingestor.flush(30.0)
    (after,) = agents.reader.stats(SECOND, SECOND + 300, "agent")
    assert (after.requests, after.tokens["input"]) == (2, 2600)
    (before,) = agents.reader.stats(SECOND - 300, SECOND, "agent")
    assert (before.requests, before.tokens["input"]) == (1, 1300)
    (whole,) = agents.reader.stats(SECOND - 3600, SECOND + 3600, "agent")
    assert (whole.requests, whole.tokens["input"]) == (3, 3900)


def test_context_max_is_the_largest_request_over_several_hours(make_agents: Any) -> None:
    """The same run sent again one hour later: the largest context is 2050, not 4100."""
    agents: AgentTelemetry = make_agents(**KEEP)
    logs = next(r for r in requests(CAPTURE) if r.path == "/v1/logs")
    later = ExportLogsServiceRequest()
    later.ParseFromString(logs.body)
    for resource in later.resource_logs:
        for scope in resource.scope_logs:
            for record in scope.log_records:
                record.time_unix_nano += 3600 * 10**9
                record.observed_time_unix_nano += 3600 * 10**9
    for body in (logs.body, later.SerializeToString()):
        assert post(agents.receiver.port, "/v1/logs", body).status == 200
    assert agents.ingestor.flush(30.0)
    (row,) = agents.reader.stats(SECOND - 3600, SECOND + 7200, "agent")
    assert row.requests == 6
    assert row.context_max_tokens == 2050

"""The agent link: a crash report finds telemetry sent by a child of the watched process."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import psutil
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from daemon.config.parse import parse_config_text
from daemon.runtime.agent_link import AgentLink
from daemon.runtime.paths import StatePaths
from daemon.watch.monitor import TrackedProcess
from daemon.watch.proc.sampler import TreeSample


def tracked(pid: int, members: tuple[int, ...]) -> TrackedProcess:
    sample = TreeSample("agent", pid, (pid, 1), "uv", 0.0, 1, 0.0, 1, 0.0, 1 + len(members),
                        member_pids=members)
    return TrackedProcess("agent", (pid, 1), 0.0, sample, deque())


def test_context_found_through_a_child_pid(tmp_path: Path) -> None:
    """Telemetry whose process.pid is a child of the watched root is still correlated."""
    config = parse_config_text('[otlp]\nlisten = "127.0.0.1:0"\ntrust = "any"\n', "<t>", {},
                               psutil.virtual_memory().total)
    link = AgentLink(config, StatePaths(tmp_path).events_db, StatePaths(tmp_path).budgets)
    link.start()
    try:
        port = link.telemetry.receiver.port
        resource = Resource.create({"service.name": "aider", "process.pid": 5001})
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}/v1/metrics"),
            export_interval_millis=3_600_000)
        meters = MeterProvider(resource=resource, metric_readers=[reader])
        counter = meters.get_meter("t").create_counter("gen_ai.client.token.usage")
        counter.add(321, {"gen_ai.token.type": "input", "gen_ai.request.model": "gpt-4o"})
        assert meters.force_flush(10_000)
        meters.shutdown()
        assert link.telemetry.ingestor.flush(10.0)
        now = time.time()
        assert link.context_for(tracked(5000, ()), now) is None
        context = link.context_for(tracked(5000, (4999, 5001)), now)
        status = link.status()
    finally:
        link.stop()
    assert context is not None
    assert context["matched_pid"] == 5001
    assert context["tokens"]["input"] == 321
    assert status.up is True and (status.points_accepted or 0) >= 1


def test_a_wall_clock_step_back_does_not_pause_the_budget_check(tmp_path: Path) -> None:
    """The wall clock steps back an hour: budgets are still checked once a minute."""
    config = parse_config_text('[otlp]\nlisten = "127.0.0.1:0"\n[[budget]]\nagent = "bot"\n'
                               'daily_usd = 5.0\n', "<t>", {}, psutil.virtual_memory().total)
    link = AgentLink(config, StatePaths(tmp_path).events_db, StatePaths(tmp_path).budgets)
    try:
        wall = time.time()
        link.check_budgets(None, wall, 100.0)
        assert [use.spent_usd for use in link.budget_use()] == [0.0]
        link._spent_usd.clear()  # forget the figure, to see whether the next check runs
        link.check_budgets(None, wall - 3600.0 + 61.0, 161.0)
        assert [use.spent_usd for use in link.budget_use()] == [0.0]
    finally:
        link.stop()

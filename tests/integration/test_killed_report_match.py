"""The `killed` report of `wrap` says how its agent context was matched, as crash reports do
(the `agent.match` tag)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from daemon.config.parse import parse_config_text
from daemon.runtime.agent_telemetry import AgentTelemetry
from daemon.runtime.paths import StatePaths
from daemon.wrap.child import Outcome
from daemon.wrap.killed_report import write_killed_report
from tests.e2e.test_watchdog import pending_envelopes
from tests.support.agents import loopback_otlp

AGENT_PID = 4_000_123  # the pid the telemetry names (the killed child's)


def test_killed_report_has_the_agent_match_tag(tmp_path: Path) -> None:
    """Telemetry carrying the killed child's pid: the report's agent context is matched by
    pid and the event says so in its agent.match tag."""
    state = tmp_path / "state"
    config = parse_config_text(f'[daemon]\nstate_dir = "{state}"\n', "<t>", {},
                               psutil.virtual_memory().total)
    StatePaths(state).ensure()
    telemetry = AgentTelemetry(loopback_otlp(), StatePaths(state).events_db)
    telemetry.start()
    try:
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"http://127.0.0.1:{telemetry.receiver.port}/v1/metrics"),
            export_interval_millis=3_600_000)
        meters = MeterProvider(resource=Resource.create(
            {"service.name": "aider", "process.pid": AGENT_PID}), metric_readers=[reader])
        counter = meters.get_meter("t").create_counter("gen_ai.client.token.usage")
        counter.add(321, {"gen_ai.token.type": "input", "gen_ai.request.model": "gpt-4o"})
        assert meters.force_flush(10_000)
        meters.shutdown()
        assert telemetry.ingestor.flush(10.0)
    finally:
        telemetry.stop()
    now = time.time()
    outcome = Outcome(pid=AGENT_PID, wait_status=signal.SIGKILL, started_at=now - 30,
                      ended_at=now)
    assert write_killed_report(config, "wrapped", "w1", ["aider"], outcome) is not None
    [envelope] = pending_envelopes(state)
    event = envelope.get_event()
    assert event is not None
    assert event["tags"]["kind"] == "killed"
    assert event["tags"]["agent.match"] == "pid"

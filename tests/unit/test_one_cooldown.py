"""One cooldown for a report and its watch actions (issue 19, "One report path"): on_critical
runs exactly when a critical report is written, with the report's id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from crash_reports.event.system_facts import SystemFacts
from daemon.runtime.paths import StatePaths
from daemon.runtime.running import open_running
from daemon.runtime.tick import Ticker
from daemon.watch.proc.proctable import default_process_table
from tests.support.agents import Agent
from tests.support.configs import offline_config
from tests.support.waiting import wait_for


@pytest.fixture
def agent() -> Iterator[Agent]:
    """A real child process the tick finds by pid."""
    with Agent() as child:
        yield child


def test_on_critical_runs_iff_a_critical_report_is_written(tmp_path: Path,
                                                           agent: Agent) -> None:
    """RSS critical at once, then, well within the cooldown, CPU critical as the agent burns:
    two critical reports are written (one per kind), so on_critical runs twice, each time
    with its report's id; none is suppressed. (Before, the action gate kept its own cooldown
    per trigger: the CPU report was written and its on_critical suppressed.)"""
    config = offline_config(tmp_path / "state", f"""name = "agent"
pid = {agent.pid}
rss_warning = "1KiB"
rss_critical = "2KiB"
cpu_warning = 40
cpu_critical = 50
sustained = 1
cpu_sustained = 1
cooldown = "1h"
on_critical = [{{exec = ["true"]}}]""", daemon="interval = 0.2")
    paths = StatePaths(config.daemon.state_dir)
    paths.ensure()
    running = open_running(config, paths, SystemFacts(), time.time(), lambda: None)
    ticker = Ticker(config, default_process_table(), SystemFacts(), time.monotonic)
    try:
        with capture_logs() as logs:
            ticker.tick(running, time.time())
            agent.command("burn 8")

            def cpu_reported() -> bool:
                ticker.tick(running, time.time())
                return any(e["event"] == "report.written" and e["kind"] == "cpu_critical"
                           for e in logs)

            wait_for(cpu_reported, timeout=60, interval=0.3, message="CPU critical report")
            for _ in range(3):  # more ticks at critical within the cooldown: nothing new
                time.sleep(0.25)
                ticker.tick(running, time.time())
            wait_for(lambda: ticker.runner.finished >= 2, timeout=30,
                     message="on_critical actions ran")
    finally:
        ticker.close(running)
        running.close(time.time())
    reports = [e["id"] for e in logs if e["event"] == "report.written"
               and e["kind"] in ("rss_critical", "cpu_critical")]
    ran = [e["report_id"] for e in logs
           if e["event"] == "action.started" and e["trigger"] == "critical"]
    suppressed = [e for e in logs if e["event"] == "action.suppressed"]
    assert len(reports) == 2, reports
    assert suppressed == []
    assert sorted(ran) == sorted(reports)

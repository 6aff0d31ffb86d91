"""One tick, run directly on a real process: what it records, logs and survives."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from crash_reports.event.kinds import Trigger
from crash_reports.event.system_facts import SystemFacts
from daemon.config.schema import Config
from daemon.runtime.paths import StatePaths
from daemon.runtime.running import Running, open_running
from daemon.runtime.tick import Ticker
from daemon.watch.proc.proctable import default_process_table
from tests.support.agents import Agent
from tests.support.configs import offline_config
from tests.support.waiting import wait_for


def config_for(pid: int, state_dir: Path, warning: str = "50%", critical: str = "90%") -> Config:
    """A config watching one pid, with both listeners off."""
    return offline_config(state_dir, f'name = "agent"\npid = {pid}\nrss_warning = "{warning}"\n'
                          f'rss_critical = "{critical}"\nsustained = 1', daemon="interval = 1.0")


@pytest.fixture
def agent() -> Iterator[Agent]:
    """A real child process the tick can find by pid."""
    with Agent() as child:
        yield child


def started(config: Config) -> Running:
    """The parts startup opens, without the scheduler (the test drives the ticks)."""
    paths = StatePaths(config.daemon.state_dir)
    paths.ensure()
    return open_running(config, paths, SystemFacts(), time.time(), lambda: None)


def test_tick_tracks_the_watched_process_and_counts(tmp_path: Path, agent: Agent) -> None:
    """A tick finds the pid, logs process.seen once and records its own figures."""
    config = config_for(agent.pid, tmp_path / "state")
    running = started(config)
    ticker = Ticker(config, default_process_table(), SystemFacts(), time.monotonic)
    try:
        with capture_logs() as logs:
            ticker.tick(running, time.time())
            ticker.tick(running, time.time())
    finally:
        running.close(time.time())
    assert ticker.count == 2
    assert ticker.last is not None and ticker.last.processes_scanned >= 1
    [tracked] = ticker.monitor.tracked.values()
    assert tracked.pid == agent.pid and tracked.last.rss_bytes > 0
    seen = [e for e in logs if e["event"] == "process.seen"]
    assert len(seen) == 1 and seen[0]["pid"] == agent.pid and seen[0]["watch"] == "agent"


def test_crossing_critical_writes_one_report_and_remembers_the_process(
        tmp_path: Path, agent: Agent) -> None:
    """Over critical at once: a critical line, the details kept, one report spooled (once
    its leak evidence, gathered off the tick, is in)."""
    config = config_for(agent.pid, tmp_path / "state", warning="1MiB", critical="2MiB")
    running = started(config)
    ticker = Ticker(config, default_process_table(), SystemFacts(), time.monotonic)
    try:
        with capture_logs() as logs:
            ticker.tick(running, time.time())
            wait_for(lambda: ticker.tick(running, time.time()) or ticker.reports_written,
                     message="the report, once its evidence is in")
        pending = running.spool.pending()
        remembered = dict(running.reports.details)
    finally:
        running.close(time.time())
    events = [e["event"] for e in logs]
    assert "threshold.critical" in events  # straight from ok: one transition
    assert [entry.kind for entry in pending] == ["rss_critical"]
    assert ticker.reports_written == 1
    assert list(remembered) == [("agent", next(iter(ticker.monitor.tracked.values())).key)]


class BrokenWriter:
    """Fault injection: a report writer whose every write fails."""

    details: dict[object, object] = {}

    def write(self, *args: object) -> str:
        raise OSError("injected: disk gone")

    def remember(self, *args: object) -> None:
        pass

    def forget(self, *args: object) -> None:
        pass


def test_a_failing_report_never_stops_the_tick(tmp_path: Path, agent: Agent) -> None:
    """A report that cannot be built is logged as report.error and the tick completes."""
    config = config_for(agent.pid, tmp_path / "state", warning="1MiB", critical="2MiB")
    running = started(config)
    running.reports = BrokenWriter()  # type: ignore[assignment]
    ticker = Ticker(config, default_process_table(), SystemFacts(), time.monotonic)
    try:
        with capture_logs() as logs:
            ticker.tick(running, time.time())
            ticker.tick(running, time.time())
    finally:
        running.close(time.time())
    errors = [e for e in logs if e["event"] == "report.error"]
    assert len(errors) == 1 and "disk gone" in errors[0]["error"]
    assert ticker.count == 2 and ticker.reports_written == 0


def test_announcement_left_by_a_killed_wrap_is_removed(tmp_path: Path, agent: Agent) -> None:
    """A wrapped/ file whose child and wrap are gone is removed; a live child's is kept."""
    import subprocess
    import sys

    from daemon.watch.proc.announcements import WrappedChild, announce

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    config = config_for(dead.pid, tmp_path / "state")  # no watch matches the live child
    folder = StatePaths(config.daemon.state_dir).wrapped
    stale = announce(folder, WrappedChild("stale", dead.pid, "wrapped", 0.0, dead.pid))
    live = announce(folder, WrappedChild("live", agent.pid, "wrapped", 0.0, dead.pid))
    running = started(config)
    ticker = Ticker(config, default_process_table(), SystemFacts(), time.monotonic)
    try:
        with capture_logs() as logs:
            ticker.tick(running, time.time())
    finally:
        running.close(time.time())
    assert not stale.exists() and live.exists()
    assert [e["wrap_id"] for e in logs if e["event"] == "wrapped.stale_removed"] == ["stale"]
    assert ("wrapped", agent.pid) in {(w, t.pid) for (w, _k), t in ticker.monitor.tracked.items()}


def test_service_tick_publishes_the_typed_snapshot(tmp_path: Path, agent: Agent) -> None:
    """Service.tick refuses to run before startup; after it, each tick rewrites status.json."""
    from daemon.runtime.service import Service
    from daemon.status.status_file import read_snapshot

    config = config_for(agent.pid, tmp_path / "state")
    service = Service(config)
    with pytest.raises(RuntimeError, match="before startup"):
        service.tick()
    service.startup()
    try:
        assert service.running is not None and service.running.scheduler is not None
        service.running.scheduler.pause()  # the test drives the ticks from here on
        before = service.tick_count
        service.tick()
        snapshot = read_snapshot(service.paths.status)
        count = service.tick_count
    finally:
        service.shutdown()
    # A scheduled tick already under way when the pause came may also have finished.
    assert snapshot.last_tick is not None and snapshot.last_tick.count == count > before
    [watch] = snapshot.watches
    assert [p.pid for p in watch.processes] == [agent.pid]
    assert read_snapshot(service.paths.status).stopped


def test_wrapped_process_a_watch_matches_is_tracked_once(tmp_path: Path, agent: Agent) -> None:
    """A process `wrap` announced to `wrapped` that a configured watch matches belongs to that
    watch only: one tracked entry, one process.seen."""
    from daemon.watch.proc.announcements import WrappedChild, announce

    config = config_for(agent.pid, tmp_path / "state")
    announce(StatePaths(config.daemon.state_dir).wrapped,
             WrappedChild("w1", agent.pid, "wrapped", 0.0, agent.pid))
    running = started(config)
    ticker = Ticker(config, default_process_table(), SystemFacts(), time.monotonic)
    try:
        with capture_logs() as logs:
            ticker.tick(running, time.time())
            ticker.tick(running, time.time())
    finally:
        running.close(time.time())
    tracked = [(w, t.pid) for (w, _k), t in ticker.monitor.tracked.items() if t.pid == agent.pid]
    assert tracked == [("agent", agent.pid)]
    seen = [e["watch"] for e in logs if e["event"] == "process.seen" and e["pid"] == agent.pid]
    assert seen == ["agent"]


def test_watch_action_cooldowns_run_on_the_monotonic_clock(tmp_path: Path, agent: Agent) -> None:
    """The monitor's one cooldown (reports and watch actions) runs on the tick's monotonic
    time, so an hour's step back of the wall clock cannot stretch an on_warning cooldown."""
    config = offline_config(tmp_path / "state", f'name = "agent"\npid = {agent.pid}\n'
                            'rss_warning = "1MiB"\nsustained = 1\n'
                            'on_warning = [{exec = ["true"]}]')
    running = started(config)
    ticker = Ticker(config, default_process_table(), SystemFacts(), lambda: 500.0)
    try:
        ticker.tick(running, time.time() - 3600.0)
    finally:
        ticker.close(running)
        running.close(time.time())
    [tracked] = ticker.monitor.tracked.values()
    assert tracked.last_due_at == {Trigger.WARNING: 500.0}

"""Stats are not crash reports: without a DSN no closed hour waits in the spool, and with one
a watch that saw nothing in an hour sends nothing for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from crash_reports.event.system_facts import SystemFacts
from daemon.config.parse import parse_config_text
from daemon.config.schema import Config
from daemon.runtime.paths import StatePaths
from daemon.runtime.running import Running, open_running
from daemon.runtime.tick import Ticker
from daemon.stats.figures import Counter
from daemon.watch.proc.proctable import default_process_table
from tests.support.agents import Agent

HOUR = 3600.0


def config_for(pid: int, state_dir: Path, dsn: str | None) -> Config:
    sentry = f'[sentry]\ndsn = "{dsn}"\n' if dsn else ""
    text = (f'[daemon]\nstate_dir = "{state_dir}"\ninterval = 1.0\n{sentry}'
            '[otlp]\nenabled = false\n[metrics]\nenabled = false\n'
            f'[[watch]]\nname = "agent"\npid = {pid}\n'
            '[[watch]]\nname = "quiet"\nprocess_name = "no-such-process-here"\n')
    return parse_config_text(text, "<test>", {}, psutil.virtual_memory().total)


@pytest.fixture
def agent() -> Iterator[Agent]:
    """A real child process the watch finds by pid."""
    with Agent() as child:
        yield child


def two_runs(config: Config) -> Running:
    """A run that ticks once two hours ago, then a restarted run whose first tick finds that
    hour closed (the second run is returned, open)."""
    paths = StatePaths(config.daemon.state_dir)
    paths.ensure()
    start = (time.time() // HOUR) * HOUR - 2 * HOUR + 60.0
    earlier = open_running(config, paths, SystemFacts(), start, lambda: None)
    Ticker(config, default_process_table(), SystemFacts(), time.monotonic).tick(earlier, start)
    # The quiet watch has a row for the hour with nothing in it.
    earlier.stats.store.incr("quiet", Counter.PROCESSES_SEEN, start, n=0)
    earlier.close(start + 1.0)
    now = time.time()
    running = open_running(config, paths, SystemFacts(), now, lambda: None)
    Ticker(config, default_process_table(), SystemFacts(), time.monotonic).tick(running, now)
    return running


def test_without_a_dsn_no_stats_are_pending(tmp_path: Path, agent: Agent) -> None:
    """No DSN: after an hour closes the spool holds nothing (stats stay in stats.db)."""
    running = two_runs(config_for(agent.pid, tmp_path / "state", None))
    try:
        assert running.spool.pending_count() == 0
        assert running.spool.list_all() == []
    finally:
        running.close(time.time())


def test_with_a_dsn_a_watch_that_saw_nothing_sends_nothing(tmp_path: Path,
                                                           agent: Agent) -> None:
    """With a DSN: the closed hour ships for the agent watch and the daemon, not for the
    quiet watch."""
    running = two_runs(
        config_for(agent.pid, tmp_path / "state", "http://key@127.0.0.1:9/1"))
    try:
        titles = sorted(entry.title for entry in running.spool.list_all())
    finally:
        running.close(time.time())
    assert len(titles) == 2, titles
    assert not any("quiet" in title for title in titles), titles
    assert any("agent" in title for title in titles), titles

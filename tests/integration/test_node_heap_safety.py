"""Heap-snapshot evidence never harms: no SIGUSR2 to a Node member without our signal option,
and a member that never writes its snapshot never holds up a tick."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from crash_reports.event.system_facts import SystemFacts
from daemon.config.files.load import load_config
from daemon.runtime.tick import Ticker
from daemon.watch.proc.proctable import default_process_table
from tests.e2e.test_watchdog import pending_envelopes
from tests.support.daemon_proc import REPO, clean_env
from tests.support.waiting import wait_for
from tests.unit.test_tick import started

# 50 buffers of 4 MiB, filled (so resident) at once: RSS near 250 MiB.
FILL = "const hoard = []; for (let i = 0; i < 50; i++) hoard.push(Buffer.alloc(4 << 20, 1));"
# ...then idle on the event loop (SIGUSR2 without --heapsnapshot-signal: killed) ...
IDLE = FILL + "setInterval(() => {}, 1000);"
# ...or blocked for good off the event loop (the snapshot it is asked for never comes).
BLOCKED = FILL + "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);"
CONFIG = """
[daemon]
state_dir = "{state}"
[otlp]
enabled = false
[metrics]
enabled = false
[[watch]]
name = "heapy"
process_name = "no-such-process-x"
rss_warning = "120MiB"
rss_critical = "160MiB"
sustained = 1
evidence_node_heap = true
"""


@dataclass
class Wrapped:
    """A Node program started by ``telemetryd wrap`` and ticked until its critical report."""

    state: Path
    wrap: subprocess.Popen[bytes]
    node_pid: int = 0
    tick_seconds: list[float] = field(default_factory=list)

    def leak(self) -> dict[str, Any]:
        """The ``leak`` section of the rss_critical report."""
        [event] = [e for e in (env.get_event() for env in pending_envelopes(self.state))
                   if e is not None and e["tags"]["kind"] == "rss_critical"]
        return event["contexts"]["crossing"]["leak"]  # type: ignore[no-any-return]


@pytest.fixture
def node() -> str:
    """The node binary (.ci/run installs it)."""
    found = shutil.which("node")
    assert found, "node is not installed: .ci/run installs it (apt-get install nodejs)"
    return found


@contextlib.contextmanager
def wrapped_until_reported(tmp_path: Path, *command: str) -> Iterator[Wrapped]:
    """Wrap ``command`` under a heap-evidence watch; tick (timing each tick) until reported."""
    state = tmp_path / "state"
    config_path = tmp_path / "telemetryd.toml"
    config_path.write_text(CONFIG.format(state=state))
    config = load_config(config_path, {}, psutil.virtual_memory().total)
    running = started(config)
    ticker = Ticker(config, default_process_table(), SystemFacts(), time.monotonic)
    wrap = subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config_path),
                             "wrap", "--watch", "heapy", "--", *command],
                            env=clean_env(), cwd=REPO, stdin=subprocess.DEVNULL)
    result = Wrapped(state, wrap)
    try:
        def reported() -> bool:
            began = time.monotonic()
            ticker.tick(running, time.time())
            result.tick_seconds.append(time.monotonic() - began)
            if not result.node_pid:
                result.node_pid = next((c.pid for c in psutil.Process(wrap.pid).children()
                                        if c.name() == "node"), 0)
            return ticker.reports_written > 0
        wait_for(reported, timeout=120, message="critical report on the wrapped node")
        yield result
    finally:
        running.close(time.time())
        ticker.close()
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(wrap.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        wrap.wait(timeout=60)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_node_without_our_signal_option_is_never_signalled(tmp_path: Path, node: str) -> None:
    """An MCP-server-like Node member started without our NODE_OPTIONS survives the report,
    which says why no snapshot was taken."""
    with wrapped_until_reported(tmp_path, "env", "-u", "NODE_OPTIONS", node, "-e", IDLE) as run:
        assert run.node_pid and alive(run.node_pid), "the Node member was killed (SIGUSR2)"
        leak = run.leak()
    [why] = [n["why"] for n in leak["not_collected"] if n["what"] == "node_heap"]
    assert "--heapsnapshot-signal" in why, why
    assert not any("heap_snapshot" in member for member in leak["members"])


def test_node_that_never_writes_its_snapshot_never_stalls_a_tick(
        tmp_path: Path, node: str) -> None:
    """A Node member blocked off its event loop gets the signal but writes nothing: every
    tick stays short while the report waits for the snapshot's deadline."""
    with wrapped_until_reported(tmp_path, node, "-e", BLOCKED) as run:
        assert run.node_pid and alive(run.node_pid)
        leak = run.leak()
    longest = max(run.tick_seconds)
    assert longest < 2.0, f"a tick took {longest:.1f} s while evidence was gathered"
    [why] = [n["why"] for n in leak["not_collected"] if n["what"] == "node_heap"]
    assert "no complete snapshot" in why, why
    assert len(run.tick_seconds) > 10  # sampling went on while the snapshot was awaited

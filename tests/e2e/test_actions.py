"""End to end: actions per watch run off the tick with the documented environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_watchdog import memory_watch, pending_envelopes, write_config
from tests.support.agents import Agent
from tests.support.daemon_proc import DaemonProcess
from tests.support.waiting import wait_for

MiB = 1024 * 1024
DUMP_ENV = ("import json, os, sys; json.dump({k: v for k, v in os.environ.items() "
            "if k.startswith('TELEMETRYD_')}, open(sys.argv[1], 'w'))")


def toml(value: object) -> str:
    """A TOML value from JSON-compatible data (strings and arrays of strings)."""
    return json.dumps(value)


@pytest.fixture
def agent() -> Iterator[Agent]:
    """A real process that allocates when told to."""
    with Agent() as child:
        yield child


def tick_count(state: Path) -> int:
    """Ticks the daemon has published in status.json."""
    try:
        data = json.loads((state / "status.json").read_text())
    except (OSError, ValueError):
        return 0
    return int((data.get("last_tick") or {}).get("count") or 0)


def test_exec_action_runs_with_the_documented_environment(tmp_path: Path, agent: Agent) -> None:
    """on_critical exec: TELEMETRYD_* name the watch, pid, level, RSS and the report."""
    out = tmp_path / "env.json"
    watch = memory_watch(agent, 20, 40).replace("sustained = 2", "sustained = 1")
    watch += f"\non_critical = [{{ exec = {toml([sys.executable, '-c', DUMP_ENV, str(out)])},"
    watch += ' timeout = "30s" }]'
    config = write_config(tmp_path, watch)
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        daemon.wait_event("process.seen", pid=agent.pid)
        agent.command("grow 60")
        finished = daemon.wait_event("action.finished", watch="leaky", timeout=60)
    finally:
        assert daemon.stop() == 0
    assert finished["ok"] is True and finished["exit_status"] == 0
    env = json.loads(out.read_text())
    assert env["TELEMETRYD_WATCH"] == "leaky"
    assert env["TELEMETRYD_PID"] == str(agent.pid)
    assert env["TELEMETRYD_LEVEL"] == "critical"
    assert int(env["TELEMETRYD_RSS_BYTES"]) > 40 * MiB
    [envelope] = pending_envelopes(tmp_path / "state")
    event = envelope.get_event()
    assert event is not None and env["TELEMETRYD_REPORT_ID"] == event["event_id"]
    assert Path(env["TELEMETRYD_REPORT_PATH"]).is_file()
    assert event["contexts"]["crossing"]["actions"] == [f"exec {sys.executable} (timeout 30s)"]


LEAKER = textwrap.dedent("""
    import os, signal, sys, time
    out, kernel_level = sys.argv[1], int(sys.argv[2])
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    def stopped(*_):
        open(out, "w").write(f"term {rss()}")
        sys.exit(0)
    signal.signal(signal.SIGTERM, stopped)
    print("ready", flush=True)
    hoard = []
    while rss() < kernel_level:
        block = bytearray(2 << 20)
        block[::4096] = b"1" * len(block[::4096])
        hoard.append(block)
        time.sleep(0.04)
    open(out, "w").write(f"reached {rss()}")  # what the kernel would have killed
    time.sleep(3600)
""")


def test_signal_action_stops_a_leak_before_the_kernels_level(tmp_path: Path) -> None:
    """on_critical SIGTERM reaches a leaking process before it grows to 'the kernel's' level."""
    out = tmp_path / "leaker.txt"
    kernel_level = 400 * MiB
    leaker = subprocess.Popen([sys.executable, "-c", LEAKER, str(out), str(kernel_level)],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert leaker.stdout is not None and leaker.stdout.readline().strip() == "ready"
        watch = "\n".join([
            'name = "leaky"', f"pid = {leaker.pid}", 'rss_warning = "60MiB"',
            'rss_critical = "100MiB"', "sustained = 1",
            'on_critical = [{ signal = "SIGTERM", grace = "30s" }]'])
        daemon = DaemonProcess(write_config(tmp_path, watch), tmp_path / "log.jsonl")
        try:
            assert leaker.wait(timeout=120) == 0
            daemon.wait_event("action.finished", watch="leaky", signal="SIGTERM")
        finally:
            assert daemon.stop() == 0
        word, rss = out.read_text().split()
        assert word == "term" and int(rss) < kernel_level
    finally:
        if leaker.poll() is None:
            os.killpg(leaker.pid, signal.SIGKILL)
            leaker.wait(timeout=30)


def test_hanging_action_is_killed_at_its_timeout_and_ticks_go_on(
        tmp_path: Path, agent: Agent) -> None:
    """An exec that never ends is killed at its timeout; sampling never waits for it."""
    hang = [sys.executable, "-c", "import time; time.sleep(3600)"]
    watch = memory_watch(agent, 20, 400).replace("sustained = 2", "sustained = 1")
    watch += f'\non_warning = [{{ exec = {toml(hang)}, timeout = "4s" }}]'
    state = tmp_path / "state"
    daemon = DaemonProcess(write_config(tmp_path, watch), tmp_path / "log.jsonl")
    try:
        daemon.wait_event("process.seen", pid=agent.pid)
        agent.command("grow 30")
        daemon.wait_event("action.started", watch="leaky", timeout=60)
        during = tick_count(state)
        # Ticks go on while the action hangs (0.2 s interval, 4 s timeout).
        wait_for(lambda: (tick_count(state) >= during + 3 and not any(
            e.get("event") == "action.finished" for e in daemon.events())) or None,
            message="ticks while the action hangs")
        finished = daemon.wait_event("action.finished", watch="leaky", timeout=60)
        assert finished["timed_out"] is True and finished["ok"] is False
        assert 3.5 <= finished["seconds"] < 30
        after = tick_count(state)
        wait_for(lambda: tick_count(state) > after, message="ticks after the timeout")
    finally:
        assert daemon.stop() == 0

"""A critical report names the member of the tree that grew, with what could not be collected."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from crash_reports.event.system_facts import SystemFacts
from daemon.runtime.tick import Ticker
from daemon.watch.proc.proctable import default_process_table
from tests.e2e.test_watchdog import pending_envelopes
from tests.support.configs import offline_config
from tests.support.waiting import wait_for
from tests.unit.test_tick import started

MIB = 1024 * 1024
TREE = textwrap.dedent("""
    import subprocess, sys
    steady = subprocess.Popen([sys.executable, "-c",
        "b = bytearray(8 << 20); b[::4096] = b'1' * len(b[::4096]); import time; time.sleep(3600)"],
        stdin=subprocess.DEVNULL)
    leaky = subprocess.Popen([sys.executable, "-c", '''
    import sys
    hoard = []
    print("ready", flush=True)
    for line in sys.stdin:
        block = bytearray(int(line) << 20)
        block[::4096] = b"1" * len(block[::4096])
        hoard.append(block)
        print("grown", flush=True)
    '''], stdout=subprocess.PIPE, text=True)
    leaky.stdout.readline()
    print(steady.pid, leaky.pid, flush=True)
    for line in leaky.stdout:
        print(line.strip(), flush=True)
""")


@pytest.fixture
def tree() -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """A root with a steady child and a child that grows on a line of stdin."""
    root = subprocess.Popen([sys.executable, "-c", TREE], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert root.stdout is not None
    steady, leaky = (int(pid) for pid in root.stdout.readline().split())
    try:
        yield root, steady, leaky
    finally:
        for pid in (leaky, steady, root.pid):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        root.wait(timeout=60)


def test_critical_report_names_the_child_that_grew(
        tmp_path: Path, tree: tuple[subprocess.Popen[str], int, int]) -> None:
    """The leaking child heads the report's member list, its growth over the window shown."""
    root, steady, leaky = tree
    assert root.stdin is not None and root.stdout is not None
    baseline = sum(psutil.Process(pid).memory_info().rss for pid in (root.pid, steady, leaky))
    state = tmp_path / "state"
    config = offline_config(state, f'name = "tree"\npid = {root.pid}\n'
                            f'rss_warning = "{(baseline + 30 * MIB) // 1024}KiB"\n'
                            f'rss_critical = "{(baseline + 40 * MIB) // 1024}KiB"\nsustained = 1',
                            daemon='trend_window = "10m"')
    running = started(config)
    ticker = Ticker(config, default_process_table(), SystemFacts(), time.monotonic)
    try:
        ticker.tick(running, time.time())  # every member at its starting size
        root.stdin.write("60\n")
        root.stdin.flush()
        assert root.stdout.readline().strip() == "grown"

        def reported() -> bool:
            ticker.tick(running, time.time())
            return ticker.reports_written > 0
        wait_for(reported, message="critical report written")
    finally:
        running.close(time.time())
    [envelope] = pending_envelopes(state)
    event = envelope.get_event()
    assert event is not None and event["tags"]["kind"] == "rss_critical"
    leak = event["contexts"]["crossing"]["leak"]
    first = leak["members"][0]
    assert first["pid"] == leaky and first["name"].startswith("python")
    assert first["growth_bytes"] >= 55 * MIB
    assert "-c" in first["cmdline"]
    others = {m["pid"]: m for m in leak["members"][1:]}
    assert set(others) == {root.pid, steady}
    assert all(m["growth_bytes"] < 5 * MIB for m in others.values())
    assert all("smaps" in m or any(n["pid"] == m["pid"] and n["what"] == "smaps_rollup"
                                   for n in leak["not_collected"]) for m in leak["members"])
    # Python members get a py-spy dump, or the report says why not.
    for member in leak["members"]:
        assert member.get("py_spy") or any(
            n["pid"] == member["pid"] and n["what"] == "py_spy" for n in leak["not_collected"])

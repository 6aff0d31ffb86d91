"""What an agent leaves behind: listed under its watch, reported, and reaped when asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.support.daemon_proc import DaemonProcess
from tests.support.waiting import wait_for

# A child that holds some memory; the second one ignores SIGTERM (only SIGKILL ends it).
CHILD = ("import signal, sys, time\n"
         "if sys.argv[1] == 'stubborn': signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
         "block = bytearray(8 * 1024 * 1024)\n"
         "while True: time.sleep(60)\n")
# The agent: starts two children, writes their pids, exits when told (a file appears).
AGENT = ("import os, subprocess, sys, time\n"
         "kids = [subprocess.Popen([sys.executable, '-c', sys.argv[1], kind],"
         " start_new_session=True) for kind in ('plain', 'stubborn')]\n"
         "open(sys.argv[2], 'w').write(' '.join(str(k.pid) for k in kids))\n"
         "while not os.path.exists(sys.argv[3]): time.sleep(0.05)\n")


def alive(pid: int) -> bool:
    """Whether the pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_orphans_are_listed_reported_and_reaped(tmp_path: Path) -> None:
    """A tree whose parent exits leaves orphans: status lists them under the agent's watch,
    the log says process.orphaned, an orphans_left report is written, and reap_orphans
    terminates them (SIGTERM, then SIGKILL for the one that ignores it)."""
    marker = f"orphan-agent-{uuid.uuid4().hex[:8]}"
    pids_file, exit_file = tmp_path / "pids", tmp_path / "exit"
    state = tmp_path / "state"
    config = tmp_path / "telemetryd.toml"
    config.write_text(
        f'[daemon]\ninterval = 0.3\nstate_dir = "{state}"\nlog_format = "json"\n'
        '[otlp]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n'
        f'[[watch]]\nname = "agent"\ninterpreter_cmdline = "{marker}"\n'
        'orphans_warning = 2\nsustained = 5\nreap_orphans = true\nreap_grace = "1s"\n')
    agent = subprocess.Popen([sys.executable, "-c", AGENT, CHILD, str(pids_file),
                              str(exit_file), marker])
    kids: list[int] = []
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        kids = [int(pid) for pid in wait_for(
            lambda: pids_file.exists() and pids_file.read_text().split(),
            message="the agent's children")]
        daemon.wait_event("process.seen", pid=agent.pid, timeout=60)
        wait_for(lambda: all(pid in tree_members(state, agent.pid) for pid in kids),
                 timeout=60, message="children counted in the agent's tree")
        exit_file.write_text("")
        assert agent.wait(timeout=30) == 0

        def orphans_listed() -> list[dict[str, Any]] | None:
            rows = watch_of(state, "agent").get("orphans") or []
            return rows if {row["pid"] for row in rows} == set(kids) else None
        rows = wait_for(orphans_listed, timeout=60, message="orphans in status")
        for row in rows:
            assert row["agent_pid"] == agent.pid and row["agent_exited"] is True
            assert row["rss_bytes"] > 8 * 1024 * 1024 and row["age_seconds"] >= 0
        orphaned = daemon.wait_event("process.orphaned", pid=kids[0])
        assert orphaned["agent_pid"] == agent.pid and orphaned["watch"] == "agent"
        report = daemon.wait_event("report.written", kind="orphans_left", timeout=60)
        assert "left 2 processes behind" in report["title"]
        wait_for(lambda: not any(alive(pid) for pid in kids), timeout=60,
                 message="orphans reaped")
        daemon.wait_event("orphan.reaped", pid=kids[0], signal="SIGTERM")
        daemon.wait_event("orphan.reaped", pid=kids[1], signal="SIGKILL")
        wait_for(lambda: not watch_of(state, "agent").get("orphans"),
                 message="status without orphans once they are gone")
    finally:
        exit_file.write_text("")
        agent.wait(timeout=30)
        for pid in kids:
            if alive(pid):
                os.kill(pid, 9)
        assert daemon.stop() == 0


def watch_of(state: Path, name: str) -> dict[str, Any]:
    """The watch's section of the status file (empty before the first tick)."""
    try:
        data = json.loads((state / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return next((w for w in data.get("watches", []) if w["name"] == name), {})


def tree_members(state: Path, pid: int) -> set[int]:
    """Pids the daemon counted in the tree rooted at ``pid`` (via /proc: status has counts)."""
    rows = watch_of(state, "agent").get("processes") or []
    if not any(row["pid"] == pid and row.get("members", 0) >= 3 for row in rows):
        return set()
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found

"""A storm of SIGHUPs is recorded, not obeyed one by one: the daemon lives, reloads once, stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.e2e.test_clock_step import TickLog
from tests.e2e.test_watchdog import write_config
from tests.support.daemon_proc import REPO, DaemonProcess, clean_env
from tests.support.waiting import wait_for

STORM = 2000


def storm(pid: int, alive: Any) -> int:
    """SIGHUPs 1-2 ms apart to ``pid`` while ``alive()``; how many were sent."""
    for index in range(STORM):
        if not alive():
            return index
        os.kill(pid, signal.SIGHUP)
        time.sleep(0.001 + (index % 2) / 1000)  # the storm's pace, not a wait
    return STORM


def renamed(config: Path) -> None:
    """Change the config so that a reload shows (the watch gets another name)."""
    config.write_text(config.read_text().replace('name = "self"', 'name = "renamed"'))


def self_watch() -> str:
    """A watch on this test process that never crosses a level."""
    return f'name = "self"\npid = {os.getpid()}\nrss_warning = "100GiB"\nrss_critical = "200GiB"'


def test_sighup_storm_coalesces_into_one_reload_and_sigterm_still_stops(tmp_path: Path) -> None:
    """2,000 SIGHUPs 1-2 ms apart: alive, sampling, one reload (not one per wake-up)."""
    config = write_config(tmp_path, self_watch(), interval=0.25)
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    ticks = TickLog(tmp_path / "state")
    try:
        daemon.wait_event("daemon.ready", timeout=60)
        renamed(config)
        sent = storm(daemon.pid, lambda: daemon.proc.poll() is None)
        assert sent == STORM, daemon.log_path.read_text()[-3000:]
        daemon.wait_event("process.seen", watch="renamed", timeout=30)
        ticks.wait_more(4)  # still sampling after the storm
        daemon.signal(signal.SIGTERM)
        assert daemon.proc.wait(timeout=30) == 0
    finally:
        daemon.kill()
    events = daemon.events()
    reloads = [e for e in events if e.get("event") == "config.loaded" and e.get("reload")]
    assert 1 <= len(reloads) <= 2, f"{len(reloads)} reloads for one storm"
    names = [e.get("event") for e in events]
    assert "daemon.stopped" in names and "daemon.crashed" not in names
    stops = [e for e in events if e.get("event") == "daemon.signal" and e.get("action") == "stop"]
    assert [e.get("signal") for e in stops] == ["SIGTERM"]


def test_sighup_storm_while_the_log_pipe_is_full_neither_kills_nor_hangs(
        tmp_path: Path) -> None:
    """Handlers that logged blocked on a full stdout pipe and nested until RecursionError;
    now the storm lands while the daemon's log pipe is unread, and it lives on."""
    config = write_config(tmp_path, self_watch(), interval=0.25)
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_env(),
                            cwd=REPO)
    assert proc.stdout is not None
    lines: list[bytes] = []
    try:
        while b"daemon.ready" not in (line := proc.stdout.readline()):
            assert line, "the daemon exited before its first tick"
        renamed(config)
        sent = storm(proc.pid, lambda: proc.poll() is None)  # nobody reads the pipe meanwhile
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        assert sent == STORM and proc.poll() is None, f"killed after {sent} SIGHUPs"

        def logged(name: str, **fields: Any) -> bool:
            return any(e.get("event") == name and all(e.get(k) == v for k, v in fields.items())
                       for e in parsed(lines))
        wait_for(lambda: logged("config.loaded", reload=True), message="the reload")
        wait_for(lambda: logged("process.seen", watch="renamed"), message="the new config")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = b"".join(lines)
    assert b"RecursionError" not in text and b"daemon.crashed" not in text
    assert logged("daemon.stopped")


def parsed(lines: list[bytes]) -> list[dict[str, Any]]:
    """The JSON log lines among ``lines``."""
    found = []
    for line in list(lines):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            found.append(item)
    return found

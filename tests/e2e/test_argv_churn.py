"""Short-lived processes with huge command lines: memory stays bounded and comes back."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

from tests.e2e.test_tick_under_flood import assert_ticks_kept, ticks
from tests.e2e.test_watchdog import write_config
from tests.support.daemon_proc import DaemonProcess
from tests.support.waiting import wait_for

MB = 1_000_000
BIG_ARG = "x" * (128 * 1024 - 1)  # the longest single argument Linux takes
BOMBS = 120
AT_ONCE = 16


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def test_huge_command_lines_churning_keep_memory_bounded(tmp_path: Path) -> None:
    """120 processes with 1.4 MB command lines, each a second long, all matched and read:
    RSS stays under 150 MB, comes back near quiet, and ticks go on."""
    marker = f"argvbomb-{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path, f'name = "bombs"\ncmdline = "{marker}"', interval=0.25)
    state = tmp_path / "state"
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    argv = ["/bin/sh", "-c", "sleep 1; :", marker, *([BIG_ARG] * 11)]  # 1.4 MB
    running: list[subprocess.Popen[bytes]] = []
    try:
        wait_for(lambda: (ticks(state) or (0, 0.0))[0] >= 4, message="four ticks")
        quiet = rss_bytes(daemon.pid)
        started, peak, seen_ticks = 0, quiet, []
        while started < BOMBS or running:
            running = [proc for proc in running if proc.poll() is None]
            while started < BOMBS and len(running) < AT_ONCE:
                running.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL))
                started += 1
            peak = max(peak, rss_bytes(daemon.pid))
            now = ticks(state)
            if now and (not seen_ticks or now[0] != seen_ticks[-1][0]):
                seen_ticks.append(now)
            time.sleep(0.02)  # a polling period, not a wait for a condition
        seen = [e for e in daemon.events()
                if e.get("event") == "process.seen" and e.get("watch") == "bombs"]
        assert len(seen) >= BOMBS // 2, f"the daemon saw only {len(seen)} of {BOMBS}"
        assert peak < 150 * MB, f"RSS {peak / MB:.0f} MB under churn (quiet: {quiet / MB:.0f})"
        wait_for(lambda: rss_bytes(daemon.pid) < quiet + 30 * MB, timeout=20,
                 message=f"RSS back near quiet ({quiet / MB:.0f} MB)")
        assert_ticks_kept(seen_ticks)
        assert daemon.proc.poll() is None, "the daemon died during the churn"
    finally:
        for proc in running:
            proc.kill()
            proc.wait()
        daemon.stop()

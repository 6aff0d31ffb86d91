"""A wall-clock step back or forward (NTP, a resumed laptop) never stops or bunches ticks."""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.test_watchdog import write_config
from tests.support.daemon_proc import DaemonProcess, clean_env
from tests.support.faketime import SteppedClock
from tests.support.waiting import wait_for

INTERVAL = 0.25
HOUR = 3600.0


@dataclass
class TickLog:
    """Each new tick count status.json shows, with when (this process's monotonic clock) it
    was seen: the daemon's own timestamps are the faked wall clock under test."""

    state: Path
    seen: list[tuple[int, float, float]] = field(default_factory=list)

    def poll(self) -> int:
        """Read status.json once; the latest tick count seen so far (0 before the first)."""
        try:
            last = json.loads((self.state / "status.json").read_text())["last_tick"]
        except (OSError, ValueError, KeyError, TypeError):
            last = None
        if last and (not self.seen or int(last["count"]) != self.seen[-1][0]):
            self.seen.append((int(last["count"]), time.monotonic(), float(last["at"])))
        return self.seen[-1][0] if self.seen else 0

    def wait_more(self, ticks: int, timeout: float = 30.0) -> None:
        """Poll (with a deadline) until ``ticks`` more ticks than now have been counted."""
        target = self.poll() + ticks
        wait_for(lambda: self.poll() >= target, timeout=timeout, interval=0.02,
                 message=f"{ticks} more ticks (seen {self.seen[-3:]})")

    def largest_gap(self, since: int = 0) -> float:
        """The longest wait between two ticks seen (from index ``since``)."""
        return max(b[1] - a[1] for a, b in itertools.pairwise(self.seen[since:]))


def test_ticks_continue_across_a_step_back_and_a_step_forward(tmp_path: Path) -> None:
    """1 h back, then 2 h forward: ticks keep their interval; timestamps follow the wall."""
    watch = f'name = "self"\npid = {os.getpid()}\nrss_warning = "100GiB"\nrss_critical = "200GiB"'
    config = write_config(tmp_path, watch, interval=INTERVAL)
    clock = SteppedClock(tmp_path)
    daemon = DaemonProcess(config, tmp_path / "daemon.log", env=clock.environ(clean_env()))
    log = TickLog(tmp_path / "state")
    try:
        log.wait_more(8, timeout=60)  # the first tick and a steady rhythm
        clock.set("-1h")
        stepped = len(log.seen)
        log.wait_more(12)
        back = log.seen[-1]
        clock.set("+1h")
        forward_at = len(log.seen)
        log.wait_more(12)
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    # Stored timestamps stay wall time: an hour behind real time after the step back.
    assert abs(back[2] - (time.time() - HOUR - (time.monotonic() - back[1]))) < 30, back
    last = log.seen[-1]
    assert abs(last[2] - (time.time() + HOUR - (time.monotonic() - last[1]))) < 30, last
    # Never stopped: the longest wait across both steps stays near the interval.
    gap = log.largest_gap(stepped - 1)
    assert gap < 8 * INTERVAL, f"a tick gap of {gap:.2f} s at a {INTERVAL} s interval"
    # Never bunched: after the step forward, no more ticks than the interval allows.
    window = log.seen[forward_at:]
    ticks = window[-1][0] - window[0][0]
    assert ticks <= (window[-1][1] - window[0][1]) / INTERVAL + 3, window
    events = [e["event"] for e in daemon.events()]
    assert "tick.missed" not in events and "tick.error" not in events

"""The real daemon's memory stays bounded while clients send series with fat keys."""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

import psutil
import pytest

from tests.e2e.test_tick_under_flood import assert_ticks_kept, ticks, watch_ticks
from tests.e2e.test_tick_under_other_floods import listen_port
from tests.e2e.test_watchdog import write_config
from tests.integration.agents.conftest import post
from tests.support.daemon_proc import DaemonProcess
from tests.support.floods import fat_series_request
from tests.support.waiting import wait_for

# A flood that measures tick gaps: never beside another one (test_tick_under_flood.py).
pytestmark = pytest.mark.xdist_group("tick-gaps")

FLOOD_SECONDS = 10.0
RSS_LIMIT_BYTES = 150_000_000


def test_rss_stays_under_150_mb_under_a_fat_series_flood(tmp_path: Path) -> None:
    """Two clients sending new series of 128 attributes of 200 characters each, for 10 s:
    the daemon's RSS stays under 150 MB (series keys used to cost 64 KB each, and it grew
    by about 20 MB a second to 716 MB in 25 s) and sampling goes on."""
    watch = f'name = "self"\npid = {os.getpid()}\nrss_warning = "100GiB"\nrss_critical = "200GiB"'
    config = write_config(tmp_path, watch, interval=0.25)
    state = tmp_path / "state"
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: ticks(state), message="first tick")
        port = listen_port(state, "otlp")
        process = psutil.Process(daemon.pid)
        numbers = itertools.count()
        lock = threading.Lock()
        stop = threading.Event()
        statuses: list[int] = []

        def flood() -> None:
            while not stop.is_set():
                with lock:
                    n = next(numbers)
                statuses.append(post(port, "/v1/metrics", fat_series_request(n)).status)

        peak = [0]

        def sample() -> None:
            while not stop.wait(0.1):
                peak[0] = max(peak[0], process.memory_info().rss)

        threads = [threading.Thread(target=flood, daemon=True) for _ in range(2)]
        threads.append(threading.Thread(target=sample, daemon=True))
        for thread in threads:
            thread.start()
        seen = watch_ticks(state, FLOOD_SECONDS)
        stop.set()
        for thread in threads:
            thread.join(60)
        peak[0] = max(peak[0], process.memory_info().rss)
        assert statuses.count(200) >= 20, f"the flood barely reached the daemon: {statuses}"
        assert peak[0] < RSS_LIMIT_BYTES, f"RSS reached {peak[0] / 1e6:.0f} MB"
        assert_ticks_kept(seen)
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()

"""Sampling goes on while the OTLP receiver is flooded with requests that take long to decode."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.test_agent_telemetry import otlp_port
from tests.e2e.test_watchdog import write_config
from tests.integration.agents.conftest import post
from tests.support.daemon_proc import DaemonProcess
from tests.support.waiting import wait_for
from tests.unit.agents.payloads import metrics_request, sum_metric

# Floods measure tick gaps: never two at once (nor beside the flood benchmark's smoke run).
pytestmark = pytest.mark.xdist_group("tick-gaps")
# How long each flood is watched: 20 ticks at the 0.25 s interval.
FLOOD_SECONDS = 5.0


def heavy_request(points: int, seed: int) -> bytes:
    """One request of many generic points (decoding it takes a while)."""
    now = time.time_ns()
    metric = sum_metric("flood.metric", [({"k": f"{seed}-{i % 500}"}, 1, now - 10**9, now)
                                         for i in range(points)])
    return bytes(metrics_request({"service.name": f"flood-{seed}"}, [metric]).SerializeToString())


def ticks(state: Path) -> tuple[int, float] | None:
    """(tick count, time of the last tick) from status.json, or None while it is not there."""
    try:
        last = json.loads((state / "status.json").read_text())["last_tick"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (int(last["count"]), float(last["at"])) if last else None


def watch_ticks(state: Path, seconds: float) -> list[tuple[int, float]]:
    """Every distinct tick (count, time) status.json shows during ``seconds``."""
    seen: list[tuple[int, float]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = ticks(state)
        if now and (not seen or now[0] != seen[-1][0]):
            seen.append(now)
        time.sleep(0.05)  # a polling period, not a wait for a condition
    return seen


def assert_ticks_kept(seen: list[tuple[int, float]]) -> None:
    """At least 8 ticks seen, and no gap between two of them reaching 3 s (0.25 s interval)."""
    assert len(seen) >= 8, f"sampling stalled during the flood: {seen}"
    gaps = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(seen)]
    assert max(gaps) < 3.0, f"a tick gap of {max(gaps):.2f}s at a 0.25 s interval"


def test_sampling_never_stops_during_a_decode_flood(tmp_path: Path) -> None:
    """Four clients sending heavy requests without pause: ticks keep coming, none stalls long."""
    watch = f'name = "self"\npid = {os.getpid()}\nrss_warning = "100GiB"\nrss_critical = "200GiB"'
    config = write_config(tmp_path, watch, interval=0.25)
    state = tmp_path / "state"
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        port = otlp_port(config)
        wait_for(lambda: ticks(state), message="first tick")
        payloads = [heavy_request(20_000, seed) for seed in range(4)]
        stop = threading.Event()

        def flood(body: bytes) -> None:
            while not stop.is_set():
                # A request the busy daemon answers late is part of the flood, not its end.
                with contextlib.suppress(OSError):
                    post(port, "/v1/metrics", body)

        senders = [threading.Thread(target=flood, args=(p,), daemon=True) for p in payloads]
        for sender in senders:
            sender.start()
        seen = watch_ticks(state, FLOOD_SECONDS)
        stop.set()
        for sender in senders:
            sender.join(60)
        assert_ticks_kept(seen)
    finally:
        daemon.stop()

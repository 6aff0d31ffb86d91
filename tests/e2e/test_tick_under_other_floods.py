"""Sampling goes on under slow clients, connection floods, new-identity floods and scrapes."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_tick_under_flood import (
    FLOOD_SECONDS,
    assert_ticks_kept,
    ticks,
    watch_ticks,
)
from tests.e2e.test_watchdog import write_config
from tests.integration.agents.conftest import post
from tests.support.daemon_proc import DaemonProcess
from tests.support.waiting import wait_for
from tests.unit.agents.payloads import metrics_request, sum_metric

pytestmark = pytest.mark.xdist_group("tick-gaps")
Load = Callable[[int, threading.Event, int], None]


def slow_client(port: int, stop: threading.Event, seed: int) -> None:
    """Eight connections trickling a request head, one byte every half second."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
    try:
        while not stop.wait(0.5):
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.send(b"P")
    finally:
        for sock in socks:
            sock.close()


def connection_churn(port: int, stop: threading.Event, seed: int) -> None:
    """Open, half-write and drop connections as fast as they are accepted."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            time.sleep(0.01)


def new_identities(port: int, stop: threading.Event, seed: int) -> None:
    """Requests that each bring a new agent, session, models and series."""
    for n in itertools.count(seed * 1_000_000):
        if stop.is_set():
            return
        now = time.time_ns()
        points = [({"model": f"m-{n}-{i}", "type": "input", "route": f"/{n}/{i}"}, 10,
                   now - 10**9, now) for i in range(20)]
        resource = {"service.name": f"svc-{n}", "session.id": f"s-{n}"}
        body = metrics_request(resource, [sum_metric("claude_code.token.usage", points)])
        post(port, "/v1/metrics", bytes(body.SerializeToString()))


def scrapes(port: int, stop: threading.Event, seed: int) -> None:
    """GET /metrics back to back."""
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            conn.getresponse().read()
        except OSError:
            time.sleep(0.01)
        finally:
            conn.close()


def listen_port(state: Path, section: str) -> int:
    """A listener's bound port, from status.json."""
    def port() -> int | None:
        try:
            listen = json.loads((state / "status.json").read_text())[section]["listen"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return int(str(listen).rsplit(":", 1)[1]) if listen else None
    return wait_for(port, message=f"{section} listener up")  # type: ignore[no-any-return]


@pytest.mark.parametrize(("load", "listener", "clients"), [
    (slow_client, "otlp", 6),
    (connection_churn, "otlp", 4),
    (new_identities, "otlp", 3),
    (scrapes, "metrics", 4),
], ids=["slow-clients", "connection-flood", "cardinality-flood", "scrape-flood"])
def test_sampling_never_stops_during_a_flood(tmp_path: Path, load: Load, listener: str,
                                             clients: int) -> None:
    """Clients flooding a listener: ticks keep coming, none stalls long."""
    watch = f'name = "self"\npid = {os.getpid()}\nrss_warning = "100GiB"\nrss_critical = "200GiB"'
    config = write_config(tmp_path, watch, interval=0.25)
    state = tmp_path / "state"
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: ticks(state), message="first tick")
        port = listen_port(state, listener)
        stop = threading.Event()
        senders = [threading.Thread(target=load, args=(port, stop, seed), daemon=True)
                   for seed in range(clients)]
        for sender in senders:
            sender.start()
        seen = watch_ticks(state, FLOOD_SECONDS)
        stop.set()
        for sender in senders:
            sender.join(30)
        assert_ticks_kept(seen)
        assert daemon.proc.poll() is None, "the daemon died during the flood"
    finally:
        daemon.stop()

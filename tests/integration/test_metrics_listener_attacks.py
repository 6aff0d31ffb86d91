"""The metrics listener under hostile clients: slow readers, write deadlines, shared scrapes.

A real ``serve_metrics`` listener on loopback, fed by a collector that renders about 8 MB
(a large fleet's scrape), attacked from a child process (tests/support/listener_attacks.py).
"""

from __future__ import annotations

import dataclasses
import select
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from daemon.config.schema import Config
from daemon.web.metrics_server import MetricsServer, serve_metrics
from tests.support.listener_attacks import Attack, exchange, well_behaved
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


class BigCollector(Collector):
    """One gauge family of ``samples`` series with long labels; counts its renderings."""

    def __init__(self, samples: int) -> None:
        self.samples = samples
        self.collected = 0
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            self.collected += 1
        family = GaugeMetricFamily("fleet_member_rss_bytes", "RSS of each fleet member.",
                                   labels=["host", "member"])
        for i in range(self.samples):
            family.add_metric([f"host-{i % 97:03d}.example.internal", f"member-{i:08d}" * 4],
                              float(i))
        yield family


@pytest.fixture
def big_scrape() -> Iterator[tuple[MetricsServer, BigCollector]]:
    """/metrics of about 8 MB, default limits (16 connections, 10 s write timeout)."""
    collector = BigCollector(60_000)
    server = serve_metrics("127.0.0.1", 0, collector, process_metrics=False)
    try:
        yield server, collector
    finally:
        server.stop()


def scrape(port: int) -> int:
    """One well-behaved scrape, read whole: its status (0: no answer)."""
    return exchange(port, "GET", "/metrics", headers={"Host": f"127.0.0.1:{port}"})


def exchange_body(port: int) -> bytes:
    """The body of one scrape."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        return bytes(answer.read())


def test_scrapers_that_never_read_do_not_lock_out_the_others(
        big_scrape: tuple[MetricsServer, BigCollector]) -> None:
    """20 scrapers that never read an 8 MB answer: a well-behaved scraper is still answered."""
    server, _ = big_scrape
    assert len(exchange_body(server.port)) > 5_000_000
    with Attack("slow_readers", server.port, clients=20) as attack:
        # Under way: every slot taken by a connection whose answer the client does not read.
        wait_for(lambda: attack.progress >= 20, timeout=60, message="20 unread scrapes sent")
        wait_for(lambda: server._listener.connections >= 16, timeout=60,
                 message="the listener full of unread answers")
        tally = well_behaved(lambda: scrape(server.port), requests=6, every_seconds=0.5)
    assert tally.ok >= 3, f"well-behaved scrapes under 20 slow readers: {tally}"


def test_a_client_that_does_not_read_is_cut_off_at_the_write_deadline() -> None:
    """An answer that does not leave the write buffer within write_timeout: the connection is
    aborted (its buffer freed) and counted."""
    limits = dataclasses.replace(Config.metrics.wire, write_timeout_seconds=1.0)
    server = serve_metrics("127.0.0.1", 0, BigCollector(60_000), process_metrics=False,
                           limits=limits)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        poller = select.poll()
        poller.register(sock, select.POLLERR | select.POLLHUP | select.POLLRDHUP)
        wait_for(lambda: poller.poll(0), timeout=30, message="the connection cut off")
        sock.close()
        wait_for(lambda: server.stats()["connections_dropped.write_timeout"] == 1, timeout=10,
                 message="the write timeout counted")
        assert server._listener.connections == 0
    finally:
        server.stop()


def test_simultaneous_scrapes_share_one_rendering() -> None:
    """Ten scrapes at once within the render interval: one rendering serves them all."""
    collector = BigCollector(2_000)
    server = serve_metrics("127.0.0.1", 0, collector, process_metrics=False,
                           render_interval_seconds=60.0)
    try:
        statuses: list[int] = []
        threads = [threading.Thread(target=lambda: statuses.append(scrape(server.port)))
                   for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert statuses == [200] * 10
        assert collector.collected == 1
    finally:
        server.stop()


def test_a_rebinding_page_cannot_read_metrics(
        big_scrape: tuple[MetricsServer, BigCollector]) -> None:
    """/metrics with Host: rebind.attacker.example: 421, nothing rendered for it."""
    server, collector = big_scrape
    status = exchange(server.port, "GET", "/metrics",
                      headers={"Host": f"rebind.attacker.example:{server.port}"})
    assert status == 421
    assert collector.collected == 0


def test_a_whole_head_over_the_cap_is_refused_on_metrics_too(
        big_scrape: tuple[MetricsServer, BigCollector]) -> None:
    """A 64 KiB head in one write to /metrics: 431, not rendered."""
    server, collector = big_scrape
    headers = {f"X-Pad-{i}": "a" * 1024 for i in range(64)}
    headers["Host"] = f"127.0.0.1:{server.port}"
    assert exchange(server.port, "GET", "/metrics", headers=headers) == 431
    assert collector.collected == 0


def test_stopping_does_not_wait_for_clients_that_do_not_read() -> None:
    """Five clients not reading their answer: stop() resets them at once instead of waiting
    out the graceful shutdown (3 s) for answers nobody reads."""
    server = serve_metrics("127.0.0.1", 0, BigCollector(60_000), process_metrics=False)
    clients = []
    try:
        for _ in range(5):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n"
                         .encode())
            clients.append(sock)
        poller = select.poll()
        for sock in clients:
            poller.register(sock, select.POLLIN)
        wait_for(lambda: len(poller.poll(0)) == 5, timeout=60, message="every answer begun")
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2.0
    finally:
        for sock in clients:
            sock.close()

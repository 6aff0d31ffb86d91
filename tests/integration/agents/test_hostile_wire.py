"""Attacks on the receiver's wire: chunk sizes, inflation bombs, slow clients, connection floods."""

from __future__ import annotations

import gzip
import socket
import threading
import time

import psutil
import pytest

from daemon.agents.decoding.counters import OtlpCounter
from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.integration.agents.conftest import post
from tests.integration.agents.test_bad_input import good_metrics, raw_exchange

HEAD = (b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")


def rss() -> int:
    """This process's resident memory (the receiver runs in it)."""
    return int(psutil.Process().memory_info().rss)


@pytest.mark.parametrize("size_line", [b"-5", b"-ffffffff", b"zz", b"0x10", b"1 2", b""])
def test_negative_or_garbage_chunk_size_is_400(agents: AgentTelemetry, size_line: bytes) -> None:
    """A chunk size that is negative or not hex is a 400, at once, memory untouched."""
    before = rss()
    started = time.monotonic()
    answer = raw_exchange(agents.receiver.port, HEAD + size_line + b"\r\n" + b"A" * 4096)
    assert answer.startswith(b"HTTP/1.1 400")
    assert time.monotonic() - started < 5.0
    assert rss() - before < 32 << 20


def test_huge_chunk_size_is_413_once_the_limit_is_passed(make_agents: object) -> None:
    """A chunk that claims 2^64 bytes is cut off as soon as what arrived passes the body limit."""
    agents = make_agents(max_body_bytes=64 * 1024)  # type: ignore[operator]
    before = rss()
    with socket.create_connection(("127.0.0.1", agents.receiver.port), timeout=10) as sock:
        sock.sendall(HEAD + b"ffffffffffffffff\r\n")
        try:
            for _ in range(4096):  # up to 16 MiB, far past the limit
                sock.sendall(b"\0" * 4096)
            while sock.recv(4096):
                pass
        except OSError:
            pass  # the server answered 413 and closed with the rest unread: that is the point
    assert agents.stats().get(OtlpCounter.REQUESTS_REFUSED, ("413", "body_too_large")) == 1
    assert rss() - before < 32 << 20


def test_gzip_bomb_of_empty_messages_is_refused_cheaply(agents: AgentTelemetry) -> None:
    """16 KB of gzip inflating to 16 MiB of empty messages: 413 in well under a second, no RSS."""
    bomb = gzip.compress(b"\x0a\x00" * (8 << 20), 9)
    assert len(bomb) < 20_000
    before = rss()
    started = time.monotonic()
    reply = post(agents.receiver.port, "/v1/metrics", bomb, headers={"Content-Encoding": "gzip"})
    assert reply.status == 413
    assert time.monotonic() - started < 2.0
    assert rss() - before < 48 << 20
    assert post(agents.receiver.port, "/v1/metrics", good_metrics()).status == 200


def test_many_empty_messages_without_compression_are_refused(make_agents: object) -> None:
    """A plain body of 100,000 empty resources is 413 (too many items), not decoded."""
    agents = make_agents(max_items_per_request=10_000)  # type: ignore[operator]
    reply = post(agents.receiver.port, "/v1/metrics", b"\x0a\x00" * 100_000)
    assert reply.status == 413
    assert agents.stats().get(OtlpCounter.REQUESTS_REFUSED, ("413", "too_many_items")) == 1


def test_slow_clients_do_not_keep_a_real_export_out(make_agents: object) -> None:
    """32 clients sending one byte every 3 s: a real export still gets a 200 promptly."""
    agents = make_agents(read_timeout_seconds=5.0)  # type: ignore[operator]
    port = agents.receiver.port
    stop = threading.Event()
    request = HEAD.replace(b"Transfer-Encoding: chunked", b"Content-Length: 10")

    def trickle() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                    for i in range(len(request)):
                        sock.sendall(request[i:i + 1])
                        if stop.wait(3.0):
                            return
            except OSError:
                continue  # cut off: come back, as an attacker would

    threads = [threading.Thread(target=trickle, daemon=True) for _ in range(32)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)  # let every slow client take its slot first
        for _ in range(3):
            started = time.monotonic()
            assert post(port, "/v1/metrics", good_metrics()).status == 200
            assert time.monotonic() - started < 5.0
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)


def test_idle_connections_past_the_cap_are_evicted(make_agents: object) -> None:
    """With every slot held by idle connections, a new client is served (idle ones past the
    cap are shed at accept, or evicted, oldest first)."""
    agents = make_agents(max_connections=4)  # type: ignore[operator]
    port = agents.receiver.port
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
    try:
        assert post(port, "/v1/metrics", good_metrics()).status == 200
        stats = agents.stats()
        assert (stats.get(OtlpCounter.CONNECTIONS_DROPPED, ("evicted",))
                + stats.get(OtlpCounter.CONNECTIONS_DROPPED, ("shed",))) >= 4
    finally:
        for sock in idle:
            sock.close()


def test_idle_keepalive_connection_is_closed(make_agents: object) -> None:
    """A connection that says nothing is closed after the read timeout, without an answer."""
    agents = make_agents(read_timeout_seconds=0.5)  # type: ignore[operator]
    with socket.create_connection(("127.0.0.1", agents.receiver.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/met")
        assert sock.recv(4096) == b""

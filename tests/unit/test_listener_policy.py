"""The listeners' pure decisions: which Host and Origin are served, which connection goes."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from daemon.config.schema import OtlpSettings
from daemon.web.exposition.rendering import SharedRendering
from daemon.web.http.fairness import ConnectionView, Phase, admit_at_accept, choose_victim
from daemon.web.http.guarded_h11 import ListenerBook, whole_head_waiting
from daemon.web.http.host_check import CROSS_ORIGIN, MISDIRECTED, HostPolicy


@pytest.mark.parametrize(("listen", "host"), [
    ("127.0.0.1", "127.0.0.1"), ("127.0.0.1", "127.0.0.1:4318"), ("127.0.0.1", "localhost"),
    ("127.0.0.1", "localhost:9464"), ("127.0.0.1", "[::1]:9464"), ("127.0.0.1", "127.0.0.2"),
    ("127.0.0.1", "LocalHost."), ("::1", "[::1]"), ("192.0.2.5", "192.0.2.5:9464"),
    ("0.0.0.0", "192.0.2.7:9464"), ("::", "[2001:db8::1]:4318"),
    ("monitor.lan", "monitor.lan:9464"),
])
def test_loopback_and_the_listen_address_are_served(listen: str, host: str) -> None:
    """Loopback names and literals, the configured address, any IP under a wildcard bind."""
    assert HostPolicy(listen).check(host, None) is None


@pytest.mark.parametrize(("listen", "host"), [
    ("127.0.0.1", "rebind.attacker.example"), ("127.0.0.1", "rebind.attacker.example:4318"),
    ("127.0.0.1", "localhost.attacker.example"), ("127.0.0.1", "sub.localhost"),
    ("127.0.0.1", "127.0.0.1.nip.io"), ("127.0.0.1", "192.0.2.5"), ("127.0.0.1", ""),
    ("127.0.0.1", None), ("127.0.0.1", "user@127.0.0.1"), ("127.0.0.1", "127.0.0.1:99999"),
    ("127.0.0.1", "[::1"), ("0.0.0.0", "rebind.attacker.example"), ("192.0.2.5", "192.0.2.6"),
])
def test_other_host_names_are_misdirected(listen: str, host: str | None) -> None:
    """Any name a page could rebind, a malformed or a missing Host: 421."""
    assert HostPolicy(listen).check(host, None) == MISDIRECTED


@pytest.mark.parametrize(("host", "origin", "served"), [
    ("127.0.0.1:9464", "http://127.0.0.1:9464", True),
    ("localhost:9464", "http://LOCALHOST:9464", True),
    ("localhost", "http://localhost:80", True),
    ("[::1]:9464", "http://[::1]:9464", True),
    ("127.0.0.1:9464", "http://localhost:9464", False),
    ("127.0.0.1:9464", "http://127.0.0.1:8080", False),
    ("127.0.0.1:9464", "https://127.0.0.1:9464", False),
    ("127.0.0.1:9464", "http://evil.example", False),
    ("127.0.0.1:9464", "null", False),
    ("127.0.0.1:9464", "", False),
])
def test_only_the_listeners_own_origin_is_served(host: str, origin: str, served: bool) -> None:
    """An Origin is served only when it is http:// + the request's own Host."""
    assert HostPolicy("127.0.0.1").check(host, origin) == (None if served else CROSS_ORIGIN)


@pytest.mark.parametrize(("host", "origin", "served"), [
    ("127.0.0.1:9464", "https://127.0.0.1:9464", True),
    ("10.0.0.2:9464", "https://10.0.0.2:9464", True),
    ("localhost", "https://localhost:443", True),
    ("127.0.0.1:9464", "http://127.0.0.1:9464", False),
    ("localhost", "https://localhost:80", False),
    ("10.0.0.2:9464", "https://evil.example:9464", False),
])
def test_a_tls_listeners_own_origin_is_https(host: str, origin: str, served: bool) -> None:
    """A listener serving TLS takes https:// + the request's own Host (port 443 by default),
    and no longer its http:// twin."""
    policy = HostPolicy("0.0.0.0", tls=True)
    assert policy.check(host, origin) == (None if served else CROSS_ORIGIN)


def test_victims_go_in_the_documented_order() -> None:
    """Long-silent, half-sent head, slow body, stuck answer, young silent; never handling."""
    now = 100.0
    views = [
        ConnectionView(1, Phase.HANDLING, 0.0),
        ConnectionView(2, Phase.SILENT, 99.9),  # young silent
        ConnectionView(3, Phase.STUCK, 90.0),
        ConnectionView(4, Phase.BODY, 90.0, progress_bytes=10),
        ConnectionView(5, Phase.BODY, 90.0, progress_bytes=10_000),
        ConnectionView(6, Phase.HEAD, 95.0, progress_bytes=3),
        ConnectionView(7, Phase.SILENT, 50.0),
        ConnectionView(8, Phase.SILENT, 60.0),
        ConnectionView(9, Phase.BODY, 99.9, progress_bytes=0),  # within the grace period
        ConnectionView(10, Phase.STUCK, 99.9),  # within the grace period
    ]
    order = []
    remaining = list(views)
    while (victim := choose_victim(remaining, now, 1.0)) is not None:
        order.append(victim)
        remaining = [v for v in remaining if v.key != victim]
    assert order == [7, 8, 6, 4, 5, 3, 2]
    assert {v.key for v in remaining} == {1, 9, 10}


def test_a_request_waiting_to_be_read_is_never_the_victim() -> None:
    """A whole request waiting in the socket protects a silent connection; the next
    candidate goes."""
    views = [ConnectionView(1, Phase.SILENT, 0.0), ConnectionView(2, Phase.SILENT, 5.0)]
    asked: list[int] = []

    def unread(key: int) -> bool:
        asked.append(key)
        return key == 1

    assert choose_victim(views, 10.0, 1.0, unread) == 2
    assert asked == [1, 2]


def test_a_full_listener_sheds_silent_newcomers_at_accept() -> None:
    """Under the cap, or with a whole request already in (up to twice the reserve):
    served; silent past the cap: shed, unless it can take the place of a long-silent
    connection no other newcomer claimed."""
    assert admit_at_accept(31, 0, 32, False, None, 1.0)
    assert not admit_at_accept(31, 1, 32, False, 0.2, 1.0)
    assert admit_at_accept(40, 5, 32, True, 0.2, 1.0, reserve=8)
    assert not admit_at_accept(43, 5, 32, True, 0.2, 1.0, reserve=8)
    assert not admit_at_accept(32, 0, 32, False, None, 1.0)
    assert admit_at_accept(32, 0, 32, False, 1.5, 1.0)
    assert not admit_at_accept(32, 1, 32, False, 1.5, 1.0)


def test_a_rendering_is_shared_within_the_interval_and_a_failure_is_not_kept() -> None:
    """Callers within the interval share one rendering; a failed one is retried next time."""
    clock = [0.0]
    renders: list[int] = []
    fail = [False]

    def render() -> bytes:
        renders.append(1)
        if fail[0]:
            raise RuntimeError("collector broke")
        return b"metrics %d" % len(renders)

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as pool:
            shared = SharedRendering(render, 2.0, pool, monotonic=lambda: clock[0])
            first = await asyncio.gather(*(shared.get() for _ in range(5)))
            assert first == [b"metrics 1"] * 5
            clock[0] = 1.9
            assert await shared.get() == b"metrics 1"
            clock[0] = 2.0
            fail[0] = True
            with pytest.raises(RuntimeError):
                await shared.get()
            fail[0] = False
            assert await shared.get() == b"metrics 3"

    asyncio.run(scenario())
    assert len(renders) == 3


def test_only_a_whole_request_head_counts_as_waiting_and_it_is_left_in_the_socket() -> None:
    """Half a head (a client that wrote part of a request and hung up) is not a request
    waiting; a whole one is, and looking at it takes nothing from the socket."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert not whole_head_waiting(ours.fileno(), 16384)
        theirs.sendall(b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert not whole_head_waiting(ours.fileno(), 16384)
        theirs.sendall(b"Content-Length: 0\r\n\r\n")
        assert whole_head_waiting(ours.fileno(), 16384)
        assert ours.recv(4096).endswith(b"\r\n\r\n")  # still there to be read
        assert not whole_head_waiting(ours.fileno(), 16384)


def test_over_tls_no_bytes_waiting_count_as_a_request() -> None:
    """A TLS listener's sockets hold ciphertext: a blank line in it would be luck, so no
    connection is kept for its bytes there, even ones that look like a whole head."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert ListenerBook(OtlpSettings.wire).request_waiting(ours.fileno())
        assert not ListenerBook(OtlpSettings.wire, tls=True).request_waiting(ours.fileno())

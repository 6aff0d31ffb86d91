"""The sender of a real loopback connection, found from its socket inode in the real /proc."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from daemon.agents.trust.peer import PeerFinder
from daemon.agents.trust.policy import WatchedTrees, belongs_to
from daemon.watch.proc.proctable import parse_stat_line

PROC = Path("/proc")
# The child starts a grandchild that connects back and waits; both print their pids.
CHAIN = textwrap.dedent("""
    import os, socket, subprocess, sys
    host, port = sys.argv[1], int(sys.argv[2])
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import os, socket, sys; s = socket.create_connection((sys.argv[1], int(sys.argv[2])));"
        "print(os.getpid(), flush=True); sys.stdin.read()", host, str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    print(os.getpid(), grandchild.stdout.readline().strip(), flush=True)
    sys.stdin.read()
    grandchild.stdin.close()
    grandchild.wait()
""")


def key_of(pid: int) -> tuple[int, int]:
    """(pid, start ticks) of a live process."""
    return parse_stat_line(pid, (PROC / str(pid) / "stat").read_text(), 100, 4096).key


@contextmanager
def connected_chain(family: int, host: str) -> Iterator[tuple[int, int, socket.socket,
                                                              tuple[str, int]]]:
    """A listening socket here, a child whose child connected to it: (child, grandchild,
    the accepted socket, the peer's address as the server sees it)."""
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.bind((host, 0))
        server.listen()
        child = subprocess.Popen([sys.executable, "-c", CHAIN, host,
                                  str(server.getsockname()[1])],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            server.settimeout(30)
            conn, address = server.accept()
            child_pid, grandchild_pid = map(int, child.stdout.readline().split())
            with conn:
                yield child_pid, grandchild_pid, conn, (address[0], address[1])
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"),
                                              (socket.AF_INET6, "::1")])
def test_a_real_child_is_found_behind_its_connection(family: int, host: str) -> None:
    """The grandchild holds the socket; its ancestry runs through the child up to pid 1, so
    a watch on the child takes it and a watch elsewhere does not."""
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
    except OSError as exc:
        pytest.skip(f"cannot listen on {host}: {exc}")
    finder = PeerFinder(PROC)
    with connected_chain(family, host) as (child, grandchild, conn, client):
        here = conn.getsockname()
        server = (here[0], here[1])
        peer = finder.lookup(client, server)
        assert peer.complete and peer.pid == grandchild
        assert [pid for pid, _ in peer.ancestry[:2]] == [grandchild, child]
        assert peer.ancestry[-1][0] == 1
        assert belongs_to(peer.ancestry, WatchedTrees({key_of(child): "agent"})) == "agent"
        assert belongs_to(peer.ancestry, WatchedTrees({(child, 0): "agent"})) is None
        assert finder.cached(client, server) == peer
    assert finder.cached(client, server) is None  # the process is gone


def test_an_ipv4_client_of_a_dual_stack_listener_is_found() -> None:
    """A listener on :: sees an IPv4 client as ::ffff:127.0.0.1; its socket is in tcp."""
    try:
        server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        server.bind(("::", 0))
    except OSError as exc:
        pytest.skip(f"no dual-stack listener here: {exc}")
    with server:
        server.listen()
        client = socket.create_connection(("127.0.0.1", server.getsockname()[1]))
        conn, address = server.accept()
        with client, conn:
            assert address[0] == "::ffff:127.0.0.1"
            here = conn.getsockname()
            peer = PeerFinder(PROC).lookup((address[0], address[1]), (here[0], here[1]))
    assert peer.pid == os.getpid()

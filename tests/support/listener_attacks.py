"""Attacks on the HTTP listeners and the well-behaved client they must not starve.

Shared by the attack tests (tests/e2e/test_fair_listeners.py) and the benchmark
(benchmarks/bench_listeners.py), so both run the same attack. Each attack runs in a child
process of its own (``Attack``), never in the process that measures, and comes back when it
is cut off, as an attacker would.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import multiprocessing
import resource
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOOPBACK = "127.0.0.1"


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- attacks (each runs in a child process until ``stop`` is set) ------------------------


def churn(port: int, stop: Any, progress: Any, threads: int = 8,
          hold_seconds: float = 2.0) -> None:
    """``threads`` threads opening connections back to back, holding each ``hold_seconds``.

    ``progress``: connections opened.
    """
    _raise_fd_limit()

    def one() -> None:
        held: collections.deque[tuple[float, socket.socket]] = collections.deque()
        while not stop.is_set():
            try:
                sock = socket.create_connection((LOOPBACK, port), timeout=2)
                held.append((time.monotonic(), sock))
                with progress.get_lock():
                    progress.value += 1
            except OSError:
                time.sleep(0.001)
            while held and time.monotonic() - held[0][0] >= hold_seconds:
                held.popleft()[1].close()
        for _, sock in held:
            sock.close()

    workers = [threading.Thread(target=one, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def half_heads(port: int, stop: Any, progress: Any, threads: int = 4) -> None:
    """``threads`` threads each opening a connection, writing half a request head and
    closing it, back to back: what reaches the listener is bytes and an end of file, never
    a whole request.

    ``progress``: connections opened.
    """
    _raise_fd_limit()
    half = f"POST /v1/metrics HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n".encode()

    def one() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection((LOOPBACK, port), timeout=2) as sock:
                    sock.sendall(half)
                with progress.get_lock():
                    progress.value += 1
            except OSError:
                time.sleep(0.001)

    workers = [threading.Thread(target=one, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def slow_bodies(port: int, stop: Any, progress: Any, clients: int = 40,
                body_bytes: int = 4096) -> None:
    """``clients`` requests whose head comes whole and whose body comes at 1 byte a second.

    ``progress``: body bytes sent.
    """
    _raise_fd_limit()
    head = (f"POST /v1/metrics HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
            f"Content-Type: application/x-protobuf\r\nContent-Length: {body_bytes}\r\n\r\n"
            ).encode()
    socks: list[socket.socket] = []
    while not stop.is_set():
        while len(socks) < clients and not stop.is_set():
            try:
                sock = socket.create_connection((LOOPBACK, port), timeout=2)
                sock.sendall(head)
                socks.append(sock)
            except OSError:
                break
        kept = []
        for sock in socks:
            try:
                sock.send(b"\0")
                kept.append(sock)
                progress.value += 1
            except OSError:
                sock.close()  # cut off: a new one takes its place
        socks = kept
        stop.wait(1.0)
    for sock in socks:
        sock.close()


def slow_readers(port: int, stop: Any, progress: Any, clients: int = 20,
                 path: str = "/metrics") -> None:
    """``clients`` scrapes that never read their answer (a 4 KiB receive buffer).

    ``progress``: requests sent.
    """
    _raise_fd_limit()
    request = f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n\r\n".encode()
    cut = select.POLLERR | select.POLLHUP | select.POLLRDHUP | select.POLLNVAL
    socks: list[socket.socket] = []
    while not stop.is_set():
        while len(socks) < clients and not stop.is_set():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                sock.settimeout(2)
                sock.connect((LOOPBACK, port))
                sock.sendall(request)
                socks.append(sock)
                progress.value += 1
            except OSError:
                sock.close()
                break
        kept = []
        for sock in socks:
            poller = select.poll()
            poller.register(sock, cut)
            if poller.poll(0):
                sock.close()  # reset or closed by the server: come back
            else:
                kept.append(sock)
        socks = kept
        stop.wait(0.2)
    for sock in socks:
        sock.close()


ATTACKS: dict[str, Callable[..., None]] = {
    "churn": churn, "half_heads": half_heads, "slow_bodies": slow_bodies,
    "slow_readers": slow_readers,
}


class Attack:
    """One attack in a child process; a context manager that stops it on exit.

    ``progress`` counts what the attack has done so far (its unit depends on the attack),
    so a test can wait until it is under way instead of sleeping.
    """

    def __init__(self, name: str, port: int, **options: Any) -> None:
        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._progress = context.Value("q", 0)
        self._child = context.Process(target=ATTACKS[name],
                                      args=(port, self._stop, self._progress),
                                      kwargs=options, daemon=True)

    @property
    def progress(self) -> int:
        """What the attack has done so far."""
        return int(self._progress.value)

    def __enter__(self) -> Attack:
        self._child.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._child.join(20)
        if self._child.is_alive():
            self._child.kill()
            self._child.join(5)


# --- the well-behaved client -------------------------------------------------------------


def exchange(port: int, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None, timeout: float = 10.0) -> int:
    """One request on a fresh connection, the answer read whole: its status, 0 if it failed.

    A fresh connection each time, a 10 s timeout (the OTLP exporters' default).
    """
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


@dataclass
class Tally:
    """What a well-behaved client saw: one status per request (0: no answer)."""

    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def ok(self) -> int:
        """Requests answered 200."""
        return sum(1 for s in self.statuses if s == 200)

    @property
    def share(self) -> float:
        """The share of requests answered 200."""
        return self.ok / len(self.statuses) if self.statuses else 0.0

    def __str__(self) -> str:
        counts = collections.Counter(self.statuses)
        return (f"{self.ok}/{len(self.statuses)} ok ({self.share:.0%}); statuses "
                f"{dict(sorted(counts.items()))}")


def well_behaved(send: Callable[[], int], requests: int, every_seconds: float) -> Tally:
    """``requests`` requests, one every ``every_seconds`` (or right after a slow one)."""
    tally = Tally()
    for _ in range(requests):
        started = time.monotonic()
        tally.statuses.append(send())
        tally.seconds.append(time.monotonic() - started)
        time.sleep(max(0.0, every_seconds - (time.monotonic() - started)))
    return tally

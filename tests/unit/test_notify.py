"""The sd_notify client against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.system.notify import Notifier

RECV_DEADLINE_SECONDS = 10.0


class Listener:
    """A bound datagram socket and the NOTIFY_SOCKET value that names it."""

    def __init__(self, sock: socket.socket, notify_socket: str) -> None:
        self.sock = sock
        self.notify_socket = notify_socket

    def recv(self) -> bytes:
        """Return the next datagram, failing the test if none arrives before the deadline."""
        self.sock.settimeout(RECV_DEADLINE_SECONDS)
        return self.sock.recv(65536)

    def recv_with_sender_pid(self) -> tuple[bytes, int]:
        """Return the next datagram and the pid the kernel says sent it (SCM_CREDENTIALS)."""
        self.sock.settimeout(RECV_DEADLINE_SECONDS)
        creds_size = struct.calcsize("3i")
        data, ancdata, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(creds_size))
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _uid, _gid = struct.unpack("3i", payload[:creds_size])
                return data, pid
        raise AssertionError("no SCM_CREDENTIALS on the datagram")

    def assert_empty(self) -> None:
        """Fail if a datagram is waiting (checked without blocking)."""
        self.sock.setblocking(False)
        try:
            extra = self.sock.recv(65536)
        except BlockingIOError:
            return
        finally:
            self.sock.setblocking(True)
        raise AssertionError(f"unexpected datagram {extra!r}")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: AF_UNIX paths are limited to 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="tdn-", dir="/tmp") as name:
        yield Path(name)


@pytest.fixture
def path_listener(short_dir: Path) -> Iterator[Listener]:
    """A listener bound to a filesystem path, as systemd's /run/systemd/notify is."""
    address = str(short_dir / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        yield Listener(sock, address)


@pytest.fixture
def abstract_listener() -> Iterator[Listener]:
    """A listener bound to an abstract name, as systemd uses for user managers and tests."""
    name = f"telemetryd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        yield Listener(sock, "@" + name)


def test_ready_sends_exactly_ready_to_a_path_socket(path_listener: Listener) -> None:
    """ready() sends the single datagram b"READY=1" to a filesystem socket."""
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path_listener.notify_socket})
    assert notifier.enabled
    assert notifier.ready() is True
    assert path_listener.recv() == b"READY=1"
    path_listener.assert_empty()


def test_each_message_is_exact_on_an_abstract_socket(abstract_listener: Listener) -> None:
    """Every method sends its documented datagram, one per call, to an @abstract socket."""
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": abstract_listener.notify_socket})
    assert notifier.ready()
    assert notifier.watchdog()
    assert notifier.status("watching 3 processes")
    assert notifier.reloading(monotonic_usec=123456789)
    assert notifier.stopping()
    received = [abstract_listener.recv() for _ in range(5)]
    assert received == [
        b"READY=1",
        b"WATCHDOG=1",
        b"STATUS=watching 3 processes",
        b"RELOADING=1\nMONOTONIC_USEC=123456789",
        b"STOPPING=1",
    ]
    abstract_listener.assert_empty()


def test_reloading_stamps_clock_monotonic_in_microseconds(abstract_listener: Listener) -> None:
    """Without an explicit time, RELOADING carries CLOCK_MONOTONIC in µs, as systemd compares."""
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": abstract_listener.notify_socket})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = abstract_listener.recv().split(b"\n")
    assert first == b"RELOADING=1"
    key, _, value = second.partition(b"=")
    assert key == b"MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_status_with_newlines_stays_one_assignment(abstract_listener: Listener) -> None:
    """A newline in status text cannot smuggle a second assignment (READY=1) into the message."""
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": abstract_listener.notify_socket})
    assert notifier.status("bad\nREADY=1")
    assert abstract_listener.recv() == b"STATUS=bad READY=1"


def test_messages_come_from_the_calling_process(abstract_listener: Listener) -> None:
    """The kernel-attested sender is this process, which NotifyAccess=main requires."""
    abstract_listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": abstract_listener.notify_socket})
    assert notifier.watchdog()
    data, pid = abstract_listener.recv_with_sender_pid()
    assert data == b"WATCHDOG=1"
    assert pid == os.getpid()


def test_without_notify_socket_every_call_is_a_silent_no_op() -> None:
    """Outside systemd the notifier is disabled: nothing is sent, nothing raised or logged."""
    for environ in ({}, {"NOTIFY_SOCKET": ""}):
        notifier = Notifier.from_environ(environ)
        with capture_logs() as logs:
            results = [
                notifier.ready(),
                notifier.watchdog(),
                notifier.status("x"),
                notifier.reloading(),
                notifier.stopping(),
            ]
        assert not notifier.enabled
        assert results == [False] * 5
        assert logs == []


@pytest.mark.parametrize("value", ["vsock:2:1234", "run/relative", "@"])
def test_unusable_notify_socket_disables_with_a_warning(value: str) -> None:
    """A NOTIFY_SOCKET this client cannot use is reported once and then ignored."""
    with capture_logs() as logs:
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": value})
        assert notifier.ready() is False
    assert not notifier.enabled
    assert [(e["event"], e["log_level"], e["notify_socket"]) for e in logs] == [
        ("notify.unsupported_socket", "warning", value)
    ]


def test_send_errors_never_raise_and_log_once_per_outage(short_dir: Path) -> None:
    """A vanished socket logs notify.error once however many pings fail, then logs recovery."""
    address = str(short_dir / "notify")
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": address})
    with capture_logs() as logs:
        assert notifier.watchdog() is False
        assert notifier.watchdog() is False
        assert notifier.status("still down") is False
    assert [e["event"] for e in logs] == ["notify.error"]
    assert logs[0]["log_level"] == "error"
    assert logs[0]["notify_socket"] == address
    assert logs[0]["key"] == "WATCHDOG"
    assert "No such file" in logs[0]["error"]

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        with capture_logs() as logs:
            assert notifier.watchdog() is True
            assert notifier.watchdog() is True
        sock.settimeout(RECV_DEADLINE_SECONDS)
        assert [sock.recv(100), sock.recv(100)] == [b"WATCHDOG=1", b"WATCHDOG=1"]
    assert [e["event"] for e in logs] == ["notify.recovered"]

    Path(address).unlink()
    with capture_logs() as logs:
        assert notifier.stopping() is False
    assert [e["event"] for e in logs] == ["notify.error"]


def test_oversized_message_is_refused_without_raising(abstract_listener: Listener) -> None:
    """A status too large for one datagram fails softly (False and a log), not with an exception."""
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": abstract_listener.notify_socket})
    with capture_logs() as logs:
        assert notifier.status("x" * (4 * 1024 * 1024)) is False
    assert [e["event"] for e in logs] == ["notify.error"]
    abstract_listener.assert_empty()


def test_watchdog_interval_from_watchdog_usec() -> None:
    """WATCHDOG_USEC=30000000 means a 30 s timeout, pinged every 15 s."""
    notifier = Notifier.from_environ(
        {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert notifier.watchdog_interval_seconds() == 30.0
    assert notifier.watchdog_ping_seconds() == 15.0


def test_watchdog_without_pid_check_applies_to_this_process() -> None:
    """WATCHDOG_USEC alone (no WATCHDOG_PID) is taken as meant for us."""
    notifier = Notifier.from_environ({"WATCHDOG_USEC": "2500000"}, pid=42)
    assert notifier.watchdog_interval_seconds() == 2.5


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "43"},
        {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "not-a-pid"},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": ""},
        {"WATCHDOG_USEC": "-5"},
        {"WATCHDOG_USEC": "30s"},
        {"WATCHDOG_USEC": "\u00b3"},
        {"WATCHDOG_USEC": " 100"},
    ],
)
def test_no_watchdog_when_unset_invalid_or_for_another_pid(environ: dict[str, str]) -> None:
    """A missing, malformed or zero WATCHDOG_USEC, or one for another pid, means no watchdog."""
    notifier = Notifier.from_environ(environ, pid=42)
    assert notifier.watchdog_interval_seconds() is None
    assert notifier.watchdog_ping_seconds() is None


def test_status_survives_non_ascii_text(abstract_listener: Listener) -> None:
    """Status text is sent as UTF-8, as systemd expects."""
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": abstract_listener.notify_socket})
    assert notifier.status("agent “claude” at 1.2 GiB")
    assert abstract_listener.recv() == "STATUS=agent “claude” at 1.2 GiB".encode()

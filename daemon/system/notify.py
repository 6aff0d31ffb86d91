"""sd_notify client: tells systemd over ``$NOTIFY_SOCKET`` the daemon is ready, alive, stopping.

Without ``$NOTIFY_SOCKET`` (not under systemd, or under launchd) every call is a no-op.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger(component="systemd")

# systemd reads the socket promptly; a bound on the send keeps a stuck manager from
# stalling the daemon's main loop for more than this.
SEND_TIMEOUT_SECONDS = 1.0

_UINT = re.compile(r"[0-9]{1,19}")


def parse_socket_address(value: str | None) -> str | None:
    r"""Return the ``AF_UNIX`` address named by ``$NOTIFY_SOCKET``, or None if unusable.

    An ``@`` prefix names an abstract socket (a leading NUL byte on the wire).

    >>> parse_socket_address("/run/systemd/notify")
    '/run/systemd/notify'
    >>> parse_socket_address("@telemetryd/notify")
    '\x00telemetryd/notify'
    >>> parse_socket_address("vsock:2:1234") is None
    True
    """
    if not value:
        return None
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def parse_watchdog_seconds(environ: Mapping[str, str], pid: int) -> float | None:
    """Return the watchdog timeout systemd set for process ``pid``, or None if it set none.

    >>> parse_watchdog_seconds({"WATCHDOG_USEC": "30000000"}, pid=7)
    30.0
    >>> parse_watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"}, pid=7) is None
    True
    """
    raw_usec = environ.get("WATCHDOG_USEC")
    if raw_usec is None:
        return None
    raw_pid = environ.get("WATCHDOG_PID")
    # A WATCHDOG_PID naming another process means the variables were meant for it.
    if raw_pid is not None and _parse_uint(raw_pid) != pid:
        return None
    usec = _parse_uint(raw_usec)
    if not usec:
        return None
    return usec / 1_000_000


def _parse_uint(text: str) -> int | None:
    # Not str.isdigit(): it accepts digits such as "\u00b3" that int() rejects.
    return int(text) if _UINT.fullmatch(text) else None


def format_message(fields: Mapping[str, str]) -> bytes:
    r"""Return the datagram for ``fields``: ``KEY=value`` lines, newlines in values flattened.

    >>> format_message({"STATUS": "two\nlines", "READY": "1"})
    b'STATUS=two lines\nREADY=1'
    """
    lines = [f"{key}={value.replace(chr(10), ' ')}" for key, value in fields.items()]
    return "\n".join(lines).encode()


@dataclass
class Notifier:
    """Sends sd_notify messages to ``address``; a Notifier with no address sends nothing."""

    address: str | None
    watchdog_seconds: float | None = None
    _failing: bool = field(default=False, init=False, repr=False, compare=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], pid: int | None = None) -> Notifier:
        """Build a Notifier from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``."""
        raw_socket = environ.get("NOTIFY_SOCKET")
        address = parse_socket_address(raw_socket)
        if raw_socket and address is None:
            log.warning("notify.unsupported_socket", notify_socket=raw_socket)
        own_pid = os.getpid() if pid is None else pid
        return cls(address=address, watchdog_seconds=parse_watchdog_seconds(environ, own_pid))

    @property
    def enabled(self) -> bool:
        """Whether messages are sent at all (the service manager gave a socket)."""
        return self.address is not None

    def watchdog_interval_seconds(self) -> float | None:
        """Return the watchdog timeout (``WATCHDOG_USEC``) in seconds, or None if there is none."""
        return self.watchdog_seconds

    def watchdog_ping_seconds(self) -> float | None:
        """Return how often to call ``watchdog()``: half the timeout, as systemd advises."""
        return None if self.watchdog_seconds is None else self.watchdog_seconds / 2

    def ready(self) -> bool:
        """Tell the manager start-up (or a reload) has finished."""
        return self.send({"READY": "1"})

    def watchdog(self) -> bool:
        """Tell the manager the main loop is alive."""
        return self.send({"WATCHDOG": "1"})

    def stopping(self) -> bool:
        """Tell the manager the daemon has begun shutting down."""
        return self.send({"STOPPING": "1"})

    def status(self, text: str) -> bool:
        """Set the one-line status ``systemctl status`` shows."""
        return self.send({"STATUS": text})

    def reloading(self, monotonic_usec: int | None = None) -> bool:
        """Tell the manager a reload has begun; call ``ready()`` when it is done."""
        # MONOTONIC_USEC lets the manager match this reload to the request that caused it.
        usec = time.monotonic_ns() // 1000 if monotonic_usec is None else monotonic_usec
        return self.send({"RELOADING": "1", "MONOTONIC_USEC": str(usec)})

    def send(self, fields: Mapping[str, str]) -> bool:
        """Send one message; return whether it was delivered. Never raises."""
        if self.address is None:
            return False
        message = format_message(fields)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(SEND_TIMEOUT_SECONDS)
                sock.sendto(message, self.address)
        except OSError as exc:
            # Logged once per run of failures: a watchdog ping every few seconds to a
            # vanished socket must not flood the journal.
            if not self._failing:
                self._failing = True
                log.error(
                    "notify.error",
                    notify_socket=self._printable_address(),
                    key=next(iter(fields), ""),
                    error=str(exc),
                )
            return False
        if self._failing:
            self._failing = False
            log.info("notify.recovered", notify_socket=self._printable_address())
        return True

    def _printable_address(self) -> str | None:
        if self.address is None:
            return None
        return "@" + self.address[1:] if self.address.startswith("\0") else self.address

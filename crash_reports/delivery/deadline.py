"""A total deadline for one HTTP exchange, and a way to cancel it from another thread.

``http.client``'s timeout applies to each socket operation: a server that sends one byte a
second never lets a read time out, so an upload could last forever. While an exchange runs,
a small watchdog thread waits for the deadline or the caller's cancel event; when time is
up it shuts the connection's socket down, and the blocked read returns at once. A cancel
leaves the exchange ``CANCEL_GRACE_SECONDS`` to finish first: an answer already on its way
is read (the report is then marked delivered, not sent twice); a trickle is cut there.
(A DNS lookup cannot be interrupted this way: the connect timeout bounds it only as far
as the resolver allows; the flush worker does not wait for it on stop.)
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

# How often the watchdog looks at the cancel event.
CANCEL_POLL_SECONDS = 0.05
# What a cancelled exchange still gets to finish: the most a stop waits behind an upload.
CANCEL_GRACE_SECONDS = 1.0


@dataclass
class Expiry:
    """Why the watchdog ended the exchange (``"timed out"`` or ``"cancelled"``), or None."""

    reason: str | None = None


@contextlib.contextmanager
def bounded(connection: http.client.HTTPConnection, seconds: float,
            cancel: threading.Event | None = None) -> Iterator[Expiry]:
    """Run the body with ``connection`` shut down after ``seconds``, or
    ``CANCEL_GRACE_SECONDS`` after ``cancel`` is set, whichever comes first; the yielded
    ``Expiry`` says whether (and why) that happened.

    A connection still connecting when time runs out has no socket to shut down yet: the
    caller checks ``reason`` after connecting.
    """
    expiry = Expiry()
    done = threading.Event()
    deadline = time.monotonic() + seconds

    def watch() -> None:
        ends_at, reason = deadline, "timed out"
        while True:
            now = time.monotonic()
            if reason == "timed out" and cancel is not None and cancel.is_set() and \
                    now + CANCEL_GRACE_SECONDS < ends_at:
                ends_at, reason = now + CANCEL_GRACE_SECONDS, "cancelled"
            if now >= ends_at:
                break
            if done.wait(min(ends_at - now, CANCEL_POLL_SECONDS)):
                return
        expiry.reason = reason  # set before the socket is read: see the caller's check
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                # The plain socket's shutdown, also for TLS: it wakes a blocked read
                # without touching the TLS object another thread is using.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    watchdog = threading.Thread(target=watch, name="telemetryd-upload-deadline", daemon=True)
    watchdog.start()
    try:
        yield expiry
    finally:
        done.set()
        watchdog.join()

"""Signals are recorded by their handlers and acted on by the main loop.

A Python signal handler runs in the main thread between two bytecodes, whatever that thread
was doing: maybe writing a log line under structlog's write lock, or inside a
``threading.Event`` (whose lock is not re-entrant), or inside an earlier handler. So a handler
here, like uvicorn's ``Server.handle_exit`` and supervisor's ``SignalReceiver``, only stores
into a slot of ``SignalFlags``: no log line, no lock, no allocation, no other call. What
wakes the main loop is the C half of Python's signal handling, which writes the signal number
to a socket (``signal.set_wakeup_fd``) before any Python code runs. The main loop logs, stops
and reloads; ``ReloadBurst`` turns a storm of SIGHUPs into one reload.
"""

from __future__ import annotations

import contextlib
import selectors
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_SIGHUP = int(signal.SIGHUP)
RELOAD_QUIET_SECONDS = 0.25
RELOAD_LONGEST_SECONDS = 5.0
WAKE_BYTES = 4096


class SignalFlags:
    """What the handlers recorded, and the socket that wakes the main loop (made on first use)."""

    __slots__ = ("_read", "_selector", "_write", "reload", "stop", "stop_signal")

    def __init__(self) -> None:
        self.stop = False
        self.stop_signal = 0  # the signal number that asked to stop (0: asked by a call)
        self.reload = False
        self._read: socket.socket | None = None
        self._write: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None

    # --- in the handler: stores only --------------------------------------------------

    def record(self, signum: int, frame: FrameType | None) -> None:
        """The handler of every captured signal."""
        if signum == _SIGHUP:
            self.reload = True
        else:
            self.stop_signal = signum
            self.stop = True

    # --- anywhere else ----------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the main loop to stop (from any thread)."""
        self.stop = True
        self.wake()

    def wake(self) -> None:
        """Wake the main loop's ``wait`` (from any thread)."""
        if self._write is not None:
            with contextlib.suppress(OSError):
                self._write.send(b"\0")

    def wait(self, timeout: float) -> None:
        """Sleep until a signal or a wake, or ``timeout`` seconds; then drain the socket."""
        selector, read = self._open()
        if not (self.stop or self.reload):
            selector.select(max(0.0, timeout))
        with contextlib.suppress(OSError):
            while read.recv(WAKE_BYTES):
                pass

    def take_reload(self) -> bool:
        """Whether a SIGHUP came since the last call (then cleared)."""
        if not self.reload:
            return False
        self.reload = False
        return True

    def wakeup_fd(self) -> int:
        """The descriptor ``signal.set_wakeup_fd`` writes to."""
        self._open()
        assert self._write is not None
        return self._write.fileno()

    def close(self) -> None:
        """Close the wake socket (it is made again if needed)."""
        if self._selector is not None:
            self._selector.close()
        for sock in (self._read, self._write):
            if sock is not None:
                sock.close()
        self._read = self._write = self._selector = None

    def _open(self) -> tuple[selectors.BaseSelector, socket.socket]:
        if self._selector is None or self._read is None:
            read, write = socket.socketpair()
            read.setblocking(False)
            write.setblocking(False)  # set_wakeup_fd needs it; a full socket drops a byte
            selector = selectors.DefaultSelector()
            selector.register(read, selectors.EVENT_READ)
            self._read, self._write, self._selector = read, write, selector
        return self._selector, self._read


@contextlib.contextmanager
def capture_signals(flags: SignalFlags) -> Iterator[SignalFlags]:
    """SIGTERM/SIGINT/SIGHUP recorded into ``flags``; the old handlers restored after.

    Off the main thread (where Python cannot install handlers) nothing is installed; the
    flags still work through ``request_stop``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield flags
        return
    previous_fd = signal.set_wakeup_fd(flags.wakeup_fd(), warn_on_full_buffer=False)
    previous = {}
    try:
        for signum in (*STOP_SIGNALS, signal.SIGHUP):
            previous[signum] = signal.signal(signum, flags.record)
        yield flags
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)


@dataclass
class ReloadBurst:
    """SIGHUPs close together are one reload: due once they have been quiet for
    ``quiet_seconds``, or ``longest_seconds`` after the first if they never stop (pure).

    >>> burst = ReloadBurst(quiet_seconds=0.25, longest_seconds=5.0)
    >>> burst.note(10.0); burst.note(10.1); burst.due(10.2)
    False
    >>> burst.seconds_left(10.2)
    0.15
    >>> burst.due(10.36), burst.due(10.4)
    (True, False)
    >>> for at in range(0, 60):
    ...     burst.note(20.0 + at / 10)  # a storm that lasts six seconds
    >>> burst.due(25.0), burst.due(25.1)
    (True, False)
    """

    quiet_seconds: float = RELOAD_QUIET_SECONDS
    longest_seconds: float = RELOAD_LONGEST_SECONDS
    _first: float | None = None
    _last: float = 0.0

    def note(self, now: float) -> None:
        """A SIGHUP was seen at ``now`` (monotonic)."""
        if self._first is None:
            self._first = now
        self._last = now

    def seconds_left(self, now: float) -> float | None:
        """How long until the reload is due (None: nothing pending)."""
        if self._first is None:
            return None
        due_at = min(self._last + self.quiet_seconds, self._first + self.longest_seconds)
        return round(max(0.0, due_at - now), 6)

    def due(self, now: float) -> bool:
        """Whether to reload now; a reload that is due is taken (the burst starts over)."""
        left = self.seconds_left(now)
        if left is None or left > 0:
            return False
        self._first = None
        return True

"""uvicorn's h11 protocol with the deadlines and the admission a hostile local client needs.

What this subclass adds to ``uvicorn.protocols.http.h11_impl.H11Protocol``:

- a request head must arrive whole within ``read_timeout_seconds`` of the connection
  opening or of the previous answer, however slowly it trickles in;
- every connection knows its phase (``fairness.Phase``) and how fast it progresses; past
  ``max_connections`` a new connection evicts the victim ``fairness.choose_victim`` picks
  (silent, slow or stuck connections; never a request that arrived whole);
- an answer must leave the write buffer within ``write_timeout_seconds`` once the buffer
  passed its high-water mark (a client that does not read is cut off, its buffer freed);
  an idle connection with unsent bytes is aborted, never left to flush forever;
- a half-closed client still gets its answer.

The shared per-listener state (limits, counters) is a ``ListenerBook``; ``server.py`` builds
one subclass per listener with ``protocol_for``.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import fcntl
import socket
import struct
import termios
import time
from dataclasses import dataclass, field

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

from daemon.web.http.fairness import ConnectionView, Phase, admit_at_accept, choose_victim
from daemon.web.http.routes import ListenerLimits

# The write buffer's high-water mark; the low one is 0, so resume_writing() means "empty".
WRITE_HIGH_WATER_BYTES = 64 * 1024
# How long a phase runs before a connection may be judged slow or stuck.
GRACE_SECONDS = 1.0


@dataclass
class ListenerBook:
    """What every connection of one listener shares: its limits, its open connections and
    its counters (all touched on the loop thread only)."""

    limits: ListenerLimits
    # Over TLS the bytes waiting in a socket are ciphertext: they never show a whole request,
    # so no connection is kept for them (each competes by what it has done).
    tls: bool = False
    connections: set[GuardedH11] = field(default_factory=set)
    # Connections with nothing received since they opened or since their last answer, in
    # the order they fell silent (the oldest first), with that time.
    silent: dict[GuardedH11, float] = field(default_factory=dict)
    # Connections admitted by accept() whose connection_made has not run yet (asyncio
    # accepts a batch before building any): when each was admitted.
    admitted: collections.deque[float] = field(default_factory=collections.deque)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def reserve(self) -> int:
        """Connections allowed past the cap while nothing can be evicted (requests that
        arrived whole); past ``max_connections + reserve`` a request gets 503."""
        return max(4, self.limits.max_connections // 4)

    def count(self, name: str) -> None:
        """Add one to a counter."""
        self.counts[name] = self.counts.get(name, 0) + 1

    def open_connections(self) -> list[GuardedH11]:
        """Connections neither closed nor closing (``connections`` holds few others: those
        this module closes leave it at once, the rest when their close completes)."""
        return [c for c in self.connections if not c.transport.is_closing()]

    def admits(self, fd: int) -> bool:
        """Whether a connection just accepted (not yet read) is served: ``admit_at_accept``."""
        now = time.monotonic()
        while self.admitted and now - self.admitted[0] > GRACE_SECONDS:
            self.admitted.popleft()  # never built (the accept failed): forget it
        oldest = next(iter(self.silent.values()), None)
        held = len(self.connections) + len(self.admitted)
        # Looked at only when it can matter (a peek costs ten times a FIONREAD).
        waiting = (held >= self.limits.max_connections + self.reserve
                   and self.request_waiting(fd))
        admitted = admit_at_accept(len(self.connections), len(self.admitted),
                                   self.limits.max_connections, waiting,
                                   None if oldest is None else now - oldest, GRACE_SECONDS,
                                   self.reserve)
        if admitted:
            self.admitted.append(now)
        else:
            self.count("shed")
        return admitted

    def request_waiting(self, fd: int) -> bool:
        """Whether a whole request head waits unread in this socket (never over TLS)."""
        return not self.tls and whole_head_waiting(fd, self.limits.max_header_bytes)

    def crowded(self) -> bool:
        """Whether a request that arrived whole must get 503: the listener is past its cap
        and its reserve, and no silent, half-sent or stuck connection can go, whatever its
        age (a complete request is worth more than one still within its grace period)."""
        open_now = {id(c): c for c in self.open_connections()}
        if len(open_now) <= self.limits.max_connections + self.reserve:
            return False
        now = time.monotonic()
        views = [view for c in open_now.values()
                 if (view := c.view(now)).phase in (Phase.SILENT, Phase.HEAD, Phase.STUCK)]
        victim = choose_victim(views, now, 0.0, lambda key: open_now[key].request_waiting())
        if victim is None:
            return True
        open_now[victim].drop(evicted=True)
        return False


class GuardedH11(H11Protocol):
    """One connection of a listener; ``book`` is set on the per-listener subclass."""

    book: ListenerBook

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER_BYTES, low=0)
        now = time.monotonic()
        if self.book.admitted:
            self.book.admitted.popleft()  # built: no longer pending
        self.book.connections.add(self)
        self.book.silent[self] = now
        self.peer_closed = False
        self.phase_since = now
        self.progress_bytes = 0
        self.cycle_seen: RequestResponseCycle | None = None
        self.stuck_since: float | None = None
        self.write_deadline: asyncio.TimerHandle | None = None
        self._arm(self.book.limits.read_timeout_seconds)
        self._admit(now)

    # --- reading --------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # uvicorn cancels the idle timer on any byte; here only a whole request head does,
        # so a client trickling one byte at a time cannot hold the connection.
        if not self._busy() or self.cycle.more_body:
            self.progress_bytes += len(data)
        self.book.silent.pop(self, None)
        self.conn.receive_data(data)
        self.handle_events()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self.cycle_seen:  # a request head was parsed: the body begins
            self.cycle_seen = self.cycle
            self.phase_since = time.monotonic()
            self.progress_bytes = 0

    def eof_received(self) -> bool:  # type: ignore[override]
        # A client may half-close after sending its request and still read the answer
        # (uvicorn would close at once); close only when no answer is owed.
        if not self._busy() or self.cycle.more_body:
            self.drop()
            return False
        self.peer_closed = True
        return True

    # --- writing --------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stuck()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._unstuck()  # the low-water mark is 0: the buffer is empty

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._busy() and not self.transport.is_closing():
            # not closing, and no pipelined request started by the call above: silent again
            self.phase_since, self.progress_bytes = time.monotonic(), 0
            self.book.silent[self] = self.phase_since
        if self.transport.get_write_buffer_size():
            self._stuck()  # the tail of the answer is still waiting for the client
        if self.peer_closed:
            self.drop()

    def _stuck(self) -> None:
        if self.write_deadline is None:
            self.stuck_since = time.monotonic()
            self.write_deadline = self.loop.call_later(
                self.book.limits.write_timeout_seconds, self._write_deadline_passed)

    def _unstuck(self) -> None:
        if self.write_deadline is not None:
            self.write_deadline.cancel()
        self.write_deadline = self.stuck_since = None

    def _write_deadline_passed(self) -> None:
        self.write_deadline = None
        if not self.transport.get_write_buffer_size() and not self.flow.write_paused:
            self.stuck_since = None
            return
        self.book.count("write_timeout")
        self.drop()

    # --- admission ------------------------------------------------------------------

    def _admit(self, now: float) -> None:
        """Past the cap, evict victims until back at it (or nothing may be evicted)."""
        open_now = {id(c): c for c in self.book.open_connections()}
        while len(open_now) > self.book.limits.max_connections:
            victim = choose_victim([c.view(now) for c in open_now.values()], now, GRACE_SECONDS,
                                   lambda key: open_now[key].request_waiting())
            if victim is None:
                return
            open_now.pop(victim).drop(evicted=True)

    def view(self, now: float) -> ConnectionView:
        """What this connection is doing, for ``choose_victim``."""
        key = id(self)
        if self.stuck_since is not None:
            return ConnectionView(key, Phase.STUCK, self.stuck_since)
        if not self._busy():
            phase = Phase.HEAD if self.progress_bytes else Phase.SILENT
            return ConnectionView(key, phase, self.phase_since, self.progress_bytes)
        if self.cycle.more_body:
            return ConnectionView(key, Phase.BODY, self.phase_since, self.progress_bytes)
        return ConnectionView(key, Phase.HANDLING, self.phase_since)

    def request_waiting(self) -> bool:
        """Whether the socket holds the end of a request head not read yet (a request that
        arrived whole while the loop was busy)."""
        sock = self.transport.get_extra_info("socket")
        return sock is not None and self.book.request_waiting(sock.fileno())

    # --- closing --------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._unset_keepalive_if_required()
        handler = self.timeout_keep_alive_handler
        self.timeout_keep_alive_task = self.loop.call_later(seconds, handler)

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def drop(self, *, evicted: bool = False) -> None:
        """Close now: politely when nothing is left to send, else abort (buffer freed)."""
        self.book.connections.discard(self)
        self.book.silent.pop(self, None)
        if evicted:
            self.book.count("evicted")
        if self.transport.get_write_buffer_size() or self.stuck_since is not None:
            self._reset()  # even one already closing: it would wait for the client
            return
        if self.transport.is_closing():
            return
        if self.conn.our_state is h11.IDLE or self.conn.our_state is h11.DONE:
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()

    def _reset(self) -> None:
        """Abort with a reset: the kernel drops what it still holds for a client that does
        not read, instead of keeping it (and the connection) until the client does."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def timeout_keep_alive_handler(self) -> None:
        self.drop()

    def shutdown(self) -> None:
        # On stop, an answer the client is not reading is not waited for.
        if self.stuck_since is not None:
            self.drop()
            return
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self.book.connections.discard(self)
        self.book.silent.pop(self, None)
        self._unstuck()
        super().connection_lost(exc)


def whole_head_waiting(fd: int, max_header_bytes: int) -> bool:
    """Whether a socket's unread bytes hold the end of a request head (looked at, not
    taken: ``MSG_PEEK``, at most ``max_header_bytes``). A head whose first lines were read
    already ends here too; one that arrives split exactly at its blank line is missed, and
    only costs its client the protection."""
    if not unread_bytes(fd):
        return False  # the common case, without building a socket object
    sock: socket.socket | None = None
    try:
        sock = socket.socket(fileno=fd)  # a view of the connection's fd: detached, not closed
        sock.settimeout(0)  # never wait, whatever socket.setdefaulttimeout() says
        waiting = sock.recv(max_header_bytes + 4, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError:
        return False
    finally:
        if sock is not None:
            sock.detach()
    return b"\r\n\r\n" in waiting or b"\n\n" in waiting


def unread_bytes(fd: int) -> int:
    """Bytes waiting in a socket's receive queue (FIONREAD); 0 if it cannot be read."""
    waiting = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, waiting)
    except OSError:
        return 0
    return int(waiting[0])


def protocol_for(book: ListenerBook) -> type[GuardedH11]:
    """A subclass of ``GuardedH11`` bound to one listener's book."""
    return type("GuardedH11ForListener", (GuardedH11,), {"book": book})

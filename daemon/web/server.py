"""One HTTP host for every listener of the daemon: uvicorn (h11) on one event-loop thread.

uvicorn with h11 parses the wire (request line, headers, chunk sizes, Content-Length) and
refuses malformed input with a 400; what it leaves open is closed here, in a subclass of its
h11 protocol and in the ASGI app of ``daemon.web.routes``:

- a request head (line + headers) must arrive whole within ``read_timeout_seconds`` of the
  connection opening or of the previous answer, however slowly it trickles in; an idle
  keep-alive connection is closed after ``keepalive_timeout_seconds``;
- past ``max_connections`` a new connection evicts the oldest one that is not in the middle
  of a request (a slow or idle client); when every slot is busy, the request gets a 503;
- the head is bounded by h11 (``max_header_bytes``), the body and its inflated size by the app.

Why uvicorn + h11 and not aiohttp: see the README's "HTTP stack" section.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import h11
import structlog
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from daemon.web.routes import ListenerLimits, RouteTable, make_app

log = structlog.get_logger(__name__)
_SHUTDOWN_SECONDS = 3.0


class _GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline on the request head and eviction past the cap."""

    limits: ListenerLimits
    evicted: list[int]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.opened = time.monotonic()
        self._arm(self.limits.read_timeout_seconds)
        open_now = sum(1 for c in self.connections if not c.transport.is_closing())
        if open_now > self.limits.max_connections:
            self._evict_one()

    def data_received(self, data: bytes) -> None:
        # uvicorn cancels the idle timer on any byte; here only a whole request head does,
        # so a client trickling one byte at a time cannot hold the connection.
        self.conn.receive_data(data)
        self.handle_events()

    def eof_received(self) -> bool:  # type: ignore[override]
        # A client may half-close after sending its request and still read the answer
        # (uvicorn would close at once); close only when no answer is owed.
        if not self._busy() or self.cycle.more_body:
            self.transport.close()
            return False
        self.peer_closed = True
        return True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if getattr(self, "peer_closed", False):
            self.transport.close()
        elif self.timeout_keep_alive_task is not None:
            self.opened = time.monotonic()

    def _arm(self, seconds: float) -> None:
        self._unset_keepalive_if_required()
        handler = self.timeout_keep_alive_handler
        self.timeout_keep_alive_task = self.loop.call_later(seconds, handler)

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _evict_one(self) -> None:
        idle = [c for c in self.connections if isinstance(c, _GuardedH11) and c is not self
                and not c._busy() and not c.transport.is_closing()]
        if not idle:
            return  # every slot is mid-request: uvicorn answers this one 503
        victim = min(idle, key=lambda c: c.opened)
        self.evicted[0] += 1
        victim.timeout_keep_alive_handler()

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            if self.conn.our_state is h11.IDLE or self.conn.our_state is h11.DONE:
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()


class _QuietServer(uvicorn.Server):
    """uvicorn's server, its housekeeping once a second instead of ten times.

    uvicorn's main loop wakes every 0.1 s to refresh a Date header (not sent here) and to
    look at ``should_exit``: idle, those wake-ups were a fifth of the daemon's CPU. This
    one runs the same ``on_tick`` once a second and leaves at once when ``wake`` is called
    (``Listener.stop`` does, from the daemon's thread).
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Stop waiting for the next housekeeping round (call on the server's loop)."""
        self._woken.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000  # every round is a "once a second" one
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), 1.0)
            self._woken.clear()


@dataclass
class Listener:
    """One bound socket served by the host; ``stop()`` closes it."""

    name: str
    port: int
    server: _QuietServer
    done: Future[None]
    evicted: list[int]
    loop: asyncio.AbstractEventLoop

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish requests in flight (bounded), close the socket."""
        self.server.should_exit = True
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.server.wake)
        try:
            self.done.result(timeout)
        except Exception as exc:  # stopping must not raise out of the daemon's shutdown
            log.error("http.stop_failed", listener=self.name, error=type(exc).__name__)
        log.info("http.stopped", listener=self.name, port=self.port)

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self.server.server_state.connections)

    def stats(self) -> dict[str, int]:
        """Connections open and evicted, for status and /metrics."""
        return {"connections": self.connections, "connections_evicted": self.evicted[0]}


class HttpHost:
    """An asyncio loop on one daemon thread, started with the first listener."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (started on first use)."""
        with self._lock:
            if self._loop is None or not self._loop.is_running():
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(target=_run_loop, args=(loop, ready),
                                          name="telemetryd-http", daemon=True)
                thread.start()
                ready.wait(10.0)
                self._loop = loop
            return self._loop

    def serve(self, name: str, host: str, port: int, routes: RouteTable,
              limits: ListenerLimits) -> Listener:
        """Bind ``host:port`` now (0: any free port; OSError if taken), serve on the loop."""
        sock = _bind(host, port)
        evicted = [0]
        protocol = type("GuardedH11", (_GuardedH11,), {"limits": limits, "evicted": evicted})
        config = uvicorn.Config(
            make_app(routes, limits), http=protocol, lifespan="off", log_config=None,
            log_level=logging.CRITICAL, access_log=False, server_header=False,
            date_header=False, limit_concurrency=limits.max_connections + 1,
            timeout_keep_alive=int(max(1, limits.keepalive_timeout_seconds)),
            h11_max_incomplete_event_size=limits.max_header_bytes,
            timeout_graceful_shutdown=int(_SHUTDOWN_SECONDS),
        )
        server = _QuietServer(config)
        server.config.timeout_keep_alive = limits.keepalive_timeout_seconds  # type: ignore[assignment]
        loop = self.loop()
        done = asyncio.run_coroutine_threadsafe(server.serve(sockets=[sock]), loop)
        bound = int(sock.getsockname()[1])
        log.info("http.listening", listener=name, host=host, port=bound)
        return Listener(name, bound, server, done, evicted, loop)


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


_shared: HttpHost | None = None
_shared_lock = threading.Lock()


def shared_host() -> HttpHost:
    """The process's one host: the OTLP receiver and /metrics share its loop thread."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = HttpHost()
        return _shared

"""One HTTP host for every listener of the daemon: uvicorn (h11) on one event-loop thread.

uvicorn with h11 parses the wire (request line, headers, chunk sizes, Content-Length) and
refuses malformed input with a 400; what it leaves open is closed in a subclass of its h11
protocol (``daemon.web.http.guarded_h11``: deadlines on the head and on writing the answer,
admission past the connection cap) and in the ASGI app of ``daemon.web.http.routes`` (Host and
Origin, framing, bodies within limits).

Why uvicorn + h11 and not aiohttp: see docs/security/listeners.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn

from daemon.web.http.guarded_h11 import ListenerBook, protocol_for
from daemon.web.http.host_check import HostPolicy
from daemon.web.http.routes import ListenerLimits, RouteTable, make_app

log = structlog.get_logger(component="web")
_SHUTDOWN_SECONDS = 3.0


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
    book: ListenerBook
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

    def dropped(self) -> dict[str, int]:
        """Connections dropped by reason: ``evicted`` past the cap, ``shed`` at accept,
        ``write_timeout`` for a client not reading its answer."""
        counts = dict(self.book.counts)  # a copy: the loop thread adds to it
        return {reason: counts.get(reason, 0) for reason in ("evicted", "shed", "write_timeout")}

    def stats(self) -> dict[str, int]:
        """Connections open now, and dropped by reason (``dropped``)."""
        return {"connections_open": self.connections,
                **{f"connections_dropped.{reason}": count
                   for reason, count in self.dropped().items()}}


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
              limits: ListenerLimits, ssl_context: ssl.SSLContext | None = None) -> Listener:
        """Bind ``host:port`` now (0: any free port; OSError if taken), serve on the loop;
        with ``ssl_context``, over TLS (the context can be reloaded in place)."""
        sock = _bind(host, port)
        book = ListenerBook(limits, tls=ssl_context is not None)
        sock.admits = book.admits
        # The connection cap is kept by guarded_h11 (eviction) and the app (503 past the
        # reserve), both counting open connections only: uvicorn's limit_concurrency would
        # count connections already closing too.
        policy = HostPolicy(host, tls=ssl_context is not None)
        config = uvicorn.Config(
            make_app(routes, limits, policy, book.crowded), http=protocol_for(book),
            lifespan="off", log_config=None, log_level=logging.CRITICAL, access_log=False,
            server_header=False, date_header=False, limit_concurrency=None,
            timeout_keep_alive=int(max(1, limits.keepalive_timeout_seconds)),
            h11_max_incomplete_event_size=limits.max_header_bytes,
            timeout_graceful_shutdown=int(_SHUTDOWN_SECONDS),
            ssl_context_factory=(None if ssl_context is None
                                 else lambda _config, _default: ssl_context),
        )
        server = _QuietServer(config)
        server.config.timeout_keep_alive = limits.keepalive_timeout_seconds  # type: ignore[assignment]
        loop = self.loop()
        done = asyncio.run_coroutine_threadsafe(server.serve(sockets=[sock]), loop)
        bound = int(sock.getsockname()[1])
        log.info("http.listening", listener=name, host=host, port=bound,
                 tls=ssl_context is not None)
        return Listener(name, bound, server, done, book, loop)


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()


class GatedSocket(socket.socket):
    """A listening socket whose ``accept()`` sheds the connections ``admits(fd)`` refuses.

    asyncio's server calls ``accept()`` until it raises BlockingIOError; shedding here closes
    a refused connection for the price of an ``accept`` and a ``close``, before any
    transport or protocol exists for it. At most ``SHED_PER_CALL`` are shed per call, so a
    storm of them never holds the event loop longer than that.
    """

    SHED_PER_CALL = 64
    admits: Callable[[int], bool] = staticmethod(lambda fd: True)

    def accept(self) -> tuple[socket.socket, Any]:
        for _ in range(self.SHED_PER_CALL):
            fd, address = self._accept()  # type: ignore[attr-defined]
            try:
                admitted = self.admits(fd)
            except Exception:  # a bug in admission must not leak the descriptor
                admitted = True
            if admitted:
                return socket.socket(self.family, self.type, self.proto, fileno=fd), address
            os.close(fd)
        raise BlockingIOError  # more may be waiting: the loop calls again next iteration


def _bind(host: str, port: int) -> GatedSocket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = GatedSocket(family, socket.SOCK_STREAM)
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

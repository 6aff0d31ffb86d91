"""The ASGI app behind every listener: a route table, and request bodies read within limits.

Before any route runs, a request is refused (and its connection closed where the wire may
be out of step) when:

- its ``Host`` or ``Origin`` is not this listener's (``host_check``): 421 / 403;
- it carries both ``Content-Length`` and ``Transfer-Encoding`` (RFC 9112 6.3, a smuggling
  attempt): 400, connection closed;
- its head is larger than ``max_header_bytes`` although it arrived whole (h11 bounds only
  an incomplete head): 431, connection closed;
- the listener is past its connection cap and reserve: 503 with Retry-After.

Handlers are ``async (Request) -> Response`` and see a body already read, bounded and
inflated; a listener's ``refuse`` hook shapes refusals (OTLP answers with google.rpc.Status).
Answers are written in pieces of ``SEND_CHUNK_BYTES``, each after the previous one left
the write buffer, so a client that does not read holds at most that much.
Add a page with ``table.add("/path", Route(handler))``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from daemon.config.schema import WireLimits
from daemon.web.http.host_check import HostPolicy
from daemon.web.http.wire import Inflater, PayloadError

log = structlog.get_logger(component="web")
SEND_CHUNK_BYTES = 64 * 1024


# What one listener allows on the wire: the config's one type for both listeners
# ([otlp] and [metrics]), declared with its keys' ranges in config/schema.py.
ListenerLimits = WireLimits


@dataclass(frozen=True, slots=True)
class Request:
    """One request: lower-case header names, the body read and inflated (empty for GET)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes = b""
    client: tuple[str, int] | None = None  # the peer's address and port
    server: tuple[str, int] | None = None  # ours, on this connection


@dataclass(frozen=True, slots=True)
class Response:
    """What a handler answers."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Awaitable[Response]]
Refuser = Callable[[int, str, Mapping[str, str]], Response]


@dataclass(frozen=True, slots=True)
class Route:
    """A handler and the methods it takes; ``body`` routes get their body read within limits."""

    handler: Handler
    methods: frozenset[str] = frozenset({"GET", "HEAD"})
    body: bool = False


def plain_refusal(status: int, reason: str, headers: Mapping[str, str]) -> Response:
    """The default refusal: the reason as text (never any input)."""
    return Response(status, reason.encode() + b"\n")


def _nothing() -> None:
    return None


@dataclass
class RouteTable:
    """Exact paths to routes, how this listener words a refusal, and who counts a handler
    that raised (a bug: the request is answered 500)."""

    routes: dict[str, Route] = field(default_factory=dict)
    refuse: Refuser = plain_refusal
    failed: Callable[[], None] = _nothing

    def add(self, path: str, route: Route) -> None:
        """Serve ``route`` at ``path`` (replacing any route there)."""
        self.routes[path] = route


class _Budget:
    """Bytes of request bodies held in memory across the listener (loop thread only)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, amount: int) -> None:
        self.used += amount
        if self.used > self.limit:
            raise PayloadError(503, "busy")


def make_app(table: RouteTable, limits: ListenerLimits, policy: HostPolicy,
             crowded: Callable[[], bool] = lambda: False) -> Callable[..., Awaitable[None]]:
    """The ASGI application serving ``table`` under ``limits`` for the hosts of ``policy``;
    ``crowded()`` tells when the listener is past its connection cap and reserve."""
    budget = _Budget(limits.max_inflight_bytes)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        route = table.routes.get(scope["path"])
        method = scope["method"]
        held = 0
        # An unread or half-read body leaves the connection unusable: close it.
        close = route is not None and route.body
        try:
            _check_wire(scope, headers, limits)
            refusal = policy.check(headers.get("host"), headers.get("origin"))
            if refusal is not None:
                raise PayloadError(refusal.status, refusal.reason)
            if crowded():
                close = True
                raise PayloadError(503, "busy")
            if route is None:
                raise PayloadError(404, "unknown_path")
            if method not in route.methods:
                raise PayloadError(405, "method_not_allowed")
            body = b""
            if route.body:
                body, held = await _read_body(receive, headers, limits, budget)
            request = Request(method, scope["path"], scope["query_string"].decode("latin-1"),
                              headers, body, _address(scope.get("client")),
                              _address(scope.get("server")))
            try:
                response = await route.handler(request)
            except PayloadError:
                raise
            except Exception as exc:  # a handler bug costs one request, not the listener
                log.error("http.handler_failed", path=scope["path"], error=type(exc).__name__)
                table.failed()
                response = Response(500, b"internal error\n")
            await _send(send, response, close=False)
        except PayloadError as exc:
            response = table.refuse(exc.status, exc.reason, headers)
            extra = response.headers
            if exc.status == 405 and route is not None:
                extra += (("Allow", ", ".join(sorted(route.methods - {"HEAD"}))),)
            if exc.status == 503 and not any(k == "Retry-After" for k, _ in extra):
                extra += (("Retry-After", "2"),)
            await _send(send, Response(response.status, response.body, response.content_type,
                                       extra), close=close or exc.status in _CLOSING)
        finally:
            budget.used -= held

    return app


def _address(value: Any) -> tuple[str, int] | None:
    """An ASGI ``client``/``server`` pair as (host, port); None when the server gave none."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return str(value[0]), int(value[1])
    return None


# Refusals that leave the request's framing in doubt: the connection is closed after them.
_CLOSING = frozenset({400, 413, 431})


def _check_wire(scope: dict[str, Any], headers: Mapping[str, str],
                limits: ListenerLimits) -> None:
    """Refuse what h11 lets through: both framings at once, two Hosts, a whole head over
    the cap."""
    if "content-length" in headers and "transfer-encoding" in headers:
        raise PayloadError(400, "length_and_chunked")
    if sum(1 for name, _ in scope["headers"] if name == b"host") > 1:
        raise PayloadError(400, "duplicate_host")
    if head_bytes(scope) > limits.max_header_bytes:
        raise PayloadError(431, "head_too_large")


def head_bytes(scope: dict[str, Any]) -> int:
    """The size of the request head as sent, less optional whitespace h11 removed.

    >>> head_bytes({"method": "GET", "raw_path": b"/metrics", "query_string": b"",
    ...             "headers": [(b"host", b"x")]})
    34
    """
    query = scope["query_string"]
    size = len(scope["method"]) + 1 + len(scope["raw_path"]) + (len(query) + 1 if query else 0)
    size += len(" HTTP/1.1\r\n") + 2  # and the blank line ending the head
    for name, value in scope["headers"]:
        size += len(name) + 2 + len(value) + 2
    return size


async def _read_body(
    receive: Any, headers: Mapping[str, str], limits: ListenerLimits, budget: _Budget
) -> tuple[bytes, int]:
    """The whole body, inflated; PayloadError as soon as a limit is passed."""
    if "content-length" not in headers and "transfer-encoding" not in headers:
        raise PayloadError(411, "length_required")
    declared = headers.get("content-length")
    if declared is not None and int(declared) > limits.max_body_bytes:  # h11 checked digits
        raise PayloadError(413, "body_too_large")
    inflater = Inflater(headers.get("content-encoding"), limits.max_decompressed_bytes)
    held = 0
    try:
        async with asyncio.timeout(limits.read_timeout_seconds):
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    raise PayloadError(400, "client_gone")
                chunk: bytes = message.get("body", b"")
                more = bool(message.get("more_body"))
                if inflater.received + len(chunk) > limits.max_body_bytes:
                    raise PayloadError(413, "body_too_large")
                before = inflater.size
                inflater.feed(chunk)
                grown = inflater.size - before
                held += grown
                budget.take(grown)
        body = inflater.finish()
    except TimeoutError:
        budget.used -= held
        raise PayloadError(408, "body_too_slow") from None
    except PayloadError:
        budget.used -= held
        raise
    return body, held


async def _send(send: Any, response: Response, *, close: bool) -> None:
    # h11 keeps the casing given here; clients match names in any case anyway.
    headers = [(b"Content-Type", response.content_type.encode()),
               (b"Content-Length", str(len(response.body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in response.headers]
    if close:
        headers.append((b"Connection", b"close"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    # uvicorn waits for the write buffer to drain before each piece (flow control), so a
    # client that does not read holds one piece, not the whole answer; the write deadline
    # (guarded_h11) cuts it off.
    body = memoryview(response.body)
    for start in range(0, len(body), SEND_CHUNK_BYTES):
        end = start + SEND_CHUNK_BYTES
        await send({"type": "http.response.body", "body": body[start:end],
                    "more_body": end < len(body)})
    if not body:
        await send({"type": "http.response.body", "body": b""})

"""A loopback HTTP server that answers envelope uploads the way a test tells it to.

It can answer 200 (with or without a body), any status with any headers (429 with
``Retry-After`` / ``X-Sentry-Rate-Limits``, 500, 413, 400...), garbage that is not HTTP,
a hang, or a connection reset; and it records every request it read, so tests can check
headers, ``sent_at`` and duplicates.  Also builds real sentry-sdk envelopes for tests.
"""

from __future__ import annotations

import io
import json
import socket
import socketserver
import struct
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from sentry_sdk.envelope import Envelope, Item, PayloadRef

Kind = Literal["answer", "garbage", "hang", "reset", "trickle"]
Answered = Literal["answer", "garbage", "hang", "reset", "trickle", "incomplete"]


@dataclass(frozen=True)
class Behaviour:
    """How to answer one request."""

    kind: Kind = "answer"
    status: int = 200
    body: bytes = b'{"id":"ok"}'
    headers: tuple[tuple[str, str], ...] = ()
    delay_seconds: float = 0.0


OK = Behaviour()
OK_EMPTY = Behaviour(body=b"")
GARBAGE = Behaviour(kind="garbage")
HANG = Behaviour(kind="hang")
RESET = Behaviour(kind="reset")
# A status line, then one header byte per second, never ending: every socket read gets a
# byte well within any per-read timeout, so only a total deadline ends the upload.
TRICKLE = Behaviour(kind="trickle", delay_seconds=1.0)


def status(code: int, body: bytes = b"", **headers: str) -> Behaviour:
    """An HTTP answer with ``code``; header names use ``_`` for ``-`` (``Retry_After``)."""
    pairs = tuple((name.replace("_", "-"), value) for name, value in headers.items())
    return Behaviour(status=code, body=body, headers=pairs)


@dataclass(frozen=True)
class Received:
    """One request the server read in full, and what it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: Answered
    status: int | None
    at: float = field(default_factory=time.time)

    @property
    def envelope_header(self) -> dict[str, object]:
        """The JSON header line of the uploaded envelope."""
        header = json.loads(self.body.split(b"\n", 1)[0])
        assert isinstance(header, dict)
        return header

    @property
    def event_id(self) -> str | None:
        """The uploaded envelope's event_id."""
        try:
            value = self.envelope_header.get("event_id")
        except (ValueError, AssertionError):
            return None
        return value if isinstance(value, str) else None

    @property
    def accepted(self) -> bool:
        """True if this request got a 2xx."""
        return self.answered == "answer" and self.status is not None and 200 <= self.status < 300


class FaultServer:
    """A threaded loopback server; ``script`` answers in order, then ``default``."""

    def __init__(self, host: str = "127.0.0.1", default: Behaviour = OK, port: int = 0) -> None:
        """Bind ``port`` (0: a free one) on ``host`` (loopback) and serve in a thread."""
        self.default = default
        self._script: deque[Behaviour] = deque()
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                outer._handle(self.connection, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((host, port), Handler)
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def dsn(self, key: str = "publickey123", project: int = 1) -> str:
        """A DSN pointing at this server."""
        return f"http://{key}@{self.host}:{self.port}/{project}"

    def script(self, *behaviours: Behaviour) -> None:
        """Answer the next requests with ``behaviours`` in order, then ``default`` again."""
        with self._lock:
            self._script.extend(behaviours)

    @property
    def received(self) -> list[Received]:
        """Every request read so far, in arrival order."""
        with self._lock:
            return list(self._received)

    def accepted_ids(self) -> list[str]:
        """Event ids of the envelopes answered with a 2xx, in order (duplicates kept)."""
        return [r.event_id for r in self.received if r.accepted and r.event_id]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Poll until ``count`` requests arrived or the deadline passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received
            if len(got) >= count:
                return got
            time.sleep(0.01)
        return self.received

    def stop(self) -> None:
        """Stop serving and release any hanging request."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _handle(self, conn: socket.socket, reader: io.BufferedIOBase) -> None:
        request_line = reader.readline(65537).decode("latin-1").strip()
        if not request_line:
            return
        method, path, _ = [*request_line.split(" ", 2), "", ""][:3]
        headers: dict[str, str] = {}
        while True:
            line = reader.readline(65537).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        expected = int(headers.get("content-length", "0"))
        body = reader.read(expected)
        if len(body) < expected:
            # The client went away mid-upload (e.g. killed): nothing to answer.
            with self._lock:
                self._received.append(Received(method, path, headers, body, "incomplete", None))
            return
        behaviour = self._next()
        with self._lock:
            self._received.append(
                Received(method, path, headers, body, behaviour.kind, behaviour.status)
            )
        if behaviour.kind == "trickle":
            self._trickle(conn, behaviour.delay_seconds)
            return
        if behaviour.delay_seconds:
            self._stopping.wait(behaviour.delay_seconds)
        if behaviour.kind == "hang":
            self._stopping.wait(60)
            return
        if behaviour.kind == "reset":
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        if behaviour.kind == "garbage":
            conn.sendall(b"\x00\xffthis is not HTTP at all\r\n\r\n")
            return
        head = [f"HTTP/1.1 {behaviour.status} X", f"Content-Length: {len(behaviour.body)}"]
        head += [f"{name}: {value}" for name, value in behaviour.headers]
        head += ["Connection: close", "", ""]
        conn.sendall("\r\n".join(head).encode("latin-1") + behaviour.body)

    def _trickle(self, conn: socket.socket, seconds_per_byte: float) -> None:
        """Answer one byte at a time until the client leaves or the server stops."""
        for byte in _trickle_bytes():
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return
            if self._stopping.wait(seconds_per_byte):
                return


def _trickle_bytes() -> bytes:
    return b"HTTP/1.1 200 OK\r\nX-Trickle: " + b"a" * 60_000


def make_envelope(
    event_id: str | None = None,
    watch: str = "claude-code",
    kind: str = "rss_critical",
    title: str = "claude-code pid 4242: RSS 3.2 GiB crossed critical 3.0 GiB",
    attachment: bytes | None = b'{"samples": []}',
    sent_at: str = "2020-01-01T00:00:00.000000Z",
) -> bytes:
    """A real sentry-sdk envelope of a fatal event with tags and an attachment."""
    event_id = event_id or uuid.uuid4().hex
    event: Any = {
        "event_id": event_id,
        "level": "fatal",
        "message": title,
        "tags": {"watch": watch, "kind": kind},
        "contexts": {"process": {"pid": 4242}},
        "timestamp": "2020-01-01T00:00:00Z",
    }
    envelope = Envelope(headers={"event_id": event_id, "sent_at": sent_at})
    envelope.add_event(event)
    if attachment is not None:
        envelope.add_item(
            Item(
                payload=PayloadRef(bytes=attachment),
                type="attachment",
                headers={"filename": "samples.json", "content_type": "application/json"},
            )
        )
    return envelope.serialize()

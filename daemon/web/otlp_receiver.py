"""OTLP/HTTP receiver: ``/v1/metrics``, ``/v1/logs`` and ``/v1/traces``, protobuf or JSON.

200 with an Export*ServiceResponse (partial success when points were refused), 400 bad
payload, 404 unknown path, 405 wrong method, 411 no length, 413 too large (declared or
inflated), 415 unsupported content type or encoding, 429 with Retry-After when the ingest
queue is full. Sockets time out, the body has a deadline, connections are capped, and no
input ever reaches a log line.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import structlog
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from daemon.agents import wire
from daemon.agents.decode import DecodeResult, decode_logs, decode_metrics, decode_traces
from daemon.agents.ingest import Ingestor
from daemon.agents.series import SeriesTracker
from daemon.agents.settings import AgentTelemetrySettings

log = structlog.get_logger(__name__)
RETRY_AFTER_SECONDS = 2
_LOG_EVERY_SECONDS = 60.0
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class _Signal:
    name: str
    request_type: type
    decode: Callable[..., DecodeResult]
    response: Callable[[int, str], Any]


def _metrics_response(rejected: int, message: str) -> Any:
    response = metrics_service_pb2.ExportMetricsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = message
    return response


def _logs_response(rejected: int, message: str) -> Any:
    response = logs_service_pb2.ExportLogsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_log_records = rejected
        response.partial_success.error_message = message
    return response


def _traces_response(rejected: int, message: str) -> Any:
    response = trace_service_pb2.ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return response


_SIGNALS = {
    "/v1/metrics": _Signal(
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        decode_metrics,
        _metrics_response,
    ),
    "/v1/logs": _Signal(
        "logs", logs_service_pb2.ExportLogsServiceRequest, decode_logs, _logs_response
    ),
    "/v1/traces": _Signal(
        "traces", trace_service_pb2.ExportTraceServiceRequest, decode_traces, _traces_response
    ),
}


class OtlpReceiver:
    """The OTLP/HTTP server; ``start()`` binds and serves on a thread, ``stop()`` ends it."""

    def __init__(
        self,
        settings: AgentTelemetrySettings,
        ingestor: Ingestor,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.counters = ingestor.counters
        self.clock = clock
        self.tracker = SeriesTracker(
            settings.max_series_per_metric, settings.max_metrics, settings.series_idle_seconds
        )
        # Decode, submit and commit run under one lock so a 429'd request leaves the series
        # state untouched and its retry counts in full.
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections = threading.BoundedSemaphore(settings.max_connections)
        self._last_logged: dict[str, float] = {}

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        if self._server is None:
            raise RuntimeError("receiver not started")
        return int(self._server.server_address[1])

    @property
    def running(self) -> bool:
        """Whether the receiver is bound and serving."""
        return self._server is not None

    def start(self) -> None:
        """Bind the configured address and serve until ``stop()``."""
        host = self.settings.listen_host
        server_class = _Server6 if ":" in host else _Server
        # StreamRequestHandler reads its socket timeout from the class.
        timeout = self.settings.socket_timeout_seconds
        handler = type("_BoundHandler", (_Handler,), {"timeout": timeout})
        self._server = server_class((host, self.settings.listen_port), handler)
        self._server.receiver = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="telemetryd-otlp",
            daemon=True,
        )
        self._thread.start()
        log.info("agents.receiver.started", host=host, port=self.port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(10.0)
        log.info("agents.receiver.stopped")

    def stats(self) -> dict[str, int]:
        """Counters of the receiver and the ingest queue, plus remembered series."""
        snapshot = self.ingestor.stats()
        with self.lock:
            snapshot["active_series"] = self.tracker.active_series()
        return snapshot

    def refuse(self, status: int, reason: str) -> None:
        """Count a refused request and warn about it at most once a minute per reason."""
        self.counters.add(f"requests_refused.{status}.{reason}")
        now = time.monotonic()
        if now - self._last_logged.get(reason, -_LOG_EVERY_SECONDS) >= _LOG_EVERY_SECONDS:
            self._last_logged[reason] = now
            log.warning("agents.receiver.refused", status=status, reason=reason)

    def admit_connection(self) -> bool:
        """Take a connection slot; False when ``max_connections`` are open."""
        return self._connections.acquire(blocking=False)

    def release_connection(self) -> None:
        """Give a connection slot back."""
        self._connections.release()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: OtlpReceiver

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.receiver.admit_connection():
            self.receiver.refuse(503, "too_many_connections")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.receiver.release_connection()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; say only that it happened.
        self.receiver.counters.add("handler_errors")
        log.error("agents.receiver.handler_error")


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's stderr access log: counters and structlog say what matters."""

    def do_POST(self) -> None:
        receiver = self.server.receiver
        signal = _SIGNALS.get(urlsplit(self.path).path)
        if signal is None:
            self._refuse(404, "unknown_path", "protobuf")
            return
        encoding: wire.WireEncoding = (
            "json" if "json" in (self.headers.get("Content-Type") or "") else "protobuf"
        )
        try:
            encoding = wire.encoding_of(self.headers.get("Content-Type"))
            body = self._read_body(receiver.settings)
            payload = wire.decompress(
                body, self.headers.get("Content-Encoding"), receiver.settings.max_decompressed_bytes
            )
            request: Any = wire.parse(payload, encoding, signal.request_type)
        except wire.PayloadError as exc:
            self._refuse(exc.status, exc.reason, encoding)
            return
        except TimeoutError:
            receiver.counters.add("requests_timed_out")
            self.close_connection = True
            return
        self._export(receiver, signal, request, encoding)

    def _export(
        self, receiver: OtlpReceiver, signal: _Signal, request: Any, encoding: wire.WireEncoding
    ) -> None:
        counters = receiver.counters
        counters.add(f"requests_received.{signal.name}")
        with receiver.lock:
            now = receiver.clock()
            txn = receiver.tracker.begin(now)
            try:
                result = signal.decode(
                    request, txn, now, store_content=receiver.settings.store_content
                )
            except Exception as exc:  # a decoder bug must cost one request, not the receiver
                log.error("agents.receiver.decode_failed", error=type(exc).__name__)
                result = None
            accepted = result is not None and (
                not result.records or receiver.ingestor.submit(result.records, result.accepted)
            )
            if accepted:
                receiver.tracker.commit(txn, now)
        if result is None:
            # The export was well formed: an error answer would only make the agent print
            # exporter errors into its user's terminal and retry the same bytes.
            counters.add("requests_not_taken.internal_error")
            response = signal.response(0, "not taken: internal error")
            self._send(200, wire.serialize(response, encoding), encoding)
            return
        if not accepted:
            receiver.refuse(429, "queue_full")
            self._send(429, wire.status_body(429, "queue_full", encoding), encoding, retry=True)
            return
        counters.add(f"points_accepted.{signal.name}", result.accepted)
        counters.add("spans_dropped.no_timing", result.dropped_spans)
        for reason, count in result.refusals.items():
            counters.add(f"points_refused.{signal.name}.{reason}", count)
        response = signal.response(result.rejected, result.message())
        self._send(200, wire.serialize(response, encoding), encoding)

    def _read_body(self, settings: AgentTelemetrySettings) -> bytes:
        limit = settings.max_body_bytes
        deadline = time.monotonic() + 3 * settings.socket_timeout_seconds
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit, deadline)
        declared = self.headers.get("Content-Length")
        if declared is None:
            self.close_connection = True
            raise wire.PayloadError(411, "length_required")
        try:
            length = int(declared)
        except ValueError as exc:
            self.close_connection = True
            raise wire.PayloadError(400, "bad_content_length") from exc
        if length < 0:
            self.close_connection = True
            raise wire.PayloadError(400, "bad_content_length")
        if length > limit:
            # The body stays unread, so this connection cannot carry another request.
            self.close_connection = True
            raise wire.PayloadError(413, "body_too_large")
        return self._read_exactly(length, deadline)

    def _read_exactly(self, length: int, deadline: float) -> bytes:
        parts: list[bytes] = []
        remaining = length
        while remaining > 0:
            if time.monotonic() > deadline:
                self.close_connection = True
                raise wire.PayloadError(408, "body_too_slow")
            chunk = self.rfile.read1(min(remaining, _READ_CHUNK))
            if not chunk:
                self.close_connection = True
                raise wire.PayloadError(400, "truncated_body")
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def _read_chunked(self, limit: int, deadline: float) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                self.close_connection = True
                raise wire.PayloadError(400, "bad_chunking") from exc
            if size == 0:
                break
            total += size
            if total > limit:
                self.close_connection = True
                raise wire.PayloadError(413, "body_too_large")
            parts.append(self._read_exactly(size, deadline))
            self.rfile.readline(8)
        while self.rfile.readline(1024).strip():
            pass  # trailers carry nothing telemetryd needs
        return b"".join(parts)

    def _refuse(self, status: int, reason: str, encoding: wire.WireEncoding) -> None:
        self.server.receiver.refuse(status, reason)
        self._send(status, wire.status_body(status, reason, encoding), encoding)

    def _send(
        self, status: int, body: bytes, encoding: wire.WireEncoding, *, retry: bool = False
    ) -> None:
        try:
            self.send_response(status)
            content_type = "application/json" if encoding == "json" else "application/x-protobuf"
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if retry:
                self.send_header("Retry-After", str(RETRY_AFTER_SECONDS))
            if status == 405:
                self.send_header("Allow", "POST")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _not_post(self) -> None:
        if urlsplit(self.path).path in _SIGNALS:
            self._refuse(405, "method_not_allowed", "protobuf")
        else:
            self._refuse(404, "unknown_path", "protobuf")

    def do_GET(self) -> None:
        self._not_post()

    def do_PUT(self) -> None:
        self._not_post()

    def do_DELETE(self) -> None:
        self._not_post()

    def do_PATCH(self) -> None:
        self._not_post()

"""OTLP/HTTP receiver: ``/v1/metrics``, ``/v1/logs`` and ``/v1/traces``, protobuf or JSON.

200 with an Export*ServiceResponse (partial success when points were refused), 400 bad
payload, 404 unknown path, 405 wrong method, 408 body too slow, 411 no length, 413 too large
(declared, sent or inflated), 415 unsupported content type or encoding, 429 with Retry-After
when the ingest queue is full, 503 with Retry-After when every connection slot or the
in-flight byte budget is taken. The wire is handled by ``daemon.web.server`` (uvicorn + h11);
decoding runs on a small thread pool, never on the event loop, and no input ever reaches a
log line.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from daemon.agents import wire
from daemon.agents.attributes import AttributeLimits
from daemon.agents.decode import (
    DecodeResult,
    decode_logs,
    decode_metrics,
    decode_traces,
    too_many_items,
)
from daemon.agents.ingest import Ingestor
from daemon.agents.record_bytes import fit_records
from daemon.agents.series import SeriesTracker
from daemon.config.schema import OtlpSettings
from daemon.web.routes import ListenerLimits, Request, Response, Route, RouteTable

if TYPE_CHECKING:  # the HTTP stack (uvicorn, h11, an event loop) is imported by start()
    from daemon.web.server import HttpHost, Listener

log = structlog.get_logger(__name__)
RETRY_AFTER_SECONDS = 2
_LOG_EVERY_SECONDS = 60.0


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


def listener_limits(settings: OtlpSettings) -> ListenerLimits:
    """The wire limits of the OTLP listener."""
    return ListenerLimits(
        max_connections=settings.max_connections,
        read_timeout_seconds=settings.read_timeout_seconds,
        keepalive_timeout_seconds=settings.keepalive_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
        max_body_bytes=settings.max_body_bytes,
        max_decompressed_bytes=settings.max_decompressed_bytes,
        max_inflight_bytes=settings.max_inflight_bytes,
    )


class OtlpReceiver:
    """The OTLP/HTTP listener; ``start()`` binds and serves, ``stop()`` ends it."""

    def __init__(
        self,
        settings: OtlpSettings,
        ingestor: Ingestor,
        *,
        clock: Callable[[], float] = time.time,
        host: HttpHost | None = None,
    ) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.counters = ingestor.counters
        self.clock = clock
        self.host = host
        self.tracker = SeriesTracker.of(settings, self.counters)
        self.limits = AttributeLimits.of(settings)
        # Decode, submit and commit run under one lock so a 429'd request leaves the series
        # state untouched and its retry counts in full. Only decoding threads take it: status,
        # /metrics and the tick read counters that need no lock.
        self.lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._listener: Listener | None = None
        self._last_logged: dict[str, float] = {}

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        if self._listener is None:
            raise RuntimeError("receiver not started")
        return self._listener.port

    @property
    def running(self) -> bool:
        """Whether the receiver is bound and serving."""
        return self._listener is not None

    def routes(self) -> RouteTable:
        """``/v1/metrics`` and ``/v1/logs``, refusals worded as OTLP wants."""
        table = RouteTable(refuse=self._refusal)
        for path in _SIGNALS:
            table.add(path, Route(self._handler(path), frozenset({"POST"}), body=True))
        return table

    def start(self) -> None:
        """Bind the configured address and serve until ``stop()``; OSError if it is taken."""
        from daemon.web.server import shared_host

        if self.host is None:
            self.host = shared_host()
        self._pool = ThreadPoolExecutor(self.settings.decode_concurrency,
                                        thread_name_prefix="telemetryd-otlp-decode")
        try:
            self._listener = self.host.serve(
                "otlp", self.settings.listen.host, self.settings.listen.port, self.routes(),
                listener_limits(self.settings))
        except OSError:
            self._pool.shutdown(wait=False)
            self._pool = None
            raise
        log.info("agents.receiver.started", host=self.settings.listen.host, port=self.port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        listener.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        log.info("agents.receiver.stopped")

    def stats(self) -> dict[str, int]:
        """Counters of the receiver and the ingest queue, plus remembered series (no lock)."""
        snapshot = self.ingestor.stats()
        snapshot["active_series"] = self.tracker.size
        snapshot["series_bytes"] = self.tracker.bytes
        snapshot["queued_bytes"] = self.ingestor.queued_bytes()
        if self._listener is not None:
            snapshot.update(self._listener.stats())
        return snapshot

    def refuse(self, status: int, reason: str) -> None:
        """Count a refused request and warn about it at most once a minute per reason."""
        self.counters.add(f"requests_refused.{status}.{reason}")
        if status == 408:
            self.counters.add("requests_timed_out")
        now = time.monotonic()
        if now - self._last_logged.get(reason, -_LOG_EVERY_SECONDS) >= _LOG_EVERY_SECONDS:
            self._last_logged[reason] = now
            log.warning("agents.receiver.refused", status=status, reason=reason)

    def _refusal(self, status: int, reason: str, headers: Mapping[str, str]) -> Response:
        self.refuse(status, reason)
        encoding: wire.WireEncoding = (
            "json" if "json" in headers.get("content-type", "") else "protobuf")
        retry = (("Retry-After", str(RETRY_AFTER_SECONDS)),) if status in (429, 503) else ()
        return Response(status, wire.status_body(status, reason, encoding),
                        _content_type(encoding), retry)

    def _handler(self, path: str) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            encoding = wire.encoding_of(request.headers.get("content-type"))
            pool = self._pool
            if pool is None:
                raise wire.PayloadError(503, "stopping")
            loop = asyncio.get_running_loop()
            signal = _SIGNALS[path]
            return await loop.run_in_executor(pool, self._export, signal, request.body, encoding)

        return handle

    def _export(self, signal: _Signal, payload: bytes, encoding: wire.WireEncoding) -> Response:
        """Parse, decode, queue and answer one request (on a decode thread)."""
        try:
            request: Any = wire.parse(payload, encoding, signal.request_type,
                                      self.settings.max_messages_per_request)
            if too_many_items(request, self.settings.max_items_per_request):
                raise wire.PayloadError(413, "too_many_items")
        except wire.PayloadError as exc:
            return self._refusal(exc.status, exc.reason, {"content-type": _content_type(encoding)})
        counters = self.counters
        counters.add(f"requests_received.{signal.name}")
        with self.lock:
            now = self.clock()
            txn = self.tracker.begin(now)
            try:
                result = signal.decode(
                    request, txn, now, store_content=self.settings.store_content,
                    limits=self.limits,
                )
                del request  # the parsed message is the largest thing a request holds
                fitted = fit_records(result.records, self.settings.max_stored_string_bytes)
            except Exception as exc:  # a decoder bug must cost one request, not the receiver
                log.error("agents.receiver.decode_failed", error=type(exc).__name__)
                result = None
            accepted = result is not None and (
                not fitted.records
                or self.ingestor.submit(fitted.records, result.accepted, fitted.bytes)
            )
            if accepted:
                self.tracker.commit(txn, now)
        if result is None:
            # The export was well formed: an error answer would only make the agent print
            # exporter errors into its user's terminal and retry the same bytes.
            counters.add("requests_not_taken.internal_error")
            response = signal.response(0, "not taken: internal error")
            return Response(200, wire.serialize(response, encoding), _content_type(encoding))
        if not accepted:
            return self._refusal(429, "queue_full", {"content-type": _content_type(encoding)})
        counters.add(f"points_accepted.{signal.name}", result.accepted)
        counters.add("spans_dropped.no_timing", result.dropped_spans)
        for reason, count in result.refusals.items():
            counters.add(f"points_refused.{signal.name}.{reason}", count)
        for kind, count in result.truncated.items():
            counters.add(f"truncated.{kind}", count)
        counters.add("truncated.stored_strings", fitted.cut)
        response = signal.response(result.rejected, result.message())
        return Response(200, wire.serialize(response, encoding), _content_type(encoding))


def _content_type(encoding: wire.WireEncoding) -> str:
    return "application/json" if encoding == "json" else "application/x-protobuf"

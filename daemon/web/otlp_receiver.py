"""OTLP/HTTP receiver: ``/v1/metrics``, ``/v1/logs`` and ``/v1/traces``, protobuf or JSON.

200 with an Export*ServiceResponse (partial success when points were refused), 400 bad
payload, 404 unknown path, 405 wrong method, 408 body too slow, 411 no length, 413 too large
(declared, sent or inflated), 415 unsupported content type or encoding, 429 with Retry-After
when the ingest queue is full, 503 with Retry-After when every connection slot or the
in-flight byte budget is taken. The wire is handled by ``daemon.web.http.server`` (uvicorn + h11);
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

from daemon.agents.decoding.attributes import AttributeLimits
from daemon.agents.decoding.counters import OtlpCounter, OtlpStats
from daemon.agents.decoding.decode import (
    DecodeResult,
    decode_logs,
    decode_metrics,
    decode_traces,
    too_many_items,
)
from daemon.agents.decoding.series import SeriesTracker
from daemon.agents.store.ingest import Ingestor
from daemon.agents.store.record_bytes import fit_records
from daemon.agents.trust.admission import Admission
from daemon.agents.trust.policy import Verdict
from daemon.config.schema import OtlpSettings
from daemon.web.http import wire
from daemon.web.http.routes import Request, Response, Route, RouteTable

if TYPE_CHECKING:  # the HTTP stack (uvicorn, h11, an event loop) is imported by start()
    from daemon.web.http.server import HttpHost, Listener

log = structlog.get_logger(component="otlp")
RETRY_AFTER_SECONDS = 2
# Sender lookups waiting for the lookup thread; past it a request that needs one gets 503.
MAX_PENDING_LOOKUPS = 8
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


class OtlpReceiver:
    """The OTLP/HTTP listener; ``start()`` binds and serves, ``stop()`` ends it."""

    def __init__(
        self,
        settings: OtlpSettings,
        ingestor: Ingestor,
        *,
        clock: Callable[[], float] = time.time,
        host: HttpHost | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.settings = settings
        # Whose telemetry is taken ([otlp] trust): checked before anything is decoded.
        self.admission = admission or Admission(settings.trust, None)
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
        self._lookup_pool: ThreadPoolExecutor | None = None
        self._pending_lookups = 0  # touched on the event loop only
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
        table = RouteTable(refuse=self._refusal,
                           failed=lambda: self.counters.count(OtlpCounter.HANDLER_ERRORS))
        for path in _SIGNALS:
            table.add(path, Route(self._handler(path), frozenset({"POST"}), body=True))
        return table

    def start(self) -> None:
        """Bind the configured address and serve until ``stop()``; OSError if it is taken."""
        from daemon.web.http.server import shared_host

        if self.host is None:
            self.host = shared_host()
        self._pool = ThreadPoolExecutor(self.settings.decode_concurrency,
                                        thread_name_prefix="telemetryd-otlp-decode")
        self._lookup_pool = ThreadPoolExecutor(1, thread_name_prefix="telemetryd-otlp-peer")
        try:
            self._listener = self.host.serve(
                "otlp", self.settings.listen.host, self.settings.listen.port, self.routes(),
                self.settings.wire)
        except OSError:
            self._pool.shutdown(wait=False)
            self._lookup_pool.shutdown(wait=False)
            self._pool = self._lookup_pool = None
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
        if self._lookup_pool is not None:
            self._lookup_pool.shutdown(wait=True)  # a lookup ends within its deadline
            self._lookup_pool = None
        log.info("agents.receiver.stopped")

    def stats(self) -> OtlpStats:
        """Counters of the receiver and the ingest queue, plus remembered series (no lock)."""
        counts = self.counters.snapshot()
        listener = self._listener
        if listener is not None:
            for reason, count in listener.dropped().items():
                counts[(OtlpCounter.CONNECTIONS_DROPPED, (reason,))] = count
        return OtlpStats(counts, queue_depth=self.ingestor.queue_depth(),
                         active_series=self.tracker.size, series_bytes=self.tracker.bytes,
                         queued_bytes=self.ingestor.queued_bytes(),
                         connections_open=0 if listener is None else listener.connections)

    def refuse(self, status: int, reason: str) -> None:
        """Count a refused request and warn about it at most once a minute per reason."""
        self.counters.count(OtlpCounter.REQUESTS_REFUSED, (str(status), reason))
        if status == 408:
            self.counters.count(OtlpCounter.REQUESTS_TIMED_OUT)
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
            verdict = await self._admit(request)
            if not verdict.accepted:
                return self._untrusted(verdict, encoding)
            self.counters.count(OtlpCounter.REQUESTS_TRUSTED, (verdict.how,))
            loop = asyncio.get_running_loop()
            signal = _SIGNALS[path]
            return await loop.run_in_executor(pool, self._export, signal, request.body, encoding,
                                              verdict.pid)

        return handle

    async def _admit(self, request: Request) -> Verdict:
        """Whose telemetry this is: on the loop when cheap, else on the lookup thread."""
        verdict = self.admission.quick(request.headers, request.client, request.server)
        if verdict is not None:
            return verdict
        lookups = self._lookup_pool
        if (lookups is None or request.client is None or request.server is None
                or self._pending_lookups >= MAX_PENDING_LOOKUPS
                or not self.admission.finder.ready()):
            return Verdict(False, "peer_lookup_busy", 503, "too many senders to look up; retry")
        self._pending_lookups += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                lookups, self.admission.lookup, request.headers, request.client, request.server)
        finally:
            self._pending_lookups -= 1

    def _untrusted(self, verdict: Verdict, encoding: wire.WireEncoding) -> Response:
        """A refusal that says why, as OTLP words errors (google.rpc.Status), counted."""
        self.refuse(verdict.status, verdict.how)
        retry = ((("Retry-After", str(RETRY_AFTER_SECONDS)),) if verdict.status == 503 else ())
        body = wire.status_body(verdict.status, f"{verdict.how}: {verdict.detail}", encoding)
        return Response(verdict.status, body, _content_type(encoding), retry)

    def _export(self, signal: _Signal, payload: bytes, encoding: wire.WireEncoding,
                sender_pid: int | None = None) -> Response:
        """Parse, decode, queue and answer one request (on a decode thread); records naming
        no process get ``sender_pid``, the sending process when admission found it."""
        try:
            request: Any = wire.parse(payload, encoding, signal.request_type,
                                      self.settings.max_messages_per_request)
            if too_many_items(request, self.settings.max_items_per_request):
                raise wire.PayloadError(413, "too_many_items")
        except wire.PayloadError as exc:
            return self._refusal(exc.status, exc.reason, {"content-type": _content_type(encoding)})
        counters = self.counters
        counters.count(OtlpCounter.REQUESTS_RECEIVED, (signal.name,))
        with self.lock:
            now = self.clock()
            txn = self.tracker.begin(now)
            try:
                result = signal.decode(
                    request, txn, now, store_content=self.settings.store_content,
                    limits=self.limits, sender_pid=sender_pid,
                )
                del request  # the parsed message is the largest thing a request holds
                fitted = fit_records(result.records, self.settings.max_stored_string_bytes)
            except Exception as exc:  # a decoder bug must cost one request, not the receiver
                log.error("agents.receiver.decode_failed", error=type(exc).__name__)
                result = None
            accepted = result is not None and (
                not fitted.records
                or self.ingestor.submit(fitted.records, result.accepted, signal.name,
                                        size_bytes=fitted.bytes)
            )
            if accepted:
                self.tracker.commit(txn, now)
        if result is None:
            # The export was well formed: an error answer would only make the agent print
            # exporter errors into its user's terminal and retry the same bytes.
            counters.count(OtlpCounter.REQUESTS_NOT_TAKEN)
            response = signal.response(0, "not taken: internal error")
            return Response(200, wire.serialize(response, encoding), _content_type(encoding))
        if not accepted:
            return self._refusal(429, "queue_full", {"content-type": _content_type(encoding)})
        counters.count(OtlpCounter.POINTS, (signal.name, "accepted"), result.accepted)
        counters.count(OtlpCounter.POINTS, ("traces", "dropped_no_timing"), result.dropped_spans)
        for reason, count in result.refusals.items():
            counters.count(OtlpCounter.POINTS, (signal.name, reason), count)
        for kind, count in result.truncated.items():
            counters.count(OtlpCounter.TRUNCATED, (kind,), count)
        counters.count(OtlpCounter.TRUNCATED, ("stored_strings",), fitted.cut)
        response = signal.response(result.rejected, result.message())
        return Response(200, wire.serialize(response, encoding), _content_type(encoding))


def _content_type(encoding: wire.WireEncoding) -> str:
    return "application/json" if encoding == "json" else "application/x-protobuf"

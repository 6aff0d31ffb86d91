"""The ``/metrics`` HTTP endpoint: prometheus-client's server on a private registry."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)


@dataclass
class MetricsServer:
    """A running ``/metrics`` server; ``port`` is the bound port (useful when asked for 0)."""

    host: str
    port: int
    registry: CollectorRegistry
    _server: WSGIServer
    _thread: threading.Thread

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and wait for the serving thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)
        log.info("metrics.stopped", host=self.host, port=self.port)


def make_registry(collector: Collector, *, process_metrics: bool = True) -> CollectorRegistry:
    """A registry of its own (never the global one) holding the collector.

    ``process_metrics`` adds prometheus-client's ``process_*`` series for the daemon itself
    (its RSS, CPU seconds, open fds), read from /proc at scrape time.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if process_metrics:
        registry.register(ProcessCollector(registry=None))
    return registry


def serve_metrics(
    host: str, port: int, collector: Collector, *, process_metrics: bool = True
) -> MetricsServer:
    """Serve the collector's metrics on ``host:port`` (port 0: any free port); OSError if taken."""
    registry = make_registry(collector, process_metrics=process_metrics)
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = int(server.server_address[1])
    log.info("metrics.listening", host=host, port=bound)
    return MetricsServer(host, bound, registry, server, thread)

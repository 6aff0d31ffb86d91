"""The metrics listener: ``/metrics`` from a private registry, plus the status page and API.

prometheus-client's WSGI app answers ``/metrics``; the status page routes
(``daemon.web.status_routes``) answer ``/``, ``/api/status`` and ``/api/history`` when the
daemon passes its page sources.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from daemon.web.sources import PageSources
from daemon.web.status_routes import serve_page

log = structlog.get_logger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


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


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr (the daemon logs through structlog only)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def with_pages(metrics_app: WsgiApp, pages: PageSources | None) -> WsgiApp:
    """The metrics app, with the status page routes answered first when ``pages`` is given."""
    if pages is None:
        return metrics_app

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            reply = serve_page(pages, environ.get("PATH_INFO", ""),
                               environ.get("QUERY_STRING", ""))
            if reply is not None:
                status = f"{reply.status} {'OK' if reply.status == 200 else 'Error'}"
                start_response(status, [*reply.headers,
                                        ("Content-Length", str(len(reply.body)))])
                return [b"" if environ["REQUEST_METHOD"] == "HEAD" else reply.body]
        return metrics_app(environ, start_response)

    return app


def serve_metrics(
    host: str, port: int, collector: Collector, *, process_metrics: bool = True,
    pages: PageSources | None = None,
) -> MetricsServer:
    """Serve the collector's metrics on ``host:port`` (port 0: any free port); OSError if taken."""
    registry = make_registry(collector, process_metrics=process_metrics)
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    class Server(ThreadingWSGIServer):
        address_family = family

    app = with_pages(make_wsgi_app(registry), pages)
    server = make_server(host, port, app, Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    bound = int(server.server_address[1])
    log.info("metrics.listening", host=host, port=bound)
    return MetricsServer(host, bound, registry, server, thread)

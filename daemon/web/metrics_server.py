"""The metrics listener: ``/metrics`` from a private registry, plus whatever pages are added.

It runs on the shared HTTP host (``daemon.web.http.server``) with its own wire limits; a scrape is
rendered on one thread of its own, so the event loop and the tick never wait for it, and at
most once per ``render_interval_seconds`` for all scrapers together (``SharedRendering``).
More pages (the status page, its JSON API) are passed with ``routes=``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from daemon.config.files.web_config import WebConfig
from daemon.config.schema import Config, DaemonSettings
from daemon.web.exposition.rendering import SharedRendering
from daemon.web.http.auth import WebGuard, guard
from daemon.web.http.routes import ListenerLimits, Request, Response, Route, RouteTable
from daemon.web.http.server import HttpHost, Listener, shared_host

log = structlog.get_logger(component="metrics")


@dataclass
class MetricsServer:
    """A running metrics listener; ``port`` is the bound port (useful when asked for 0)."""

    host: str
    port: int
    registry: CollectorRegistry
    routes: RouteTable
    rendering: SharedRendering
    _listener: Listener
    _pool: ThreadPoolExecutor = field(repr=False)
    web_guard: WebGuard | None = None

    def stats(self) -> dict[str, int]:
        """The listener's connection counters and the renderings built so far."""
        return {**self._listener.stats(), "renders": self.rendering.renders}

    def apply_web_config(self, config: WebConfig | None) -> None:
        """Take a reloaded web config (new users, the certificate re-read); SIGHUP's path."""
        if config is None or self.web_guard is None:
            if (config is None) != (self.web_guard is None):
                log.warning("web_config.reload_ignored", key="metrics.web_config_file",
                            reason="adding or removing a web config takes a restart")
            return
        self.web_guard.apply(config)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and wait for scrapes in flight."""
        self._listener.stop(timeout)
        self._pool.shutdown(wait=True)
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


def scrape_route(rendering: SharedRendering) -> Route:
    """``GET /metrics``: the registry in the Prometheus text format, from ``rendering``."""

    async def scrape(request: Request) -> Response:
        return Response(200, await rendering.get(), CONTENT_TYPE_PLAIN_0_0_4)

    return Route(scrape)


def serve_metrics(
    host: str,
    port: int,
    collector: Collector,
    *,
    process_metrics: bool = True,
    routes: dict[str, Route] | None = None,
    limits: ListenerLimits | None = None,
    http: HttpHost | None = None,
    render_interval_seconds: float = DaemonSettings.interval_seconds,
    web_config: WebConfig | None = None,
) -> MetricsServer:
    """Serve the collector's metrics on ``host:port`` (port 0: any free port); OSError if taken
    (or a TLS file of ``web_config`` unusable: ssl.SSLError is an OSError).

    ``render_interval_seconds``: how long one rendering of /metrics serves every scraper.
    With ``web_config``, every page of the listener takes its TLS and basic auth.
    """
    registry = make_registry(collector, process_metrics=process_metrics)
    web_guard = WebGuard(web_config) if web_config is not None else None
    pool = ThreadPoolExecutor(1, thread_name_prefix="telemetryd-scrape")
    rendering = SharedRendering(lambda: generate_latest(registry), render_interval_seconds,
                                pool)
    table = RouteTable()
    pages = {"/metrics": scrape_route(rendering), **(routes or {})}
    for path, route in pages.items():
        table.add(path, route if web_guard is None else guard(route, web_guard))
    try:
        listener = (http or shared_host()).serve(
            "metrics", host, port, table, limits or Config.metrics.wire,
            ssl_context=web_guard.ssl_context if web_guard else None)
    except OSError:
        pool.shutdown(wait=False)
        raise
    log.info("metrics.listening", host=host, port=listener.port,
             tls=bool(web_guard and web_guard.ssl_context),
             basic_auth=bool(web_guard and web_guard.requires_auth))
    return MetricsServer(host, listener.port, registry, table, rendering, listener, pool,
                         web_guard)

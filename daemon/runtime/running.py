"""What a started daemon holds: opened by ``open_running`` in order, closed in reverse."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sentry_sdk
import structlog

from crash_reports.delivery.flusher import FlushResult
from crash_reports.event.system_facts import SystemFacts
from crash_reports.spool.store import Dropped, Spool
from crash_reports.spool.transport import SpoolTransport
from daemon import __version__
from daemon.config.reader import is_loopback
from daemon.config.schema import Config
from daemon.guard.guard import Guard
from daemon.runtime.agent_link import AgentLink
from daemon.runtime.paths import StatePaths
from daemon.runtime.reports.crash_hooks import install_crash_hooks
from daemon.runtime.reports.delivery import Delivery, is_flush_failure, open_spool
from daemon.runtime.reports.reporting import ReportWriter
from daemon.runtime.stats_recorder import StatsRecorder
from daemon.status.recent_events import EventKind, RecentEvent, RecentEvents

if TYPE_CHECKING:  # the HTTP stack and prometheus-client load only when /metrics starts
    from daemon.web.exposition.metrics import DaemonMetricsCollector
    from daemon.web.metrics_server import MetricsServer

log = structlog.get_logger(component="service")
MAX_REMEMBERED_REPORTS = 200


def make_sentry_client(transport: SpoolTransport, config: Config) -> sentry_sdk.Client:
    """A sentry-sdk client whose only transport is the spool (it never sends by itself)."""
    return sentry_sdk.Client(
        transport=transport,
        default_integrations=False,
        auto_enabling_integrations=False,
        include_local_variables=False,
        server_name=None,
        release=f"telemetryd@{__version__}",
        environment=config.sentry.environment,
        max_breadcrumbs=0,
    )


@dataclass
class ReportTally:
    """Reports written, delivered and dropped, for the events strip and /metrics.

    Made before the spool and the flusher, whose callbacks write into it.
    """

    recent: RecentEvents = field(default_factory=RecentEvents)
    trees: dict[str, tuple[str, int]] = field(default_factory=dict)
    dropped: int = 0

    def written(self, report_id: str, watch: str, pid: int, kind: str, at: float) -> None:
        """Note a report for the events strip (and for its delivery later)."""
        self.trees[report_id] = (watch, pid)
        while len(self.trees) > MAX_REMEMBERED_REPORTS:
            del self.trees[next(iter(self.trees))]
        self.recent.add(RecentEvent(at, EventKind.REPORT_WRITTEN,
                                    f"{watch} pid {pid}: {kind} report written",
                                    watch, pid, report_id))

    def flushed(self, result: FlushResult) -> None:
        """Note deliveries and failed flushes for the events strip (on the flush thread)."""
        if is_flush_failure(result.status):
            self.recent.add(RecentEvent(result.finished_at, EventKind.DELIVERY_FAILED,
                                        f"delivery {result.status}: {result.last_error or ''}"
                                        .rstrip(": ")))
        for report_id in result.delivered_ids:
            known = self.trees.get(report_id)
            if known is not None:
                self.recent.add(RecentEvent(result.finished_at, EventKind.REPORT_DELIVERED,
                                            f"{known[0]} pid {known[1]}: report delivered",
                                            known[0], known[1], report_id))


@dataclass
class Running:
    """The parts of a started daemon, all there from ``open_running`` on; only the
    scheduler comes and goes (``Service``)."""

    stats: StatsRecorder
    spool: Spool
    transport: SpoolTransport
    client: sentry_sdk.Client
    agents: AgentLink
    reports: ReportWriter
    delivery: Delivery
    restore_hooks: Callable[[], None]
    tally: ReportTally
    guard: Guard  # the behaviour guard, fed by the tick and the store writer
    metrics: DaemonMetricsCollector | None  # None: [metrics] is off
    metrics_server: MetricsServer | None  # None: off, or its port could not be bound
    scheduler: Any = None

    def close(self, now: float) -> None:
        """Stop listeners and threads, then close the stores (the scheduler is stopped first)."""
        if self.metrics_server is not None:
            self.metrics_server.stop()
            self.metrics_server = None
        self.agents.stop()
        if self.transport.held_count:
            self.transport.give_up_held()
        self.delivery.stop()
        self.stats.stop(now)
        self.restore_hooks()
        self.client.close(timeout=1.0)


def open_running(config: Config, paths: StatePaths, system: SystemFacts, now: float,
                 snapshot: Callable[[], Any]) -> Running:
    """Open the stores, the spool, sentry-sdk and the listeners (not yet the scheduler)."""
    tally = ReportTally()

    def on_drop(item: Dropped) -> None:
        tally.dropped += 1
        stats.dropped(item)

    def on_flush(result: FlushResult) -> None:
        # On the flush thread: count deliveries, mark stats periods shipped.
        stats.flush_result(spool, result)
        tally.flushed(result)

    spool = open_spool(config, on_drop=on_drop)
    delivery = Delivery(spool, on_flush, config.sentry.dsn)
    # The stores that grow with what they are sent leave spool.reserve free for reports.
    stats = StatsRecorder(paths.stats_db, reserve=spool.reserve)
    stats.start(now)
    transport = SpoolTransport(spool, on_put=lambda report_id: delivery.trigger())
    client = make_sentry_client(transport, config)
    agents = AgentLink(config, paths.events_db, paths.budgets, reserve=spool.reserve)
    guard = Guard(config.guard)
    agents.telemetry.ingestor.observer = guard.observe_records
    reports = ReportWriter(client, transport, system, config.sentry.environment,
                           agent_context=agents.context_for, stats_context=stats.recent)
    log.info("config.loaded", source=config.source, watches=len(config.watches),
             interval=config.daemon.interval_seconds, state_dir=str(paths.root))
    log.info("daemon.starting", pid=os.getpid(), version=__version__,
             spool_waiting=spool.pending_count())
    for what, host in (("otlp", config.otlp.listen.host), ("metrics", config.metrics.host)):
        if not is_loopback(host) and (what == "otlp" or config.web is None):
            log.warning("listen.not_loopback", listener=what, host=host,
                        reason="reachable from other machines; nothing authenticates it")
    agents.start()
    metrics, metrics_server = _start_metrics(config, paths, snapshot, agents, guard, delivery)
    return Running(stats=stats, spool=spool, transport=transport, client=client, agents=agents,
                   reports=reports, delivery=delivery, restore_hooks=install_crash_hooks(client),
                   tally=tally, guard=guard, metrics=metrics, metrics_server=metrics_server)


def _start_metrics(config: Config, paths: StatePaths, snapshot: Callable[[], Any],
                   agents: AgentLink, guard: Guard, delivery: Delivery,
                   ) -> tuple[DaemonMetricsCollector | None, MetricsServer | None]:
    if not config.metrics.enabled:
        return None, None
    from daemon.runtime.page_sources import daemon_page_sources
    from daemon.web.exposition.metrics import DaemonMetricsCollector
    from daemon.web.metrics_server import serve_metrics
    from daemon.web.status_routes import page_routes

    telemetry = agents.telemetry
    metrics = DaemonMetricsCollector(snapshot, telemetry.stats, telemetry.reader,
                                     guard=guard.counts)
    pages = daemon_page_sources(snapshot, paths.stats_db, lambda: delivery.spool,
                                telemetry.reader, lambda: delivery.dsn)
    try:
        return metrics, serve_metrics(
            config.metrics.host, config.metrics.port, metrics,
            routes=page_routes(pages), limits=config.metrics.wire,
            render_interval_seconds=config.daemon.interval_seconds, web_config=config.web)
    except OSError as exc:  # ssl.SSLError too (a certificate the context cannot load)
        log.error("metrics.listen_failed", host=config.metrics.host, port=config.metrics.port,
                  error=exc.strerror or str(exc))
        return metrics, None

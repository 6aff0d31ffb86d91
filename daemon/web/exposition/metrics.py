"""Prometheus metrics of the daemon, its watches and its agents, built fresh at each scrape.

``DaemonMetricsCollector`` holds no copies of the daemon's numbers: at scrape time it reads
the last status snapshot, the receiver's counters and the agent store's all-time totals
through the callables and reader it was given. Watches are labelled by watch name, never
by pid; agent, model and tool label values are capped (see ``LabelLimits``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import structlog
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from daemon import __version__
from daemon.agents.decoding.counters import Counters, OtlpCounter, OtlpStats
from daemon.agents.store.queries import StoreReader
from daemon.agents.store.totals import read_totals
from daemon.guard.guard import GuardCounts
from daemon.stats.histogram import BucketCounts
from daemon.status.snapshot import FlushStatus, StatusSnapshot
from daemon.watch.thresholds import Level
from daemon.web.exposition.agent_metrics import (
    AgentLabelCaps,
    LabelLimits,
    agent_families,
)
from daemon.web.exposition.fleet_metrics import fleet_families
from daemon.web.exposition.guard_metrics import guard_families

log = structlog.get_logger(component="metrics")

TICK_BUCKETS_SECONDS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)


class TickDurations:
    """A thread-safe histogram of tick durations, observed by the service after each tick.

    >>> t = TickDurations(); t.observe(0.003); t.observe(20.0); t.count
    2
    """

    def __init__(self, buckets: Sequence[float] = TICK_BUCKETS_SECONDS) -> None:
        self.buckets = tuple(buckets)
        self._lock = threading.Lock()
        self._hist = BucketCounts(self.buckets)

    @property
    def count(self) -> int:
        """Ticks observed."""
        with self._lock:
            return self._hist.count

    def observe(self, seconds: float) -> None:
        """Count one tick that took ``seconds``."""
        with self._lock:
            self._hist.observe(seconds)

    def family(self) -> HistogramMetricFamily:
        """The histogram as a metric family."""
        with self._lock:
            buckets, total = self._hist.cumulative(), self._hist.sum
        family = HistogramMetricFamily(
            "telemetryd_tick_duration_seconds", "Time one sampling tick took.", labels=[]
        )
        family.add_metric([], buckets, total)
        return family


class DaemonMetricsCollector(Collector):
    """Collects every telemetryd series at scrape time from the sources it is given.

    ``snapshot`` returns the last status snapshot (``StatusPublisher.publish``) or None before
    the first tick; ``agent_counters`` returns the receiver's counters
    (``AgentTelemetry.stats``); ``agent_reader`` points at the agent event store. Agent series
    are cached ``cache_seconds`` so a burst of scrapes reads SQLite once.
    """

    def __init__(
        self,
        snapshot: Callable[[], StatusSnapshot | None],
        agent_counters: Callable[[], OtlpStats] | None = None,
        agent_reader: StoreReader | None = None,
        *,
        limits: LabelLimits | None = None,
        cache_seconds: float = 5.0,
        version: str = __version__,
        monotonic: Callable[[], float] = time.monotonic,
        guard: Callable[[], GuardCounts] | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.guard = guard
        self.agent_counters = agent_counters
        self.agent_reader = agent_reader
        self.limits = limits or LabelLimits()
        self.cache_seconds = cache_seconds
        self.version = version
        self.monotonic = monotonic
        self.ticks = TickDurations()
        self._caps = AgentLabelCaps(self.limits)
        self._agent_lock = threading.Lock()
        self._agent_cache: tuple[float, list[Metric]] | None = None
        self._errors: Counters[str] = Counters()  # scrapes run on several server threads

    def observe_tick(self, seconds: float) -> None:
        """Record one tick's duration (call from ``Service.tick``)."""
        self.ticks.observe(seconds)

    def collect(self) -> Iterator[Metric]:
        """Every family, built now; a failing source costs its own series, not the scrape."""
        build = GaugeMetricFamily("telemetryd_build_info", "telemetryd build; always 1.",
                                  labels=["version"])
        build.add_metric([self.version], 1.0)
        yield build
        yield self.ticks.family()
        snapshot = self._guarded("snapshot", self.snapshot)
        if snapshot is not None:
            yield from daemon_families(snapshot)
            yield from watch_families(snapshot)
            yield from fleet_families(snapshot)
        if self.guard is not None:
            counts = self._guarded("guard", self.guard)
            if counts is not None:
                yield from guard_families(counts)
        if self.agent_counters is not None:
            counters = self._guarded("otlp", self.agent_counters)
            if counters is not None:
                yield from otlp_families(counters)
        if self.agent_reader is not None:
            agent = self._guarded("agents", self._agent_families)
            if agent is not None:
                yield from agent
        errors = CounterMetricFamily(
            "telemetryd_scrape_errors", "Sources that failed while building a scrape.",
            labels=["part"],
        )
        for part, count in sorted(self._errors.snapshot().items()):
            errors.add_metric([part], float(count))
        yield errors

    def _guarded(self, part: str, source: Callable[[], Any]) -> Any:
        try:
            return source()
        except Exception as exc:  # a broken source must not take the other series down
            self._errors.add(part)
            log.warning("metrics.collect_failed", part=part, error=type(exc).__name__)
            return None

    def _agent_families(self) -> list[Metric]:
        assert self.agent_reader is not None
        with self._agent_lock:
            now = self.monotonic()
            cached = self._agent_cache
            if cached is not None and now - cached[0] < self.cache_seconds:
                return cached[1]
            families = agent_families(read_totals(self.agent_reader.path), self._caps)
            self._agent_cache = (now, families)
            return families


# --- the daemon and its watches ---------------------------------------------------------


def daemon_families(snapshot: StatusSnapshot) -> list[Metric]:
    """Ticks, reports and delivery from one status snapshot."""
    out: list[Metric] = [
        _gauge("telemetryd_start_time_seconds", "Unix time the daemon started.",
               snapshot.started_at),
    ]
    tick = snapshot.last_tick
    out.append(_counter("telemetryd_ticks", "Sampling ticks run since the daemon started.",
                        tick.count if tick else 0))
    if tick is not None:
        out.append(_gauge("telemetryd_last_tick_timestamp_seconds",
                          "Unix time of the last completed tick.", tick.at))
        out.append(_counter("telemetryd_process_identities_evicted",
                            "Process images the selector's cache evicted past its caps.",
                            tick.identities_evicted))
    reports = snapshot.reports
    for value, name, doc in (
        (reports.pending, "telemetryd_reports_pending", "Crash reports waiting in the spool."),
        (reports.quarantined, "telemetryd_reports_quarantined",
         "Crash reports set aside after a permanent rejection."),
        (reports.held_in_memory, "telemetryd_reports_held_in_memory",
         "Reports the spool could not write yet, held in memory."),
        (reports.stats_waiting if reports.pending is not None else None,
         "telemetryd_stats_waiting",
         "Hourly stats summaries waiting in the spool for Sentry (not crash reports)."),
    ):
        if value is not None:
            out.append(_gauge(name, doc, value))
    out.append(_counter("telemetryd_reports_written", "Crash reports written since start.",
                        reports.written_since_start))
    out.append(_counter("telemetryd_reports_dropped",
                        "Crash reports the spool dropped to stay within its bounds.",
                        reports.dropped_total))
    flush = snapshot.flush or FlushStatus(enabled=False)
    out.append(_gauge("telemetryd_flush_enabled", "1 when a Sentry DSN is configured.",
                      1.0 if flush.enabled else 0.0))
    out.append(_counter("telemetryd_reports_delivered", "Reports Sentry confirmed receiving.",
                        flush.delivered_total))
    out.append(_counter("telemetryd_reports_rejected",
                        "Reports quarantined after Sentry rejected them.",
                        flush.quarantined_total))
    out.append(_counter("telemetryd_flush_failures",
                        "Flushes that ended retrying, rate limited or in error.",
                        flush.failures_total))
    if snapshot.otlp is not None:
        out.append(_gauge("telemetryd_otlp_up", "1 when the OTLP receiver is listening.",
                          1.0 if snapshot.otlp.up else 0.0))
    return out


def watch_families(snapshot: StatusSnapshot) -> list[Metric]:
    """Per-watch totals over the watch's matched process trees (label ``watch``, never pid)."""
    processes = GaugeMetricFamily("telemetryd_watch_processes",
                                  "Processes the watch matches now.", labels=["watch"])
    rss = GaugeMetricFamily("telemetryd_watch_rss_bytes",
                            "Resident memory of the watch's process trees.", labels=["watch"])
    cpu = GaugeMetricFamily("telemetryd_watch_cpu_cores",
                            "CPU the watch's process trees use, in cores (1 = one core busy).",
                            labels=["watch"])
    level = GaugeMetricFamily("telemetryd_watch_level",
                              "Worst threshold level in the watch: 0 ok, 1 warning, 2 critical.",
                              labels=["watch"])
    at_level = GaugeMetricFamily("telemetryd_watch_processes_at_level",
                                 "Matched processes at each threshold level.",
                                 labels=["watch", "level"])
    growth = GaugeMetricFamily("telemetryd_watch_rss_growth_bytes_per_second",
                               "Fastest RSS growth among the watch's processes.",
                               labels=["watch"])
    eta = GaugeMetricFamily("telemetryd_watch_seconds_to_critical",
                            "Soonest projected time until a process reaches critical RSS.",
                            labels=["watch"])
    orphans = GaugeMetricFamily("telemetryd_orphans",
                                "Processes the watch's trees left behind that still run.",
                                labels=["watch"])
    orphans_rss = GaugeMetricFamily("telemetryd_orphans_rss_bytes",
                                    "Resident memory of what the watch's trees left behind.",
                                    labels=["watch"])
    for watch in snapshot.watches:
        name = watch.name
        live = watch.live
        levels = [p.state for p in live]
        processes.add_metric([name], float(len(live)))
        rss.add_metric([name], float(sum(_number(p.rss_bytes) for p in live)))
        cpu.add_metric([name], sum(_number(p.cpu_percent) for p in live) / 100.0)
        level.add_metric([name], float(max(levels, default=Level.OK)))
        for each in Level:
            at_level.add_metric([name, each.label], float(levels.count(each)))
        rates = [p.rate_bytes_per_min / 60.0 for p in live if p.rate_bytes_per_min is not None]
        if rates:
            growth.add_metric([name], max(rates))
        etas = [p.eta_seconds for p in live if p.eta_seconds is not None]
        if etas:
            eta.add_metric([name], min(etas))
        orphans.add_metric([name], float(sum(o.members for o in watch.orphans)))
        orphans_rss.add_metric([name], float(sum(o.rss_bytes for o in watch.orphans)))
    return [processes, rss, cpu, level, at_level, growth, eta, orphans, orphans_rss]


# --- the OTLP receiver ----------------------------------------------------------------

# The receiver's gauges: (metric name, help, its OtlpStats field).
_OTLP_GAUGES: tuple[tuple[str, str, Callable[[OtlpStats], int]], ...] = (
    ("telemetryd_otlp_queue_depth", "Requests waiting for the store writer.",
     lambda s: s.queue_depth),
    ("telemetryd_otlp_active_series", "Incoming series remembered for cardinality caps.",
     lambda s: s.active_series),
    ("telemetryd_otlp_series_bytes",
     "Estimated memory of the remembered series (max_series_bytes).", lambda s: s.series_bytes),
    ("telemetryd_otlp_queued_bytes",
     "Estimated memory of the records waiting for the store writer.", lambda s: s.queued_bytes),
    ("telemetryd_otlp_connections_open", "Connections open to the receiver now.",
     lambda s: s.connections_open),
)


def otlp_families(stats: OtlpStats) -> list[Metric]:
    """The receiver's counters (``daemon/agents/decoding/counters.py``) as labelled families."""
    out: list[Metric] = []
    for counter in OtlpCounter:
        if counter.metric is None:
            continue
        if not counter.labels:
            out.append(_counter(counter.metric, counter.doc, stats.get(counter)))
            continue
        family = CounterMetricFamily(counter.metric, counter.doc, labels=list(counter.labels))
        for labels, count in sorted(stats.by_labels(counter).items()):
            family.add_metric(list(labels), float(count))
        out.append(family)
    for name, doc, field_of in _OTLP_GAUGES:
        out.append(_gauge(name, doc, field_of(stats)))
    return out


# --- small builders -------------------------------------------------------------------


def _counter(name: str, doc: str, value: Any) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=_number(value))


def _gauge(name: str, doc: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=_number(value))


def _number(value: Any) -> float:
    """A snapshot field as a float; missing or non-numeric fields count as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)

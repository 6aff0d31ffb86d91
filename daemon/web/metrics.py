"""Prometheus metrics of the daemon, its watches and its agents, built fresh at each scrape.

``DaemonMetricsCollector`` holds no copies of the daemon's numbers: at scrape time it reads
the last status snapshot, the receiver's counters and the agent store's all-time totals
through the callables and reader it was given. Watches are labelled by watch name, never
by pid; agent, model and tool label values are capped (see ``LabelLimits``).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from crash_reports.stats.histogram import BucketCounts
from daemon import __version__
from daemon.agents.counters import Counters
from daemon.agents.queries import StoreReader
from daemon.agents.totals import DURATION_BUCKETS_SECONDS, TotalRow, read_totals
from daemon.runtime.snapshot import FlushStatus, StatusSnapshot

log = structlog.get_logger(__name__)

OTHER = "other"
TICK_BUCKETS_SECONDS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
_LEVELS = {"ok": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class LabelLimits:
    """How many distinct values each agent label may take before the rest become ``other``."""

    agents: int = 50
    models: int = 50
    tools: int = 50


class LabelCap:
    """Sticky cap on one label's values: once admitted a value keeps its own series.

    Never evicting keeps every exported counter monotonic: ``other`` only ever gains members.

    >>> cap = LabelCap(1); cap.admit({"b": 5.0, "a": 9.0}); cap("a"), cap("b")
    ('a', 'other')
    >>> cap.admit({"c": 99.0}); cap("c")
    'other'
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._admitted: set[str] = set()

    def admit(self, weights: Mapping[str, float]) -> None:
        """Admit new values, busiest first, while there is room."""
        room = self.limit - len(self._admitted)
        if room <= 0:
            return
        new = [v for v in weights if v not in self._admitted]
        new.sort(key=lambda v: (-weights[v], v))
        self._admitted.update(new[:room])

    def __call__(self, value: str) -> str:
        return value if value in self._admitted else OTHER


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

    ``snapshot`` returns the last status snapshot (``Service.status_snapshot``) or None before
    the first tick; ``agent_counters`` returns the receiver's counters
    (``AgentTelemetry.stats``); ``agent_reader`` points at the agent event store. Agent series
    are cached ``cache_seconds`` so a burst of scrapes reads SQLite once.
    """

    def __init__(
        self,
        snapshot: Callable[[], StatusSnapshot | None],
        agent_counters: Callable[[], Mapping[str, int]] | None = None,
        agent_reader: StoreReader | None = None,
        *,
        limits: LabelLimits | None = None,
        cache_seconds: float = 5.0,
        version: str = __version__,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.snapshot = snapshot
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
        self._errors = Counters()  # scrapes run on several server threads

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
        for part, count in self._errors.snapshot().items():
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
    reports = snapshot.reports
    for value, name, doc in (
        (reports.pending, "telemetryd_reports_pending", "Crash reports waiting in the spool."),
        (reports.quarantined, "telemetryd_reports_quarantined",
         "Crash reports set aside after a permanent rejection."),
        (reports.held_in_memory, "telemetryd_reports_held_in_memory",
         "Reports the spool could not write yet, held in memory."),
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
    for watch in snapshot.watches:
        name = watch.name
        live = watch.live
        levels = [_LEVELS.get(p.state, 0) for p in live]
        processes.add_metric([name], float(len(live)))
        rss.add_metric([name], float(sum(_number(p.rss_bytes) for p in live)))
        cpu.add_metric([name], sum(_number(p.cpu_percent) for p in live) / 100.0)
        level.add_metric([name], float(max(levels, default=0)))
        for label, value in _LEVELS.items():
            at_level.add_metric([name, label], float(levels.count(value)))
        rates = [p.rate_bytes_per_min / 60.0 for p in live if p.rate_bytes_per_min is not None]
        if rates:
            growth.add_metric([name], max(rates))
        etas = [p.eta_seconds for p in live if p.eta_seconds is not None]
        if etas:
            eta.add_metric([name], min(etas))
    return [processes, rss, cpu, level, at_level, growth, eta]


# --- the OTLP receiver ----------------------------------------------------------------

# counter name -> (metric name, help, is a counter rather than a gauge)
_OTLP_SINGLES: dict[str, tuple[str, str, bool]] = {
    "requests_timed_out": ("telemetryd_otlp_requests_timed_out",
                           "Connections closed for reading too slowly.", True),
    "handler_errors": ("telemetryd_otlp_handler_errors",
                       "Requests that hit a bug in the receiver.", True),
    "events_written": ("telemetryd_agent_events_written",
                       "Agent events written to the event store.", True),
    "write_errors": ("telemetryd_agent_store_write_errors",
                     "Batches the event store failed to write.", True),
    "queue_depth": ("telemetryd_otlp_queue_depth",
                    "Requests waiting for the store writer.", False),
    "active_series": ("telemetryd_otlp_active_series",
                      "Incoming series remembered for cardinality caps.", False),
}


def otlp_families(counters: Mapping[str, int]) -> list[Metric]:
    """The receiver's counters (``daemon/agents/counters.py`` names) as labelled families."""
    requests = CounterMetricFamily("telemetryd_otlp_requests",
                                   "OTLP export requests received.", labels=["signal"])
    refused = CounterMetricFamily("telemetryd_otlp_requests_refused",
                                  "OTLP requests answered with an error status.",
                                  labels=["status", "reason"])
    points = CounterMetricFamily("telemetryd_otlp_points",
                                 "Data points and log records received, by outcome.",
                                 labels=["signal", "outcome"])
    dropped = CounterMetricFamily("telemetryd_otlp_points_dropped",
                                  "Accepted points dropped before reaching the store.",
                                  labels=["reason"])
    singles: dict[str, float] = dict.fromkeys(_OTLP_SINGLES, 0.0)
    for name, value in sorted(counters.items()):
        head, _, rest = name.partition(".")
        if name in singles:
            singles[name] = float(value)
        elif head == "requests_received":
            requests.add_metric([rest], float(value))
        elif head == "requests_refused":
            status, _, reason = rest.partition(".")
            refused.add_metric([status, reason], float(value))
        elif head == "points_accepted":
            points.add_metric([rest, "accepted"], float(value))
        elif head == "points_refused":
            signal, _, reason = rest.partition(".")
            points.add_metric([signal, reason], float(value))
        elif head in ("points_dropped", "records_dropped"):
            dropped.add_metric([rest], float(value))
        # requests_dropped.* repeats requests_refused.429.queue_full; other names are unknown.
    out: list[Metric] = [requests, refused, points, dropped]
    for name, (metric, doc, is_counter) in _OTLP_SINGLES.items():
        make = _counter if is_counter else _gauge
        out.append(make(metric, doc, singles[name]))
    return out


# --- agents, from the store's all-time totals ------------------------------------------


class AgentLabelCaps:
    """The three sticky caps agent series share."""

    def __init__(self, limits: LabelLimits) -> None:
        self.agent = LabelCap(limits.agents)
        self.model = LabelCap(limits.models)
        self.tool = LabelCap(limits.tools)

    def admit(self, rows: Iterable[TotalRow]) -> None:
        """Admit the busiest new values (weighted by calls and tokens) while there is room."""
        agents: dict[str, float] = defaultdict(float)
        models: dict[str, float] = defaultdict(float)
        tools: dict[str, float] = defaultdict(float)
        for row in rows:
            weight = row.value if row.measure == "tokens" else float(row.count)
            agents[row.agent] += weight
            if row.model:
                models[row.model] += weight
            if row.tool:
                tools[row.tool] += weight
        self.agent.admit(agents)
        self.model.admit(models)
        self.tool.admit(tools)


_Key = tuple[str, ...]


def agent_families(rows: Sequence[TotalRow], caps: AgentLabelCaps) -> list[Metric]:
    """Agent counters and duration histograms from the store's totals."""
    caps.admit(rows)
    tokens: dict[_Key, float] = defaultdict(float)
    unpriced: dict[_Key, float] = defaultdict(float)
    cost: dict[_Key, float] = defaultdict(float)
    requests: dict[_Key, float] = defaultdict(float)
    errors: dict[_Key, float] = defaultdict(float)
    tool_calls: dict[_Key, float] = defaultdict(float)
    sessions: dict[_Key, float] = defaultdict(float)
    request_hist = _Histograms()
    tool_hist = _Histograms()
    for row in rows:
        agent = caps.agent(row.agent)
        if row.measure == "tokens":
            tokens[(agent, caps.model(row.model), row.dim)] += row.value
        elif row.measure == "tokens_unpriced":
            unpriced[(agent, caps.model(row.model))] += row.value
        elif row.measure == "cost":
            cost[(agent, caps.model(row.model))] += row.value
        elif row.measure == "requests":
            key = (agent, caps.model(row.model))
            requests[key] += row.count
            request_hist.add_sum(key, row.value / 1000.0)
        elif row.measure == "errors":
            errors[(agent, caps.model(row.model), row.dim)] += row.count
        elif row.measure == "request_le":
            request_hist.add_bucket((agent, caps.model(row.model)), row.dim, row.count)
        elif row.measure == "tool_calls":
            key = (agent, caps.tool(row.tool))
            tool_calls[(*key, row.dim)] += row.count
            tool_hist.add_sum(key, row.value / 1000.0)
        elif row.measure == "tool_le":
            tool_hist.add_bucket((agent, caps.tool(row.tool)), row.dim, row.count)
        elif row.measure == "sessions":
            sessions[(agent,)] += row.count
    return [
        _counters("telemetryd_agent_tokens", "Tokens used, by token type.",
                  ["agent", "model", "type"], tokens),
        _counters("telemetryd_agent_cost_usd",
                  "Cost in US dollars: reported by the agent, else priced from tokens.",
                  ["agent", "model"], cost),
        _counters("telemetryd_agent_tokens_unpriced",
                  "Tokens of models with no known price (not in the cost).",
                  ["agent", "model"], unpriced),
        _counters("telemetryd_agent_requests", "Model API requests.",
                  ["agent", "model"], requests),
        _counters("telemetryd_agent_errors", "Failed model API requests, by error class.",
                  ["agent", "model", "class"], errors),
        _counters("telemetryd_agent_tool_calls", "Tool executions, by outcome (ok, error).",
                  ["agent", "tool", "outcome"], tool_calls),
        _counters("telemetryd_agent_sessions", "Agent sessions started.", ["agent"], sessions),
        request_hist.family("telemetryd_agent_request_duration_seconds",
                            "Duration of model API requests.", ["agent", "model"]),
        tool_hist.family("telemetryd_agent_tool_duration_seconds",
                         "Duration of tool executions.", ["agent", "tool"]),
    ]


class _Histograms:
    """Bucket counts and sums per label set, merged from totals rows."""

    def __init__(self) -> None:
        self.hists: dict[_Key, BucketCounts] = {}
        self.sums: dict[_Key, float] = defaultdict(float)

    def add_bucket(self, key: _Key, bound: str, count: int) -> None:
        hist = self.hists.get(key)
        if hist is None:
            hist = self.hists[key] = BucketCounts(DURATION_BUCKETS_SECONDS)
        hist.add_bound(bound, count)

    def add_sum(self, key: _Key, seconds: float) -> None:
        self.sums[key] += seconds

    def family(self, name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, doc, labels=labels)
        for key in sorted(self.hists):
            family.add_metric(list(key), self.hists[key].cumulative(), self.sums.get(key, 0.0))
        return family


# --- small builders -------------------------------------------------------------------


def _counters(name: str, doc: str, labels: list[str],
              values: Mapping[_Key, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key in sorted(values):
        family.add_metric(list(key), values[key])
    return family


def _counter(name: str, doc: str, value: Any) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=_number(value))


def _gauge(name: str, doc: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=_number(value))


def _number(value: Any) -> float:
    """A snapshot field as a float; missing or non-numeric fields count as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)

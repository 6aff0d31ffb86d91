"""Feeding the persisted stats from what the daemon does, and shipping closed hours to Sentry."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import sentry_sdk
import structlog

from crash_reports.common.reserve import DiskReserve
from crash_reports.delivery.flusher import FlushResult
from crash_reports.spool.store import Dropped, Spool
from daemon.stats.events import stats_event
from daemon.stats.figures import Counter
from daemon.stats.history import HistoryWriter, TreeKey
from daemon.stats.store import StatsStore
from daemon.watch.monitor import Action, Crossed, Exited, ReportRequest, Seen
from daemon.watch.proc.sampler import TickSample
from daemon.watch.thresholds import Level

log = structlog.get_logger(component="stats")

_LEVEL_COUNTERS = {Level.WARNING: Counter.WARNINGS, Level.CRITICAL: Counter.CRITICALS}
SHIP_EVERY_SECONDS = 60.0
KEEP_SECONDS = 90 * 86400


class StatsRecorder:
    """Owns the stats store for the daemon: samples, counters, its own figures, shipping."""

    def __init__(self, path: Path, host: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 reserve: DiskReserve | None = None) -> None:
        self.store = StatsStore.open(path)
        self._monotonic = monotonic
        self.store.reserve = reserve
        self.history = _open_history(path)
        if self.history is not None:
            self.history.reserve = reserve
        self.host = host or socket.gethostname()
        self._self = psutil.Process()
        self._cpu_before: tuple[float, float] | None = None
        self._next_ship_at: float | None = None

    def start(self, now: float) -> None:
        """Count a start (an unclean one if the last run did not stop) and prune old hours."""
        self.store.record_start(now)
        self.store.prune(now, KEEP_SECONDS)

    def stop(self, now: float) -> None:
        """Record a clean stop and close the database."""
        self.store.record_stop(now)
        self.store.close()
        if self.history is not None:
            self.history.commit(now)
            self.history.close()

    def observe(self, sample: TickSample, actions: Sequence[Action]) -> None:
        """Record one tick's samples and the counters its actions imply."""
        now = sample.at
        for watch, trees in sample.by_watch.items():
            for tree in trees:
                if not tree.zombie:
                    self.store.record_sample(watch, now, tree.rss_bytes, tree.cpu_percent)
                    if self.history is not None:
                        self.history.record(TreeKey(watch, tree.pid, tree.create_time), now,
                                            tree.rss_bytes, tree.cpu_percent)
        for action in actions:
            counter = _counter_for(action)
            if counter is not None and isinstance(action, Seen | Exited | Crossed):
                self.store.incr(action.process.watch, counter, now)

    def report_written(self, request: ReportRequest) -> None:
        """Count a crash report put into the spool."""
        self.store.incr(request.process.watch, Counter.REPORTS_WRITTEN, request.at)

    def tick_done(self, now: float, duration_seconds: float) -> None:
        """Record the daemon's own figures for this tick."""
        cpu = os.times()  # the process's user + system time, without a /proc read
        used = cpu.user + cpu.system
        at = time.monotonic()
        percent = 0.0
        if self._cpu_before is not None and at > self._cpu_before[1]:
            percent = (used - self._cpu_before[0]) / (at - self._cpu_before[1]) * 100.0
        self._cpu_before = (used, at)
        self.store.record_tick(now, duration_seconds, self._self.memory_info().rss, percent)
        if self.history is not None:
            self.history.commit(now)

    def recent(self, watch: str, now: float) -> dict[str, Any] | None:
        """The last 24 hours of a watch, for a crash report."""
        figures = self.store.recent(watch, now)
        return dict(figures) if figures else None

    def flush_result(self, spool: Spool, result: FlushResult) -> None:
        """Count deliveries and refusals; mark stats periods shipped (on the flush thread)."""
        now = result.finished_at
        for report_id in result.delivered_ids:
            if not self.store.mark_delivered(report_id, now):
                self._count_report(spool, report_id, Counter.REPORTS_DELIVERED, now)
        for report_id in result.quarantined_ids:
            if not self.store.mark_rejected(report_id, now):
                self._count_report(spool, report_id, Counter.REPORTS_QUARANTINED, now)

    def dropped(self, item: Dropped) -> None:
        """The spool dropped a report by retention: count it, or offer a stats period again."""
        now = time.time()
        if not self.store.requeue(item.id, now):
            self.store.incr("", Counter.REPORTS_DROPPED, now)

    def _count_report(self, spool: Spool, report_id: str, counter: Counter, now: float) -> None:
        entry = spool.get(report_id)
        self.store.incr(entry.watch if entry and entry.watch else "", counter, now)

    def ship_due(self, client: sentry_sdk.Client, now: float, force: bool = False) -> int:
        """Put closed, unshipped hours into the spool as info events (at most once a minute,
        on the monotonic clock; the hours themselves are wall-clock hours). Only with a DSN
        (the caller's check): stats are for Sentry, never crash reports pending delivery."""
        at = self._monotonic()
        if not force and self._next_ship_at is not None and at < self._next_ship_at:
            return 0
        self._next_ship_at = at + SHIP_EVERY_SECONDS
        queued = 0
        for period in self.store.closed_unshipped_periods(now):
            if period.key.watch is not None and not saw_anything(period.figures):
                self.store.mark_empty(period.key, now)  # a watch that saw nothing sends nothing
                continue
            event = stats_event(period, self.host)
            scope = sentry_sdk.Scope(client=client)
            event_id = client.capture_event(event, scope=scope)
            if event_id:
                self.store.mark_queued(period.key, event_id, now)
                queued += 1
        if queued:
            log.info("stats.queued", periods=queued)
        return queued


def saw_anything(figures: Mapping[str, int | float | None]) -> bool:
    """Whether a watch's hour holds a sample or a count of anything.

    >>> saw_anything({"samples": 0, "rss_max_bytes": None, "processes_seen": 0})
    False
    >>> saw_anything({"samples": 0, "reports_dropped": 1})
    True
    """
    return any(value for name, value in figures.items()
               if name == "samples" or name in _COUNTER_NAMES)


_COUNTER_NAMES = frozenset(counter.value for counter in Counter)


def _counter_for(action: Action) -> Counter | None:
    """The stats counter an action adds one to, if any."""
    if isinstance(action, Seen):
        return Counter.PROCESSES_SEEN
    if isinstance(action, Exited):
        return Counter.PROCESSES_EXITED
    if isinstance(action, Crossed) and action.transition.to_level > action.transition.from_level:
        return _LEVEL_COUNTERS.get(action.transition.to_level)
    return None


def _open_history(path: Path) -> HistoryWriter | None:
    """The history tables next to the stats; without them the daemon samples on, chartless."""
    try:
        return HistoryWriter.open(path)
    except sqlite3.Error as exc:
        log.warning("history.unavailable", path=str(path), error=str(exc))
        return None

"""What the status page, its JSON API and ``telemetryd top`` show, built from published data.

Pure: the typed status snapshot the daemon publishes each tick, the spool's report list, the
history rows and ``now`` go in; typed rows come out. Nothing here samples a process.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from crash_reports.spool.records import SpoolEntry
from daemon.agents.store.today import AgentToday
from daemon.stats.history import TreeHistory
from daemon.status.recent_events import RecentEvent
from daemon.status.snapshot import StatusSnapshot

_PID_IN_TITLE = re.compile(r" pid (\d+)\b")
EventUrl = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class TreeRow:
    """One watched process tree as the views show it."""

    watch: str
    pid: int
    name: str
    started_at: float | None
    rss_bytes: int
    cpu_percent: float
    state: str
    rate_bytes_per_min: float | None
    eta_seconds: float | None
    rss_warning_bytes: int | None
    rss_critical_bytes: int | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One crash report with its delivery state and, once delivered, its Sentry link."""

    id: str
    created_at: float
    watch: str | None
    kind: str | None
    state: str
    title: str
    url: str | None


@dataclass(frozen=True, slots=True)
class DaemonView:
    """The daemon itself: running or not, and how its ticks go."""

    running: bool
    version: str
    pid: int | None
    started_at: float | None
    last_tick_at: float | None
    last_tick_seconds: float | None
    interval_seconds: float
    reports_pending: int
    delivery: str
    stats_waiting: int = 0
    other_waiting: int = 0


@dataclass(frozen=True, slots=True)
class StatusView:
    """Everything one look needs."""

    generated_at: float
    daemon: DaemonView
    trees: tuple[TreeRow, ...]
    idle_watches: tuple[str, ...]
    agents: tuple[AgentToday, ...]
    events: tuple[RecentEvent, ...]
    reports: tuple[ReportRow, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The ``/api/status`` document."""
        data = asdict(self)
        data["events"] = [e.to_json() for e in self.events]
        return data


def tree_rows(snapshot: StatusSnapshot) -> tuple[list[TreeRow], list[str]]:
    """Rows for every matched tree, and the watches that match nothing now."""
    rows: list[TreeRow] = []
    idle: list[str] = []
    for watch in snapshot.watches:
        live = watch.live
        if not live and not watch.orphans:
            idle.append(watch.name)
        for proc in live:
            rows.append(TreeRow(
                watch=watch.name, pid=proc.pid, name=proc.name, started_at=proc.create_time,
                rss_bytes=proc.rss_bytes, cpu_percent=proc.cpu_percent, state=proc.state.label,
                rate_bytes_per_min=proc.rate_bytes_per_min, eta_seconds=proc.eta_seconds,
                rss_warning_bytes=watch.rss_warning_bytes,
                rss_critical_bytes=watch.rss_critical_bytes, note=proc.note,
            ))
        for orphan in watch.orphans:
            rows.append(TreeRow(
                watch=watch.name, pid=orphan.pid, name=orphan.name,
                started_at=orphan.create_time, rss_bytes=orphan.rss_bytes,
                cpu_percent=orphan.cpu_percent, state="orphaned", rate_bytes_per_min=None,
                eta_seconds=None, rss_warning_bytes=None, rss_critical_bytes=None,
                note=f"left by pid {orphan.agent_pid}",
            ))
    return rows, idle


def once_per_pid(rows: Sequence[TreeRow]) -> list[TreeRow]:
    """Each process once: a pid listed under two watches keeps its first (sorted) row."""
    seen: set[int] = set()
    out = []
    for row in rows:
        if row.pid not in seen:
            seen.add(row.pid)
            out.append(row)
    return out


def daemon_view(snapshot: StatusSnapshot | None, running: bool) -> DaemonView:
    """The daemon line of the views (an empty one before the first snapshot)."""
    if snapshot is None:
        return DaemonView(False, "?", None, None, None, None, 0.0, 0, "-")
    flush = snapshot.flush
    if flush is None:
        delivery = "-"
    elif not flush.enabled:
        delivery = "local only (no DSN)"
    else:
        delivery = flush.last_result or "waiting"
    tick = snapshot.last_tick
    return DaemonView(
        running=running and not snapshot.stopped,
        version=snapshot.telemetryd_version, pid=snapshot.pid,
        started_at=snapshot.started_at,
        last_tick_at=None if tick is None else tick.at,
        last_tick_seconds=None if tick is None else tick.duration_seconds,
        interval_seconds=snapshot.interval,
        reports_pending=snapshot.reports.pending or 0,
        delivery=delivery,
        stats_waiting=snapshot.reports.stats_waiting,
        other_waiting=snapshot.reports.other_waiting,
    )


def also_waiting(view: DaemonView) -> str:
    """What else waits for delivery beside the crash reports ("" when nothing does).

    >>> also_waiting(DaemonView(True, "1", 1, None, None, None, 1.0, 2, "ok", 3, 0))
    'stats waiting: 3'
    """
    parts = [f"stats waiting: {view.stats_waiting}"] if view.stats_waiting else []
    if view.other_waiting:
        parts.append(f"other waiting: {view.other_waiting}")
    return ", ".join(parts)


def event_rows(snapshot: StatusSnapshot, limit: int = 50) -> list[RecentEvent]:
    """The newest ``limit`` recent events, newest first."""
    return list(reversed(snapshot.events))[:limit]


def report_pid(report: ReportRow) -> int | None:
    """The pid a report is about: its title says ``<watch> pid <pid>: ...``.

    >>> report_pid(ReportRow("i", 0.0, "w", "rss_critical", "pending", "w pid 42: RSS", None))
    42
    """
    if report.watch and report.title.startswith(f"{report.watch} pid "):
        found = _PID_IN_TITLE.match(report.title, len(report.watch))
        return int(found.group(1)) if found else None
    return None


def report_rows(entries: Sequence[SpoolEntry], event_url: EventUrl,
                limit: int = 50) -> list[ReportRow]:
    """The newest ``limit`` reports (stats summaries left out), newest first."""
    rows = []
    for entry in sorted(entries, key=lambda e: e.created_at, reverse=True):
        if not entry.is_crash_report:
            continue  # hourly stats summaries, budget events and the daemon's own errors
        url = event_url(entry.id) if entry.state == "delivered" else None
        rows.append(ReportRow(entry.id, entry.created_at, entry.watch, entry.kind, entry.state,
                              entry.title, url))
        if len(rows) >= limit:
            break
    return rows


def status_view(snapshot: StatusSnapshot | None, running: bool, now: float,
                reports: Sequence[SpoolEntry] = (),
                event_url: EventUrl = lambda _id: None) -> StatusView:
    """The whole view from one snapshot (None: the daemon never wrote one)."""
    if snapshot is None:
        return StatusView(now, daemon_view(None, running), (), (), (), (),
                          tuple(report_rows(reports, event_url)))
    trees, idle = tree_rows(snapshot)
    return StatusView(now, daemon_view(snapshot, running), tuple(trees), tuple(idle),
                      snapshot.agents, tuple(event_rows(snapshot)),
                      tuple(report_rows(reports, event_url)))


def cost_steps(points: Sequence[tuple[float, float]], since: float, until: float,
               hour_seconds: float = 3600.0) -> list[tuple[float, float]]:
    """Hourly costs as a step line inside [since, until]: each hour drawn across its span.

    >>> cost_steps([(0.0, 2.0), (3600.0, 1.0)], 1800.0, 5000.0)
    [(1800.0, 2.0), (3600.0, 2.0), (3600.0, 1.0), (5000.0, 1.0)]
    """
    out: list[tuple[float, float]] = []
    for start, cost in sorted(points):
        left, right = max(start, since), min(start + hour_seconds, until)
        if left < right:
            out += [(left, cost), (right, cost)]
    return out


def history_json(histories: Sequence[TreeHistory], trees: Sequence[TreeRow],
                 reports: Sequence[ReportRow], costs: Mapping[str, list[tuple[float, float]]],
                 since: float, until: float, step_seconds: float) -> dict[str, Any]:
    """The ``/api/history`` document: points per tree with levels and report markers."""
    levels = {t.watch: (t.rss_warning_bytes, t.rss_critical_bytes) for t in trees}
    live = {(t.watch, t.pid) for t in trees}
    out_trees = []
    for history in histories:
        key = history.key
        if not history.points:
            continue
        first, last = history.points[0].at, history.points[-1].at
        warning, critical = levels.get(key.watch, (None, None))
        markers = [{"at": r.created_at, "id": r.id, "kind": r.kind, "state": r.state}
                   for r in reports
                   if r.watch == key.watch and report_pid(r) == key.pid
                   and first - step_seconds <= r.created_at
                   <= last + step_seconds]
        out_trees.append({
            "watch": key.watch, "pid": key.pid, "started_at": key.started_at,
            "live": (key.watch, key.pid) in live,
            "rss_warning_bytes": warning, "rss_critical_bytes": critical,
            "points": [[p.at, p.rss_bytes, round(p.cpu_percent, 2)] for p in history.points],
            "reports": markers,
        })
    return {
        "since": since, "until": until, "step_seconds": step_seconds, "trees": out_trees,
        "agents": [{"agent": agent,
                    "points": [[at, round(cost, 6)]
                               for at, cost in cost_steps(points, since, until)]}
                   for agent, points in sorted(costs.items())],
    }

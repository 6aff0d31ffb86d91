"""What the status page, its JSON API and ``telemetryd top`` show, built from published data.

Pure: the status snapshot the daemon writes each tick, the spool's report list, the
history rows and ``now`` go in; typed rows come out. Nothing here samples a process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from crash_reports.spool.store import SpoolEntry
from crash_reports.stats.history import TreeHistory
from daemon.agents.today import AgentToday
from daemon.runtime.recent_events import RecentEvent

STATES = ("ok", "warning", "critical", "orphaned")
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


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def tree_rows(snapshot: Mapping[str, Any]) -> tuple[list[TreeRow], list[str]]:
    """Rows for every matched tree, and the watches that match nothing now."""
    rows: list[TreeRow] = []
    idle: list[str] = []
    for watch in snapshot.get("watches") or []:
        name = str(watch.get("name", ""))
        processes = [p for p in watch.get("processes") or []
                     if not str(p.get("note", "")).startswith("zombie")]
        if not processes:
            idle.append(name)
        for proc in processes:
            rows.append(TreeRow(
                watch=name, pid=int(proc.get("pid", 0)), name=str(proc.get("name") or ""),
                started_at=_num(proc.get("create_time")),
                rss_bytes=int(proc.get("rss_bytes") or 0),
                cpu_percent=float(proc.get("cpu_percent") or 0.0),
                state=str(proc.get("state") or "ok"),
                rate_bytes_per_min=_num(proc.get("rate_bytes_per_min")),
                eta_seconds=_num(proc.get("eta_seconds")),
                rss_warning_bytes=_int(watch.get("rss_warning_bytes")),
                rss_critical_bytes=_int(watch.get("rss_critical_bytes")),
                note=str(proc.get("note") or ""),
            ))
    return rows, idle


def daemon_view(snapshot: Mapping[str, Any] | None, running: bool) -> DaemonView:
    """The daemon line of the views (an empty one before the first snapshot)."""
    snap = snapshot or {}
    tick = snap.get("last_tick") or {}
    flush = snap.get("flush") or {}
    if not flush:
        delivery = "-"
    elif not flush.get("enabled"):
        delivery = "local only (no DSN)"
    else:
        delivery = str(flush.get("last_result") or "waiting")
    return DaemonView(
        running=running and not snap.get("stopped", False),
        version=str(snap.get("telemetryd_version") or "?"),
        pid=_int(snap.get("pid")),
        started_at=_num(snap.get("started_at")),
        last_tick_at=_num(tick.get("at")),
        last_tick_seconds=_num(tick.get("duration_seconds")),
        interval_seconds=_num(snap.get("interval")) or 0.0,
        reports_pending=_int((snap.get("reports") or {}).get("pending")) or 0,
        delivery=delivery,
    )


def agent_rows(snapshot: Mapping[str, Any]) -> list[AgentToday]:
    """Per agent figures the daemon published for today."""
    rows = []
    for item in snapshot.get("agents") or []:
        try:
            rows.append(AgentToday(
                str(item["agent"]), int(item.get("tokens_today") or 0),
                _num(item.get("cost_today_usd")), _num(item.get("burn_usd_per_hour")),
                int(item.get("sessions_today") or 0), _num(item.get("budget_used_percent"))))
        except (KeyError, TypeError, ValueError):
            continue
    return rows


def event_rows(snapshot: Mapping[str, Any], limit: int = 20) -> list[RecentEvent]:
    """The newest ``limit`` recent events, newest first."""
    events = [RecentEvent.from_json(e) for e in snapshot.get("events") or []
              if isinstance(e, dict)]
    return [e for e in reversed(events) if e is not None][:limit]


def report_rows(entries: Sequence[SpoolEntry], event_url: EventUrl,
                limit: int = 50) -> list[ReportRow]:
    """The newest ``limit`` reports (stats summaries left out), newest first."""
    rows = []
    for entry in sorted(entries, key=lambda e: e.created_at, reverse=True):
        if entry.kind is None:
            continue  # hourly stats summaries, budget events and the daemon's own errors
        url = event_url(entry.id) if entry.state == "delivered" else None
        rows.append(ReportRow(entry.id, entry.created_at, entry.watch, entry.kind, entry.state,
                              entry.title, url))
        if len(rows) >= limit:
            break
    return rows


def status_view(snapshot: Mapping[str, Any] | None, running: bool, now: float,
                reports: Sequence[SpoolEntry] = (),
                event_url: EventUrl = lambda _id: None) -> StatusView:
    """The whole view from one snapshot (None: the daemon never wrote one)."""
    snap = snapshot or {}
    trees, idle = tree_rows(snap)
    return StatusView(now, daemon_view(snapshot, running), tuple(trees), tuple(idle),
                      tuple(agent_rows(snap)), tuple(event_rows(snap)),
                      tuple(report_rows(reports, event_url)))


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
                   if r.watch == key.watch and first - step_seconds <= r.created_at
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
        "agents": [{"agent": agent, "points": [[at, round(cost, 6)] for at, cost in points]}
                   for agent, points in sorted(costs.items())],
    }

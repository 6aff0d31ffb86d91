"""The status snapshot as typed values: built by one pure function, read by everyone.

The daemon builds a ``StatusSnapshot`` each tick and writes ``to_json()`` to status.json;
``telemetryd status``, ``/metrics`` and the tests read the same type back through
``from_json``. The JSON keys are the documented ``status --json`` format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.agents.store.today import AgentToday
from daemon.status.recent_events import RecentEvent
from daemon.watch.thresholds import Level

STATUS_VERSION = 1
ZOMBIE_NOTE = "zombie (exited, not reaped)"
ACCESS_DENIED_NOTE = "access denied (totals from /proc/PID/stat only)"


class StatusUnreadableError(Exception):
    """The status file is missing or not a snapshot."""


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    """One watched process tree as status shows it."""

    pid: int
    name: str
    rss_bytes: int
    cpu_percent: float
    state: Level = Level.OK  # a Level until JSON: to_json writes its label
    create_time: float | None = None
    members: int = 1
    rss_level: Level = Level.OK
    cpu_level: Level = Level.OK
    samples_over: int = 0
    rate_bytes_per_min: float | None = None
    eta_seconds: float | None = None
    access_denied: bool = False
    zombie: bool = False
    version: str | None = None

    @property
    def note(self) -> str:
        """What a person should know about this row."""
        if self.zombie:
            return ZOMBIE_NOTE
        return ACCESS_DENIED_NOTE if self.access_denied else ""

    def to_json(self) -> dict[str, Any]:
        """The row as ``status --json`` prints it."""
        if self.zombie:
            return {"pid": self.pid, "name": self.name, "rss_bytes": 0, "cpu_percent": 0.0,
                    "state": "ok", "note": self.note}
        return {
            "pid": self.pid, "name": self.name, "create_time": self.create_time,
            "rss_bytes": self.rss_bytes, "cpu_percent": self.cpu_percent,
            "members": self.members, "state": self.state.label,
            "rss_level": self.rss_level.label, "cpu_level": self.cpu_level.label,
            "samples_over": self.samples_over,
            "rate_bytes_per_min": self.rate_bytes_per_min, "eta_seconds": self.eta_seconds,
            "version": self.version, "note": self.note,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessStatus:
        """Read a row back (missing optional fields take their defaults)."""
        note = str(data.get("note") or "")
        return cls(
            pid=int(data["pid"]), name=str(data.get("name") or ""),
            rss_bytes=int(data.get("rss_bytes") or 0),
            cpu_percent=float(data.get("cpu_percent") or 0.0),
            state=Level.of(data.get("state")),
            create_time=_opt_float(data.get("create_time")),
            members=int(data.get("members") or 1),
            rss_level=Level.of(data.get("rss_level")),
            cpu_level=Level.of(data.get("cpu_level")),
            samples_over=int(data.get("samples_over") or 0),
            rate_bytes_per_min=_opt_float(data.get("rate_bytes_per_min")),
            eta_seconds=_opt_float(data.get("eta_seconds")),
            access_denied=note == ACCESS_DENIED_NOTE,
            zombie=note == ZOMBIE_NOTE,
            version=None if data.get("version") is None else str(data["version"]),
        )


@dataclass(frozen=True, slots=True)
class OrphanStatus:
    """A process a watched tree left behind, still attributed to the watch.

    ``age_seconds`` counts from the process's start, ``orphaned_seconds`` from when it
    left its tree; ``agent_exited`` says whether the agent that started it is gone.
    """

    pid: int
    name: str
    agent_pid: int
    agent_exited: bool
    rss_bytes: int
    cpu_percent: float
    members: int
    create_time: float
    age_seconds: float
    orphaned_seconds: float

    def to_json(self) -> dict[str, Any]:
        """The row as ``status --json`` prints it under ``watches[].orphans``."""
        return {"pid": self.pid, "name": self.name, "agent_pid": self.agent_pid,
                "agent_exited": self.agent_exited, "rss_bytes": self.rss_bytes,
                "cpu_percent": self.cpu_percent, "members": self.members,
                "create_time": self.create_time, "age_seconds": self.age_seconds,
                "orphaned_seconds": self.orphaned_seconds}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrphanStatus:
        """Read a row back."""
        return cls(pid=int(data["pid"]), name=str(data.get("name") or ""),
                   agent_pid=int(data.get("agent_pid") or 0),
                   agent_exited=bool(data.get("agent_exited")),
                   rss_bytes=int(data.get("rss_bytes") or 0),
                   cpu_percent=float(data.get("cpu_percent") or 0.0),
                   members=int(data.get("members") or 1),
                   create_time=float(data.get("create_time") or 0.0),
                   age_seconds=float(data.get("age_seconds") or 0.0),
                   orphaned_seconds=float(data.get("orphaned_seconds") or 0.0))


@dataclass(frozen=True, slots=True)
class WatchStatus:
    """One [[watch]], the process trees it matches now and what its trees left behind."""

    name: str
    processes: tuple[ProcessStatus, ...] = ()
    orphans: tuple[OrphanStatus, ...] = ()
    rss_warning_bytes: int | None = None
    rss_critical_bytes: int | None = None

    @property
    def live(self) -> tuple[ProcessStatus, ...]:
        """The matched trees that are running (zombies left out)."""
        return tuple(p for p in self.processes if not p.zombie)


@dataclass(frozen=True, slots=True)
class TickInfo:
    """The last completed tick."""

    at: float
    duration_seconds: float
    processes_scanned: int
    count: int
    identities_evicted: int = 0  # process images the selector's cache had to evict


@dataclass(frozen=True, slots=True)
class ReportCounts:
    """The spool and what the daemon wrote into it.

    ``pending`` counts crash reports waiting for delivery, and only them; hourly stats
    summaries waiting (``stats_waiting``) and the daemon's own errors or budget events
    (``other_waiting``) are figures of their own, never added to it.
    """

    pending: int | None = None
    quarantined: int | None = None
    written_since_start: int = 0
    held_in_memory: int = 0
    dropped_total: int = 0
    oldest_pending_at: float | None = None
    stats_waiting: int = 0
    other_waiting: int = 0


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """One [[budget]] and what was spent at the last budget check (None before it ran)."""

    agent: str
    period: str
    limit_usd: float
    spent_usd: float | None = None

    @property
    def used_ratio(self) -> float | None:
        """Share of the budget spent (1.0 = all of it).

        >>> BudgetUse("a", "daily", 20.0, 19.0).used_ratio
        0.95
        """
        if self.spent_usd is None or self.limit_usd <= 0:
            return None
        return self.spent_usd / self.limit_usd


@dataclass(frozen=True, slots=True)
class FlushStatus:
    """Delivery to Sentry; ``enabled`` is False when no DSN is configured."""

    enabled: bool
    failures_total: int = 0
    target: str | None = None
    last_flush_at: float | None = None
    last_result: str | None = None
    backoff_until: float | None = None
    rate_limits: Mapping[str, float] | None = None
    last_error: str | None = None
    delivered_total: int = 0
    quarantined_total: int = 0

    def to_json(self) -> dict[str, Any]:
        """The delivery section of ``status --json``."""
        if not self.enabled:
            return {"enabled": False, "note": "no Sentry DSN: nothing leaves this machine"}
        return {
            "enabled": True, "failures_total": self.failures_total, "target": self.target,
            "last_flush_at": self.last_flush_at, "last_result": self.last_result,
            "backoff_until": self.backoff_until,
            "rate_limits": dict(self.rate_limits) if self.rate_limits else None,
            "last_error": self.last_error, "delivered_total": self.delivered_total,
            "quarantined_total": self.quarantined_total,
        }


@dataclass(frozen=True, slots=True)
class OtlpStatus:
    """The agent telemetry receiver."""

    up: bool
    listen: str | None = None
    points_accepted: int | None = None
    dropped_or_refused: int | None = None
    error: str | None = None
    note: str | None = None
    # Identities pushed out by the caps ([otlp] max_agents...), by kind; only those > 0.
    evicted: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        """The receiver section of ``status --json`` (absent fields left out)."""
        fields = {"up": self.up, "listen": self.listen, "points_accepted": self.points_accepted,
                  "dropped_or_refused": self.dropped_or_refused, "error": self.error,
                  "note": self.note, "evicted": self.evicted or None}
        return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """Everything ``telemetryd status`` shows, as the daemon last published it."""

    pid: int
    telemetryd_version: str
    started_at: float
    config_source: str
    state_dir: str
    interval: float
    watches: tuple[WatchStatus, ...] = ()
    last_tick: TickInfo | None = None
    stopped: bool = False
    config: Mapping[str, Any] = field(default_factory=dict)
    reports: ReportCounts = ReportCounts()
    flush: FlushStatus | None = None
    otlp: OtlpStatus | None = None
    metrics_listen: str | None = None
    degraded: str | None = None  # e.g. "disk full": running, but not doing all of its job
    budgets: tuple[BudgetUse, ...] = ()
    agents: tuple[AgentToday, ...] = ()
    events: tuple[RecentEvent, ...] = ()
    version: int = STATUS_VERSION

    def to_json(self) -> dict[str, Any]:
        """The document written to status.json and printed by ``status --json``."""
        tick = self.last_tick
        return {
            "version": self.version,
            "telemetryd_version": self.telemetryd_version,
            "pid": self.pid,
            "started_at": self.started_at,
            "stopped": self.stopped,
            "degraded": self.degraded,
            "config_source": self.config_source,
            "config": dict(self.config),
            "state_dir": self.state_dir,
            "interval": self.interval,
            "last_tick": None if tick is None else {
                "at": tick.at, "duration_seconds": tick.duration_seconds,
                "processes_scanned": tick.processes_scanned, "count": tick.count,
                "identities_evicted": tick.identities_evicted},
            "watches": [{"name": w.name, "processes": [p.to_json() for p in w.processes],
                         "orphans": [o.to_json() for o in w.orphans],
                         "rss_warning_bytes": w.rss_warning_bytes,
                         "rss_critical_bytes": w.rss_critical_bytes}
                        for w in self.watches],
            "reports": {
                "pending": self.reports.pending, "quarantined": self.reports.quarantined,
                "written_since_start": self.reports.written_since_start,
                "held_in_memory": self.reports.held_in_memory,
                "dropped_total": self.reports.dropped_total,
                "oldest_pending_at": self.reports.oldest_pending_at,
                "stats_waiting": self.reports.stats_waiting,
                "other_waiting": self.reports.other_waiting,
            },
            "flush": self.flush.to_json() if self.flush else {},
            "otlp": self.otlp.to_json() if self.otlp else {},
            "metrics": {"listen": self.metrics_listen} if self.metrics_listen else {},
            "budgets": [{"agent": b.agent, "period": b.period, "limit_usd": b.limit_usd,
                         "spent_usd": b.spent_usd} for b in self.budgets],
            "agents": [a.to_json() for a in self.agents],
            "events": [e.to_json() for e in self.events],
        }

    @classmethod
    def from_json(cls, data: Any) -> StatusSnapshot:
        """Read a document written by ``to_json``; raise StatusUnreadableError if it is not one."""
        if not isinstance(data, dict) or data.get("version") != STATUS_VERSION:
            raise StatusUnreadableError("not a status snapshot this version understands")
        try:
            return _from_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StatusUnreadableError(f"not a status snapshot: {exc!r}") from None


def _from_json(data: Mapping[str, Any]) -> StatusSnapshot:
    tick = data.get("last_tick")
    reports = data.get("reports") or {}
    flush = data.get("flush") or {}
    otlp = data.get("otlp") or {}
    metrics = data.get("metrics") or {}
    return StatusSnapshot(
        pid=int(data.get("pid") or 0),
        telemetryd_version=str(data.get("telemetryd_version") or "?"),
        started_at=float(data.get("started_at") or 0.0),
        config_source=str(data.get("config_source") or ""),
        state_dir=str(data.get("state_dir") or ""),
        interval=float(data.get("interval") or 1.0),
        watches=tuple(
            WatchStatus(str(w["name"]),
                        tuple(ProcessStatus.from_json(p) for p in w.get("processes") or ()),
                        tuple(OrphanStatus.from_json(o) for o in w.get("orphans") or ()),
                        _opt_int(w.get("rss_warning_bytes")),
                        _opt_int(w.get("rss_critical_bytes")))
            for w in data.get("watches") or ()),
        last_tick=None if not tick else TickInfo(
            float(tick["at"]), float(tick.get("duration_seconds") or 0.0),
            int(tick.get("processes_scanned") or 0), int(tick.get("count") or 0),
            int(tick.get("identities_evicted") or 0)),
        stopped=bool(data.get("stopped")),
        config=dict(data.get("config") or {}),
        reports=ReportCounts(
            reports.get("pending"), reports.get("quarantined"),
            int(reports.get("written_since_start") or 0),
            int(reports.get("held_in_memory") or 0), int(reports.get("dropped_total") or 0),
            _opt_float(reports.get("oldest_pending_at")),
            int(reports.get("stats_waiting") or 0), int(reports.get("other_waiting") or 0)),
        flush=None if not flush else FlushStatus(
            enabled=bool(flush.get("enabled")),
            failures_total=int(flush.get("failures_total") or 0),
            target=flush.get("target"), last_flush_at=_opt_float(flush.get("last_flush_at")),
            last_result=flush.get("last_result"),
            backoff_until=_opt_float(flush.get("backoff_until")),
            rate_limits=flush.get("rate_limits"), last_error=flush.get("last_error"),
            delivered_total=int(flush.get("delivered_total") or 0),
            quarantined_total=int(flush.get("quarantined_total") or 0)),
        otlp=None if not otlp else OtlpStatus(
            bool(otlp.get("up")), otlp.get("listen"), otlp.get("points_accepted"),
            otlp.get("dropped_or_refused"), otlp.get("error"), otlp.get("note"),
            {str(k): int(v) for k, v in (otlp.get("evicted") or {}).items()} or None),
        metrics_listen=metrics.get("listen"),
        degraded=data["degraded"] if isinstance(data.get("degraded"), str) else None,
        budgets=tuple(BudgetUse(str(b["agent"]), str(b["period"]), float(b["limit_usd"]),
                                _opt_float(b.get("spent_usd")))
                      for b in data.get("budgets") or ()),
        agents=tuple(AgentToday.from_json(a) for a in data.get("agents") or ()),
        events=tuple(e for e in (RecentEvent.from_json(x) for x in data.get("events") or ())
                     if e is not None),
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)

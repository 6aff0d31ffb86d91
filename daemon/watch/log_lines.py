"""The one place where the monitor's typed actions become log lines (event names, fields)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from crash_reports.event.kinds import ReportKind
from daemon.watch.monitor import (
    Action,
    ChildrenGone,
    Crossed,
    Exited,
    Metric,
    Orphaned,
    OrphanExited,
    ReapOrphans,
    ReportRequest,
    Seen,
    Suppressed,
    WarningDue,
)
from daemon.watch.thresholds import Level

Severity = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class LogLine:
    """A structured log line: a stable event name, a severity and its fields."""

    event: str
    level: Severity
    fields: dict[str, Any]


def log_line(action: Action) -> LogLine | None:
    """The log line an action calls for (None for report requests, reaps and due warning
    actions: the report writer, the reaper and the action runner log those)."""
    if isinstance(action, Seen):
        sample = action.sample
        return LogLine("process.seen", "info", {
            "watch": action.process.watch, "pid": sample.pid, "name": sample.name,
            "rss_bytes": sample.rss_bytes, "members": sample.members})
    if isinstance(action, Crossed):
        return _crossed(action)
    if isinstance(action, ChildrenGone):
        return LogLine("process.child_killed", "error", {
            "watch": action.process.watch, "pid": action.process.pid,
            "gone_pids": list(action.gone_pids), "oom_kill_delta": action.oom_kill_delta,
            "pressure": action.pressure.label, "rss_bytes_before": action.rss_bytes_before,
            "rss_bytes": action.rss_bytes})
    if isinstance(action, Suppressed):
        if not isinstance(action.kind, ReportKind):
            return None  # a warning's actions: the tick logs action.suppressed if any are set
        return LogLine("report.suppressed", "info", {
            "watch": action.process.watch, "pid": action.process.pid,
            "kind": action.kind.value, "reason": action.reason})
    if isinstance(action, Exited):
        return LogLine("process.exited", "info", {
            "watch": action.process.watch, "pid": action.process.pid,
            "pressure": action.pressure.label, "last_rss_bytes": action.last_rss_bytes,
            "lifetime_seconds": action.lifetime_seconds})
    if isinstance(action, Orphaned):
        orphan = action.orphan
        left = orphan.last
        return LogLine("process.orphaned", "warning", {
            "watch": orphan.watch, "pid": orphan.pid, "name": left.name,
            "agent_pid": left.agent_pid, "agent_exited": orphan.agent_exited,
            "rss_bytes": left.rss_bytes, "members": left.members,
            "age_seconds": round(max(0.0, orphan.orphaned_at - left.create_time), 1)})
    if isinstance(action, OrphanExited):
        orphan = action.orphan
        return LogLine("process.orphan_exited", "info", {
            "watch": orphan.watch, "pid": orphan.pid, "agent_pid": orphan.last.agent_pid,
            "last_rss_bytes": orphan.last.rss_bytes,
            "orphaned_seconds": round(action.at - orphan.orphaned_at, 1),
            "lifetime_seconds": round(max(0.0, action.at - orphan.last.create_time), 1)})
    assert isinstance(action, ReportRequest | ReapOrphans | WarningDue)
    return None


def _crossed(action: Crossed) -> LogLine:
    sample = action.sample
    transition = action.transition
    fields: dict[str, Any] = {
        "watch": action.process.watch,
        "pid": action.process.pid,
        "metric": action.metric.value,
        "from_level": transition.from_level.label,
        "to_level": transition.to_level.label,
        "rss_bytes": sample.rss_bytes,
        "cpu_percent": sample.cpu_percent,
        "members": sample.members,
        "rate_bytes_per_min": _rounded(action.rate_bytes_per_min),
        "eta_seconds": _rounded(action.eta_seconds),
    }
    if action.metric is Metric.RSS:
        fields["level_bytes"] = None if transition.level_value is None \
            else int(transition.level_value)
    else:
        fields["level_percent"] = transition.level_value
    severity: Severity = (
        "info" if transition.to_level < transition.from_level
        else "error" if transition.to_level == Level.CRITICAL else "warning"
    )
    return LogLine(transition.event, severity, fields)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)

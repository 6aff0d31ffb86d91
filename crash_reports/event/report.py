"""A synthetic crash report as a Sentry event (pure: data and time in, event out)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from crash_reports.common.humanize import format_bytes, format_duration
from crash_reports.event.evidence import Evidence
from crash_reports.event.kinds import ReportKind
from crash_reports.event.redact import redact_command_line, redact_name

REPORT_NAMESPACE = uuid.UUID("6f0e4a52-2b8e-4c1f-9a55-1d1a3c2e7b10")
KINDS = tuple(kind.value for kind in ReportKind)


@dataclass(frozen=True)
class Attachment:
    """A file carried with the event in its envelope."""

    filename: str
    data: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class ReportInput:
    """Everything known about a crossing when the report is written."""

    kind: ReportKind
    watch: str
    host: str
    version: str
    at: float
    pid: int
    process_name: str
    create_time: float
    process: dict[str, Any]
    tree: dict[str, Any]
    thresholds: dict[str, Any]
    value: float | None
    level_value: float | None
    trend: dict[str, Any]
    system: dict[str, Any]
    samples: list[dict[str, Any]]
    evidence: Evidence = field(default_factory=Evidence)
    agent: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    environment: str = "production"
    title: str | None = None  # set for an aggregated (storm) report


@dataclass(frozen=True)
class BuiltReport:
    """The event and what goes on its scope."""

    event_id: str
    event: dict[str, Any]
    tags: dict[str, str]
    contexts: dict[str, dict[str, Any]]
    fingerprint: list[str]
    attachments: list[Attachment]

    @property
    def title(self) -> str:
        """The human title (the event's message)."""
        return str(self.event["message"])


def report_event_id(data: ReportInput) -> str:
    """A stable id for one crossing, so a re-sent report is stored once.

    >>> a = report_event_id(_example())
    >>> a == report_event_id(_example()) and len(a) == 32
    True
    """
    name = (f"{data.host}|{data.watch}|{data.pid}|{data.create_time:.2f}|{data.kind.value}|"
            f"{data.at:.3f}")
    return uuid.uuid5(REPORT_NAMESPACE, name).hex


def report_title(data: ReportInput) -> str:
    """A title a person understands at a glance.

    >>> report_title(_example())
    'claude-code pid 4242: RSS 3.2 GiB crossed critical 3.0 GiB'
    """
    if data.title is not None:
        return data.title
    who = f"{data.watch} pid {data.pid}"
    if data.kind is ReportKind.RSS_CRITICAL:
        return (f"{who}: RSS {format_bytes(data.value or 0)} crossed critical "
                f"{format_bytes(data.level_value or 0)}")
    if data.kind is ReportKind.CPU_CRITICAL:
        return (f"{who}: CPU {data.value or 0:.0f}% crossed critical "
                f"{data.level_value or 0:.0f}%")
    rss = data.tree.get("rss_bytes")
    detail = f" at RSS {format_bytes(rss)}" if isinstance(rss, int | float) else ""
    if data.kind is ReportKind.CHILD_OOM_KILLED:
        evidence = data.evidence
        gone = ", ".join(str(pid) for pid in evidence.gone_pids)
        before = evidence.rss_bytes_before
        if before is not None:
            detail = f" at tree RSS {format_bytes(before)}"
        return (f"{who}: child {gone} killed by the kernel OOM killer"
                f"{detail} ({evidence.level or 'warning'})")
    if data.kind is ReportKind.ORPHANS_LEFT:
        count = data.evidence.orphans_count
        orphans_rss = data.evidence.orphans_rss_bytes
        return (f"{who} exited and left {count} process{'es' if count != 1 else ''} "
                f"behind (RSS {format_bytes(orphans_rss)})")
    oom = " (kernel OOM killer fired)" if data.evidence.oom_kill_delta else ""
    killed = data.evidence.killed
    if data.kind is ReportKind.KILLED:
        how = (killed.signal_name if killed else None) or \
            f"exit status {killed.exit_status if killed else None}"
        return f"{who}: killed by {how}{detail}{oom}"
    level = data.evidence.level or "warning"
    return f"{who} exited under pressure ({level}){detail}{oom}"


def sanitize_process(process: dict[str, Any]) -> dict[str, Any]:
    """The process context with its command line, name and paths redacted, no environment."""
    clean = {key: value for key, value in process.items() if key not in ("environ", "env")}
    for key in ("name", "exe", "cwd"):
        if isinstance(clean.get(key), str):
            clean[key] = redact_name(clean[key])
    cmdline = clean.get("cmdline")
    if isinstance(cmdline, list):
        clean["cmdline"] = redact_command_line([str(arg) for arg in cmdline])
    elif isinstance(cmdline, str):
        clean["cmdline"] = redact_command_line([cmdline])[0]
    return clean


def build_report(data: ReportInput) -> BuiltReport:
    """Turn a crossing into a Sentry event with tags, contexts, fingerprint and samples."""
    if not isinstance(data.kind, ReportKind):
        raise ValueError(f"unknown report kind {data.kind!r}; expected one of {KINDS}")
    event_id = report_event_id(data)
    title = report_title(data)
    tags = {
        "watch": data.watch,
        "kind": data.kind.value,
        "process_name": data.process_name,
        "host": data.host,
        "telemetryd_version": data.version,
    }
    trend = dict(data.trend)
    eta = trend.get("eta_seconds")
    if isinstance(eta, int | float):
        trend["eta_human"] = format_duration(eta)
    contexts: dict[str, dict[str, Any]] = {
        "process": sanitize_process(data.process),
        "process_tree": dict(data.tree),
        "thresholds": dict(data.thresholds),
        "trend": trend,
        "system": dict(data.system),
        "crossing": {
            "kind": data.kind.value,
            "value": data.value,
            "level": data.level_value,
            "at": data.at,
            **data.evidence.as_dict(),
        },
    }
    if data.agent:
        contexts["agent"] = dict(data.agent)
        names = data.agent.get("agents") or []
        if names:
            tags["agent"] = str(names[0])
        if data.agent.get("match"):
            tags["agent.match"] = str(data.agent["match"])
    if data.stats:
        contexts["watch_stats"] = dict(data.stats)
    event: dict[str, Any] = {
        "event_id": event_id,
        "level": "fatal",
        "message": title,
        "logger": "telemetryd.watchdog",
        "timestamp": data.at,
        "platform": "other",
        "server_name": data.host,
        "release": f"telemetryd@{data.version}",
        "environment": data.environment,
        "transaction": data.watch,
    }
    samples = json.dumps({"watch": data.watch, "pid": data.pid, "samples": data.samples},
                         separators=(",", ":")).encode()
    return BuiltReport(
        event_id=event_id,
        event=event,
        tags=tags,
        contexts=contexts,
        fingerprint=["telemetryd", data.watch, data.kind.value],
        attachments=[Attachment("samples.json", samples)],
    )


def _example() -> ReportInput:
    return ReportInput(
        kind=ReportKind.RSS_CRITICAL, watch="claude-code", host="box", version="0.1.0", at=1000.0,
        pid=4242, process_name="claude", create_time=10.0, process={}, tree={},
        thresholds={}, value=3.2 * 1024**3, level_value=3 * 1024**3, trend={}, system={},
        samples=[],
    )

"""A guard verdict as a Sentry event of its own kind (pure: verdict and facts in, event out)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from crash_reports.event.report import Attachment, BuiltReport
from daemon.guard.verdicts import Verdict

GUARD_NAMESPACE = uuid.UUID("0d6f2a4e-61c3-4b8a-9d0e-7f3b2c1a9e55")


def guard_event_id(verdict: Verdict, host: str, at: float) -> str:
    """A stable id for one episode's report, so a re-sent report is stored once.

    >>> from crash_reports.event.kinds import ReportKind
    >>> from daemon.guard.verdicts import ToolLoopEvidence
    >>> v = Verdict(ReportKind.TOOL_LOOP, ToolLoopEvidence("Read", 10, "failure", 1.0, 9.0),
    ...             agent="claude-code", session="s1")
    >>> guard_event_id(v, "box", 5.0) == guard_event_id(v, "box", 5.0)
    True
    """
    name = f"{host}|{verdict.rule.value}|{verdict.subject}|{at:.3f}"
    return uuid.uuid5(GUARD_NAMESPACE, name).hex


def build_guard_report(verdict: Verdict, *, host: str, version: str, environment: str,
                       at: float, system: dict[str, Any],
                       actions: tuple[str, ...] = ()) -> BuiltReport:
    """The report for one verdict: the rule as ``kind``, its evidence as the ``guard`` context."""
    kind = verdict.rule.value
    where = verdict.watch or verdict.agent or "unknown"
    tags = {"kind": kind, "watch": where, "host": host, "telemetryd_version": version,
            "guard.rule": kind}
    if verdict.agent:
        tags["agent"] = verdict.agent
    subject: dict[str, Any] = {"watch": verdict.watch, "pid": verdict.pid,
                               "agent": verdict.agent, "session": verdict.session,
                               "agent_pid": verdict.agent_pid}
    guard = {"rule": kind, **{k: v for k, v in subject.items() if v is not None},
             **verdict.evidence.facts(), **verdict.extra}
    if actions:
        guard["actions"] = list(actions)
    event_id = guard_event_id(verdict, host, at)
    event: dict[str, Any] = {
        "event_id": event_id, "level": "error", "message": verdict.title,
        "logger": "telemetryd.guard", "timestamp": at, "platform": "other",
        "server_name": host, "release": f"telemetryd@{version}", "environment": environment,
        "transaction": where,
    }
    evidence = json.dumps(guard, separators=(",", ":"), default=str).encode()
    return BuiltReport(event_id=event_id, event=event, tags=tags,
                       contexts={"guard": guard, "system": dict(system)},
                       fingerprint=["telemetryd", "guard", where, kind],
                       attachments=[Attachment("guard.json", evidence)])

"""Carrying out a ReportRequest: gather facts at the edge, build the event, spool it."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from typing import Any

import sentry_sdk
import structlog

from crash_reports.event.capture import capture_report
from crash_reports.event.evidence import Evidence
from crash_reports.event.kinds import ReportKind
from crash_reports.event.report import BuiltReport, ReportInput, build_report
from crash_reports.event.system_facts import SystemFacts, process_details, tree_pss_bytes
from crash_reports.spool.store import StoredReport
from crash_reports.spool.transport import SpoolTransport
from daemon import __version__
from daemon.watch.monitor import ReportRequest, TrackedProcess
from daemon.watch.storms import StormReport

log = structlog.get_logger(component="reports")

AgentContextLookup = Callable[[TrackedProcess, float], dict[str, Any] | None]
StatsLookup = Callable[[str, float], dict[str, Any] | None]


class ReportWriter:
    """Writes synthetic crash reports into the spool through sentry-sdk."""

    def __init__(
        self,
        client: sentry_sdk.Client,
        transport: SpoolTransport,
        system: SystemFacts,
        environment: str,
        host: str | None = None,
        agent_context: AgentContextLookup | None = None,
        stats_context: StatsLookup | None = None,
    ) -> None:
        self.client = client
        self.transport = transport
        self.system = system
        self.environment = environment
        self.host = host or socket.gethostname()
        self.agent_context = agent_context
        self.stats_context = stats_context
        # Details of processes at warning or worse, so a report on a process that is
        # already gone still says who it was.
        self.details: dict[tuple[str, tuple[int, int]], dict[str, Any]] = {}

    def remember(self, tracked: TrackedProcess) -> None:
        """Capture a process's details while it still exists (called at a warning)."""
        details = process_details(tracked.pid)
        if details is not None:
            self.details[(tracked.watch, tracked.key)] = details

    def forget(self, tracked: TrackedProcess) -> None:
        """Drop remembered details of a process that is gone."""
        self.details.pop((tracked.watch, tracked.key), None)

    def capture(self, report: BuiltReport) -> StoredReport | None:
        """Spool ``report`` through sentry-sdk; what was stored, or None if the write
        failed (the envelope is then held in memory and retried each tick)."""
        capture_report(self.client, report)
        return self.transport.take_stored(report.event_id)

    def write_storm(self, storm: StormReport, evidence: Evidence) -> StoredReport | None:
        """One report for a storm: built around its largest tree, listing every pid."""
        pids = storm.pids()
        storm_facts = {
            "processes": len(storm.requests),
            "pids": pids,
            "pids_listed": len(pids),
            "rss_bytes_sum": sum(r.process.last.rss_bytes for r in storm.requests),
            "pss_bytes": tree_pss_bytes(pids),
        }
        return self.write(storm.representative, dataclasses.replace(evidence, storm=storm_facts),
                          title=storm.title)

    def write(self, request: ReportRequest, evidence: Evidence,
              title: str | None = None) -> StoredReport | None:
        """Build and spool one report; return what was stored, or None if it could not be
        stored now.

        Tree memory fields: ``rss_bytes`` is the sum of each member's RSS (a page shared
        by N members counts N times, cheap, what thresholds compare); ``pss_bytes`` is
        the sum of PSS from smaps_rollup (shared pages counted once), read only here.
        """
        tracked = request.process
        rule = request.rule
        sample = tracked.last
        details = None
        if request.kind not in (ReportKind.EXITED_UNDER_PRESSURE, ReportKind.ORPHANS_LEFT):
            details = process_details(tracked.pid)
        if details is None:
            details = self.details.get((tracked.watch, tracked.key), {"pid": tracked.pid})
        transition = request.transition
        data = ReportInput(
            kind=request.kind,
            watch=tracked.watch,
            host=self.host,
            version=__version__,
            at=request.at,
            pid=tracked.pid,
            process_name=sample.name,
            create_time=sample.create_time,
            process=details,
            tree={
                "rss_bytes": sample.rss_bytes,
                "cpu_percent": sample.cpu_percent,
                "members": sample.members,
                "root_rss_bytes": sample.root_rss_bytes,
                "root_cpu_percent": sample.root_cpu_percent,
                "include_children": rule.include_children,
                "pss_bytes": tree_pss_bytes((tracked.pid, *sample.member_pids)),
                "rss_bytes_is": "sum of members' RSS (shared pages once per member)",
                "pss_bytes_is": "sum of members' PSS (shared pages once in all)",
            },
            thresholds={
                "rss_warning_bytes": rule.rss_warning_bytes,
                "rss_critical_bytes": rule.rss_critical_bytes,
                "cpu_warning_percent": rule.cpu_warning_percent,
                "cpu_critical_percent": rule.cpu_critical_percent,
                "sustained": rule.sustained,
                "cpu_sustained": rule.cpu_sustained,
                "cooldown_seconds": rule.cooldown_seconds,
            },
            value=transition.value if transition else None,
            level_value=transition.level_value if transition else None,
            trend={
                "rate_bytes_per_min": tracked.rate_bytes_per_min,
                "eta_seconds": tracked.eta_seconds,
                "rss_level": tracked.rss.level.label,
                "cpu_level": tracked.cpu.level.label,
            },
            system=self.system.snapshot(),
            samples=[point.as_dict() for point in request.samples],
            evidence=evidence,
            agent=self.agent_context(tracked, request.at) if self.agent_context else None,
            stats=self.stats_context(tracked.watch, request.at) if self.stats_context else None,
            environment=self.environment,
            title=title,
        )
        report = build_report(data)
        stored = self.capture(report)
        if stored is None:
            log.error("report.write_deferred", watch=tracked.watch, pid=tracked.pid,
                      kind=request.kind, id=report.event_id,
                      reason="spool write failed; kept in memory and retried each tick")
            return None
        log.warning("report.written", watch=tracked.watch, pid=tracked.pid, kind=request.kind,
                    id=report.event_id, title=report.title)
        return stored

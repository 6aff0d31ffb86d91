"""The ``killed`` report ``telemetryd wrap`` writes when its child is ended by a signal or OOM.

It goes into the spool directly (no daemon needed; the next daemon start ships it).
"""

from __future__ import annotations

import signal
import socket
import time
from typing import Any

import structlog

from crash_reports.event.capture import capture_report
from crash_reports.event.evidence import Evidence, KilledFacts
from crash_reports.event.kinds import ReportKind
from crash_reports.event.redact import redact_args
from crash_reports.event.report import ReportInput, build_report
from crash_reports.event.system_facts import SystemFacts
from crash_reports.spool.transport import SpoolTransport
from daemon import __version__
from daemon.agents.linking.matching import process_context
from daemon.agents.store.queries import StoreReader
from daemon.config.schema import Config
from daemon.runtime.paths import StatePaths
from daemon.runtime.reports.delivery import open_spool
from daemon.runtime.reports.evidence import collect
from daemon.wrap.child import Outcome

log = structlog.get_logger(component="wrap")


def should_report(outcome: Outcome) -> bool:
    """A signal ended the child, or the OOM killer fired while it ran."""
    return outcome.signal_number is not None or bool(outcome.oom_kill_delta())


def killed_input(config: Config, watch: str, wrap_id: str, argv: list[str], outcome: Outcome,
                 agent: dict[str, Any] | None, host: str) -> ReportInput:
    """The report's facts: signal, exit status, last samples, tree and the agent's activity."""
    number = outcome.signal_number
    last = outcome.samples[-1] if outcome.samples else {}
    oom = outcome.oom_kill_delta()
    evidence = Evidence(
        oom_kill_delta=sum(oom.values()) or None,
        killed=KilledFacts(
            signal=number,
            signal_name=signal.Signals(number).name if number is not None else None,
            exit_status=outcome.exit_code,
            wrap_id=wrap_id,
            ran_seconds=round(outcome.ended_at - outcome.started_at, 3),
            oom_kill_sources=oom,
            last_rss_bytes=last.get("rss_bytes")),
        # The members are gone by now: their growth is what wrap saw, smaps and stacks are
        # listed as not collected.
        leak=collect(outcome.member_history.growth(
            int(m["pid"]) for m in outcome.members)).as_dict(),
    )
    members = sorted(outcome.members, key=lambda m: -int(m["rss_bytes"]))
    return ReportInput(
        kind=ReportKind.KILLED,
        watch=watch,
        host=host,
        version=__version__,
        at=outcome.ended_at,
        pid=outcome.pid,
        process_name=members[0]["name"] if members else argv[0],
        create_time=outcome.started_at,
        process={"pid": outcome.pid, "cmdline": redact_args(argv)},
        tree={"rss_bytes": last.get("rss_bytes"), "members": last.get("members"),
              "last_members": members[:20], "include_children": True},
        thresholds={},
        value=None,
        level_value=None,
        trend={},
        system=SystemFacts().snapshot(),
        samples=list(outcome.samples),
        evidence=evidence,
        agent=agent,
        environment=config.sentry.environment,
    )


def write_killed_report(config: Config, watch: str, wrap_id: str, argv: list[str],
                        outcome: Outcome) -> str | None:
    """Spool the report; return its id (None when the spool refused it)."""
    from daemon.runtime.running import make_sentry_client

    paths = StatePaths(config.daemon.state_dir)
    paths.ensure()
    agent = None
    try:
        members = tuple(int(m["pid"]) for m in outcome.members if "pid" in m)
        agent = process_context(StoreReader(paths.events_db), watch, outcome.pid, members,
                                outcome.started_at, time.time())
    except Exception as exc:  # the store is optional evidence: never lose the report for it
        log.warning("wrap.agent_context_unavailable", error=str(exc))
    data = killed_input(config, watch, wrap_id, argv, outcome, agent, socket.gethostname())
    report = build_report(data)
    spool = open_spool(config)
    client = make_sentry_client(SpoolTransport(spool), config)
    capture_report(client, report)
    client.flush()
    stored = spool.get(report.event_id) is not None
    log.warning("report.written" if stored else "report.write_failed", watch=watch,
                pid=outcome.pid, kind=ReportKind.KILLED.value, id=report.event_id,
                title=report.title)
    return report.event_id if stored else None

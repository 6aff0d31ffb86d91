"""One tick: sample, evaluate, carry out what the monitor asks for.

``Ticker`` owns the sampler, the monitor and the tick's own counters; the service calls
``Ticker.tick`` under its tick lock with the parts startup opened (``Running``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import structlog

from crash_reports.event.evidence import Evidence, OrphanFact
from crash_reports.event.kinds import ReportKind, Trigger
from crash_reports.event.system_facts import SystemFacts
from daemon.config.schema import Config, SignalAction, WatchRule
from daemon.runtime.action_runner import ActionRunner
from daemon.runtime.paths import StatePaths
from daemon.runtime.reports.evidence import LeakEvidence
from daemon.runtime.reports.evidence_worker import EvidenceJob, EvidenceWorker
from daemon.runtime.reports.guard_step import GuardStep
from daemon.runtime.reports.node_heap import NodeHeap
from daemon.runtime.running import Running
from daemon.status.recent_events import EventKind, RecentEvent
from daemon.status.snapshot import TickInfo
from daemon.status.status_file import pid_alive
from daemon.watch.log_lines import log_line
from daemon.watch.monitor import (
    Action,
    Crossed,
    Monitor,
    ReapOrphans,
    ReportRequest,
    TrackedProcess,
)
from daemon.watch.proc.announcements import (
    pids_by_watch,
    read_announced,
    remove_stale,
    with_wrapped_watch,
)
from daemon.watch.proc.members import MemberGrowth
from daemon.watch.proc.proctable import ProcessTable
from daemon.watch.proc.sampler import Sampler, TickSample
from daemon.watch.proc.trees import TreeMemory
from daemon.watch.reaper import Reaper
from daemon.watch.storms import STORM_MIN_PROCESSES, StormReport, aggregate
from daemon.watch.thresholds import Level
from daemon.watch.triggers import Fired, select

log = structlog.get_logger(component="tick")
FiredSlot = tuple[str, tuple[int, int], Trigger]
# Reports that say which member of the tree grew (``wrap`` adds it to ``killed`` ones).
STOP_EVIDENCE_SECONDS = 2.0  # at shutdown, the most we wait for evidence under way
# A tick waits this long (at most a quarter of the interval) for evidence it asked for, so a
# quick gathering (/proc reads: milliseconds) still has its report written in that tick.
EVIDENCE_WAIT_SECONDS = 0.1


def evidence_wait_seconds(interval_seconds: float) -> float:
    """How long a tick waits for the evidence it asked for (pure).

    >>> evidence_wait_seconds(2.0), evidence_wait_seconds(0.2)
    (0.1, 0.05)
    """
    return min(EVIDENCE_WAIT_SECONDS, interval_seconds / 4)


@dataclass(frozen=True, slots=True)
class OomEvidence:
    """The kernel's OOM-kill counter now and how much it rose since the previous tick."""

    total: int | None = None
    delta: int | None = None


def emit(action: Action) -> None:
    """Write the log line an action calls for."""
    line = log_line(action)
    if line is not None:
        getattr(log, line.level)(line.event, **line.fields)


def report_evidence(request: ReportRequest, oom: OomEvidence) -> Evidence:
    """What a report carries beyond the tree: OOM evidence for trees under pressure (pure).

    >>> from types import SimpleNamespace
    >>> req = SimpleNamespace(kind=ReportKind.RSS_CRITICAL, gone_pids=(), samples=(),
    ...                       orphans=())
    >>> report_evidence(req, OomEvidence(3, 1)) == Evidence()  # type: ignore[arg-type]
    True
    """
    pressure = request.kind.pressure
    orphans = tuple(OrphanFact(o.pid, o.name, o.rss_bytes, o.members,
                               round(max(0.0, request.at - o.create_time), 1))
                    for o in request.orphans)
    return Evidence(
        level=request.process.level.label if pressure else None,
        oom_kill_total=oom.total if pressure and oom.delta is not None else None,
        oom_kill_delta=oom.delta if pressure and oom.total is not None else None,
        gone_pids=tuple(request.gone_pids),
        rss_bytes_before=request.samples[-1].rss_bytes
        if request.gone_pids and request.samples else None,
        orphans=orphans)


def watches_of(config: Config) -> tuple[WatchRule, ...]:
    """The configured watches plus the one ``telemetryd wrap`` children join by default."""
    return with_wrapped_watch(config.watches, psutil.virtual_memory().total)


def member_growth(process: TrackedProcess) -> list[MemberGrowth]:
    """Which members of the tree grew over the trend window, largest first (from memory)."""
    members = process.members
    if members is None:
        return []
    return members.growth(member.pid for member in process.last.member_rss)


@dataclass(frozen=True, slots=True)
class AwaitedReport:
    """A report written once its evidence is in (or its deadline passes), on a later tick."""

    request: ReportRequest
    oom: OomEvidence
    planned: Fired | None  # its exec/notify actions wait for the report's id
    job: EvidenceJob


def node_heap_for(rule: WatchRule | None, wrapped: bool, folder: Path) -> NodeHeap:
    """Whether this tree's Node members may be snapshotted, and where (pure)."""
    if rule is None or not rule.evidence_node_heap:
        return NodeHeap(None, "evidence_node_heap is off for this watch")
    if not wrapped:
        return NodeHeap(None, "not started by telemetryd wrap (no --heapsnapshot-signal)")
    return NodeHeap(folder)


def crossed_event(action: Crossed) -> RecentEvent:
    """The events-strip line for a level crossed up or back down (pure)."""
    transition = action.transition
    if transition.to_level > transition.from_level:
        kind = EventKind.CRITICAL if transition.to_level is Level.CRITICAL else EventKind.WARNING
    else:
        kind = EventKind.RECOVERED
    process = action.process
    return RecentEvent(transition.at, kind,
                       f"{process.watch} pid {process.pid}: {action.metric} {kind}",
                       process.watch, process.pid)


class Ticker:
    """Runs ticks: the sampler and monitor, the OOM baseline, and the tick counters."""

    def __init__(self, config: Config, process_table: ProcessTable, system: SystemFacts,
                 monotonic: Callable[[], float]) -> None:
        watches = watches_of(config)
        self.sampler = Sampler(process_table, watches)
        self.monitor = Monitor(watches, config.daemon.history_samples,
                               config.daemon.trend_window_seconds,
                               config.daemon.trend_startup_seconds)
        self.wrapped_dir = StatePaths(config.daemon.state_dir).wrapped
        self.heap_dir = StatePaths(config.daemon.state_dir).heap_snapshots
        self.trees = TreeMemory(StatePaths(config.daemon.state_dir).trees)
        self.sampler.restore(self.trees.load())
        self.wrapped_pids: set[int] = set()
        self.system = system
        self.monotonic = monotonic
        self.reaper = Reaper(monotonic)
        self.runner = ActionRunner()
        self.evidence = EvidenceWorker()
        self.evidence_wait = evidence_wait_seconds(config.daemon.interval_seconds)
        self.awaited: list[AwaitedReport] = []
        self.guard = GuardStep(config.daemon.state_dir)
        self.count = 0
        self.reports_written = 0
        self.last: TickInfo | None = None
        self._oom_kills: int | None = None

    def set_config(self, config: Config) -> None:
        """Use the watches and trend settings of a reloaded config."""
        watches = watches_of(config)
        self.sampler.set_rules(watches)
        self.monitor.set_rules(watches)
        self.monitor.history_samples = config.daemon.history_samples
        self.monitor.trend_window_seconds = config.daemon.trend_window_seconds
        self.monitor.trend_startup_seconds = config.daemon.trend_startup_seconds
        self.evidence_wait = evidence_wait_seconds(config.daemon.interval_seconds)

    def tick(self, running: Running, now: float) -> TickSample:
        """Sample, evaluate, log, write reports, feed stats; return the sample."""
        started = self.monotonic()
        sample = self.sampler.sample(started, now, self._announced())
        self.trees.save_if_changed(self.sampler.origins)
        running.agents.note_watched(sample)  # whose telemetry the receiver trusts
        oom = self._oom_evidence()
        actions = self.monitor.observe(sample, oom.delta)
        running.stats.observe(sample, actions)
        fired = self._fired(actions)  # due by the monitor's one cooldown (monotonic)
        if self.awaited:
            self.write_awaited(running)  # before this tick's exits forget who they were
        requests: list[ReportRequest] = []
        remembered: dict[str, int] = {}
        for action in actions:
            if isinstance(action, ReportRequest):
                requests.append(action)
                continue
            if isinstance(action, ReapOrphans):
                # SIGTERM now; SIGKILL and the "gone" check on later ticks (never waits).
                self.reaper.reap(action.watch, action.orphans, action.grace_seconds)
                continue
            emit(action)
            if isinstance(action, Crossed):
                running.tally.recent.add(crossed_event(action))
            if isinstance(action, Crossed) and \
                    action.transition.to_level > action.transition.from_level:
                # Remember who the process is while it exists, for a report after it is
                # gone; in a storm only the first few (their reports are aggregated).
                key = (action.process.watch, action.process.key)
                count = remembered.get(action.process.watch, 0)
                if key not in running.reports.details and count < STORM_MIN_PROCESSES:
                    remembered[action.process.watch] = count + 1
                    running.reports.remember(action.process)
        # Signals first, before any report is written: a stop must never wait behind the
        # evidence a report gathers (exec actions need the report's id, so they wait).
        for item in fired.values():
            signals = tuple(a for a in item.actions if isinstance(a, SignalAction))
            if signals:
                self.runner.submit(dataclasses.replace(item, actions=signals))
        awaited = len(self.awaited)
        for planned in aggregate(requests):
            if isinstance(planned, StormReport):
                self._write_storm(running, planned, oom)
            else:
                self._write_report(running, planned, oom, fired)
        if len(self.awaited) > awaited:
            self._wait_evidence(self.awaited[awaited:])
            self.write_awaited(running)
        for item in fired.values():
            rest = tuple(a for a in item.actions if not isinstance(a, SignalAction))
            if rest:
                self.runner.submit(dataclasses.replace(item, actions=rest))  # off the tick
        if self.reaper.pending:
            self.reaper.poll()
        if running.transport.held_count:
            running.transport.retry_failed_writes()
        if running.delivery.dsn:  # without one, stats stay in stats.db: nothing is pending
            running.stats.ship_due(running.client, now)
        running.agents.check_budgets(running.client, now, started)
        self.reports_written += self.guard.run(running, sample, self.monitor.rules,
                                               self.monitor.tracked, self.runner, started, now)
        duration = self.monotonic() - started
        if running.metrics is not None:
            running.metrics.observe_tick(duration)
        self.count += 1
        self.last = TickInfo(now, round(duration, 6), sample.processes_scanned, self.count,
                             sample.identities_evicted)
        return sample

    def close(self, running: Running | None = None) -> None:
        """Stop the evidence and action workers (bounded); write the reports still awaited;
        close the /proc files the sampler holds."""
        self.evidence.stop(STOP_EVIDENCE_SECONDS)
        if running is not None:
            self.write_awaited(running, stopping=True)
        self.runner.stop()
        self.sampler.close()

    def _wait_evidence(self, items: list[AwaitedReport]) -> None:
        """Give the evidence just asked for a short, bounded chance to come in."""
        deadline = self.monotonic() + self.evidence_wait
        for item in items:
            left = deadline - self.monotonic()
            if left <= 0 or not item.job.done.wait(left):
                return

    def write_awaited(self, running: Running, stopping: bool = False) -> None:
        """Write each awaited report whose evidence is in or past its deadline."""
        now = self.monotonic()
        for item in list(self.awaited):
            leak = item.job.result(now, stopping)
            if leak is None:
                continue
            self.awaited.remove(item)
            planned = self._spool_report(running, item.request, item.oom, leak, item.planned)
            rest = () if planned is None else tuple(
                a for a in planned.actions if not isinstance(a, SignalAction))
            if planned is not None and rest:
                self.runner.submit(dataclasses.replace(planned, actions=rest))
            process = item.request.process
            if (process.watch, process.key) not in self.monitor.tracked:
                running.reports.forget(process)  # gone while its evidence was gathered

    def _fired(self, actions: list[Action]) -> dict[FiredSlot, Fired]:
        # Watch actions this tick sets off: due when the monitor says so (its one cooldown);
        # reports fill in their ids.
        fired, suppressed = select(actions, self.monitor.rules)
        for item in suppressed:
            log.info("action.suppressed", watch=item.watch, pid=item.pid,
                     trigger=item.trigger.value, reason="cooldown")
        return {(item.watch, item.key, item.trigger): item for item in fired}

    def _announced(self) -> dict[str, list[int]]:
        # Children of `telemetryd wrap` join their watch from the first tick they exist.
        children = read_announced(self.wrapped_dir)
        gone = remove_stale(self.wrapped_dir, children, pid_alive)
        self.wrapped_pids = {child.pid for child in children if child not in gone}
        return pids_by_watch([child for child in children if child not in gone])

    def _oom_evidence(self) -> OomEvidence:
        # Read every tick (one small /proc read): the OOM killer may strike in the same
        # interval a process first crosses warning, and the delta needs a baseline.
        current = self.system.oom_kill_count()
        before = self._oom_kills
        self._oom_kills = current
        if current is None or before is None:
            return OomEvidence()
        return OomEvidence(current, current - before)

    def _write_storm(self, running: Running, storm: StormReport, oom: OomEvidence) -> None:
        request = storm.representative
        try:
            stored = running.reports.write_storm(storm, report_evidence(request, oom))
        except Exception as exc:  # a report must never stop sampling
            log.error("report.error", watch=storm.watch, kind=storm.kind.value,
                      processes=len(storm.requests), error=repr(exc))
            return
        finally:
            if storm.kind is ReportKind.EXITED_UNDER_PRESSURE:
                for member in storm.requests:
                    running.reports.forget(member.process)
        log.warning("report.storm", watch=storm.watch, kind=storm.kind.value,
                    processes=len(storm.requests), id=stored.id if stored else None)
        if stored is not None:
            self.reports_written += 1
            running.stats.report_written(request)
            running.tally.written(stored.id, storm.watch, request.process.pid,
                                   f"{storm.kind.value} storm", request.at)

    def _write_report(self, running: Running, request: ReportRequest, oom: OomEvidence,
                      fired: dict[FiredSlot, Fired]) -> None:
        trigger = request.kind.trigger
        slot = (request.process.watch, request.process.key, trigger)
        planned = fired.get(slot) if trigger is not None else None  # type: ignore[arg-type]
        process = request.process
        if request.kind.leak_evidence and process.members is not None:
            # Evidence is gathered off the tick; the report follows on a later tick.
            heap = node_heap_for(self.monitor.rules.get(process.watch),
                                 process.pid in self.wrapped_pids, self.heap_dir)
            job = self.evidence.submit(member_growth(process), heap)
            if planned is not None:
                del fired[slot]  # type: ignore[arg-type]
            self.awaited.append(AwaitedReport(request, oom, planned, job))
            return
        leak = LeakEvidence() if request.kind.leak_evidence else None
        written = self._spool_report(running, request, oom, leak, planned)
        if written is not None:
            fired[slot] = written  # type: ignore[index]

    def _spool_report(self, running: Running, request: ReportRequest, oom: OomEvidence,
                      leak: LeakEvidence | None, planned: Fired | None) -> Fired | None:
        """Write one report; ``planned`` with the report's id and path (as is if unwritten)."""
        try:
            evidence = dataclasses.replace(
                report_evidence(request, oom),
                leak=leak.as_dict() if leak is not None else None,
                actions=tuple(a.describe() for a in planned.actions) if planned else ())
            stored = running.reports.write(request, evidence)
        except Exception as exc:  # a report must never stop sampling
            log.error("report.error", watch=request.process.watch, pid=request.process.pid,
                      kind=request.kind.value, error=repr(exc))
            return planned
        finally:
            if request.kind is ReportKind.EXITED_UNDER_PRESSURE:
                running.reports.forget(request.process)
        if stored is None:
            return planned
        self.reports_written += 1
        running.stats.report_written(request)
        running.tally.written(stored.id, request.process.watch, request.process.pid,
                               request.kind.value, request.at)
        if planned is None:
            return None
        return dataclasses.replace(planned, report_id=stored.id, report_path=str(stored.path))

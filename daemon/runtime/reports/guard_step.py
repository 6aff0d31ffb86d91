"""The guard's edge on the tick: its verdicts become reports in the spool and ``on_guard``
actions; its blocks and its version book go to the state dir. Decisions are the guard's
(daemon/guard/); this module reads /proc for a fork storm's spawner and writes files."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil
import structlog

from crash_reports.common.atomic import write_atomic
from crash_reports.common.files import read_regular
from crash_reports.event.kinds import Trigger
from crash_reports.event.redact import redact_command_line
from daemon import __version__
from daemon.agents.decoding.identity import agent_for_watch
from daemon.config.schema import WatchRule
from daemon.guard.blocks import blocks_path, encode_blocks
from daemon.guard.forks import top_spawner
from daemon.guard.guard import Guard
from daemon.guard.report import build_guard_report
from daemon.guard.verdicts import ForkStormEvidence, Verdict
from daemon.runtime.action_runner import ActionRunner
from daemon.runtime.running import Running
from daemon.watch.monitor import TrackedProcess
from daemon.watch.proc.sampler import TickSample, TreeSample
from daemon.watch.triggers import Fired, actions_for

log = structlog.get_logger(component="guard")
VERSIONS_FILE = "guard-versions.json"


class GuardStep:
    """Runs after the monitor on every tick (``Ticker.tick``)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._blocks_open: bool | None = None  # None: whether an earlier run left a file
        self._versions_loaded = False

    def run(self, running: Running, sample: TickSample, rules: Mapping[str, WatchRule],
            tracked: Mapping[tuple[str, tuple[int, int]], TrackedProcess],
            runner: ActionRunner, now: float, wall: float) -> int:
        """One tick of the guard; how many reports it wrote."""
        guard = running.guard
        if not self._versions_loaded:
            self._load_versions(guard)
        written = 0
        for verdict in guard.on_tick(sample, rules, now):
            if isinstance(verdict.evidence, ForkStormEvidence):
                verdict = with_spawner(verdict, guard.recent_new_pids(verdict))
            tree = tree_for(verdict, sample, rules)
            written += self._report(running, verdict, tree, rules, tracked, runner, wall)
        if guard.versions.changed:
            guard.versions.changed = False
            self._save_versions(guard)
        self._write_blocks(guard, now, wall)
        return written

    def _report(self, running: Running, verdict: Verdict, tree: TreeSample | None,
                rules: Mapping[str, WatchRule],
                tracked: Mapping[tuple[str, tuple[int, int]], TrackedProcess],
                runner: ActionRunner, wall: float) -> int:
        rule = rules.get(tree.watch) if tree is not None else None
        actions = actions_for(rule, Trigger.GUARD) if rule is not None else ()
        if tree is None and verdict.session is not None:
            log.info("guard.no_tree", rule=verdict.rule.value, agent=verdict.agent,
                     reason="no single watched tree of this agent: on_guard not run")
        writer = running.reports
        report = build_guard_report(verdict, host=writer.host, version=__version__,
                                    environment=writer.environment, at=wall,
                                    system=writer.system.snapshot(),
                                    actions=tuple(a.describe() for a in actions))
        try:
            stored = writer.capture(report)
        except Exception as exc:  # a report must never stop sampling
            log.error("report.error", kind=verdict.rule.value, error=repr(exc))
            stored = None
        log.warning("guard.fired", rule=verdict.rule.value, watch=verdict.watch,
                    pid=verdict.pid, agent=verdict.agent, session=verdict.session,
                    title=verdict.title, id=report.event_id if stored else None)
        where = verdict.watch or verdict.agent or "?"
        if stored:
            running.tally.written(report.event_id, where, verdict.pid or 0,
                                   verdict.rule.value, wall)
        if actions and tree is not None:
            process = tracked.get((tree.watch, tree.key))
            runner.submit(Fired(
                Trigger.GUARD, tree.watch, tree.pid, tree.key, tree.create_time,
                verdict.rule.value, tree.rss_bytes,
                process.eta_seconds if process is not None else None, actions,
                stored.id if stored else None, str(stored.path) if stored else None))
        return 1 if stored else 0

    def _write_blocks(self, guard: Guard, now: float, wall: float) -> None:
        entries = [] if not guard.settings.block else [
            {"rule": b.rule.value, "agent": b.agent, "session": b.session,
             "reason": b.reason, "until": wall + b.seconds_left}
            for b in guard.blocks(now)]
        if self._blocks_open is None:
            self._blocks_open = blocks_path(self.state_dir).exists()  # cleared if left over
        if not entries and not self._blocks_open:
            return  # no file, or it already says nothing is blocked
        try:
            write_atomic(blocks_path(self.state_dir), encode_blocks(entries, wall),
                         durable=False)
        except OSError as exc:
            log.error("guard.blocks_write_failed", error=str(exc))
            return
        self._blocks_open = bool(entries)

    def _load_versions(self, guard: Guard) -> None:
        self._versions_loaded = True
        try:
            guard.versions.load(json.loads(read_regular(self.state_dir / VERSIONS_FILE,
                                                        4 * 1024 * 1024)))
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("guard.versions_unreadable", error=repr(exc))

    def _save_versions(self, guard: Guard) -> None:
        try:
            write_atomic(self.state_dir / VERSIONS_FILE,
                         json.dumps(guard.versions.to_json()).encode())
        except OSError as exc:
            log.error("guard.versions_write_failed", error=str(exc))


def tree_for(verdict: Verdict, sample: TickSample,
             rules: Mapping[str, WatchRule]) -> TreeSample | None:
    """The watched tree a verdict's actions apply to: its own, the one holding the pid the
    agent's telemetry named, or the agent's only tree; None when that is ambiguous."""
    if verdict.watch is not None and verdict.key is not None:
        for tree in sample.by_watch.get(verdict.watch, ()):
            if tree.key == verdict.key:
                return tree
        return None
    candidates = [tree for watch, trees in sample.by_watch.items()
                  if agent_for_watch(watch) == verdict.agent for tree in trees]
    if verdict.agent_pid is not None:
        for tree in candidates:
            if verdict.agent_pid == tree.pid or verdict.agent_pid in tree.member_pids:
                return tree
    return candidates[0] if len(candidates) == 1 else None


def with_spawner(verdict: Verdict, new_pids: Sequence[int]) -> Verdict:
    """The fork storm's verdict naming the process that started most new ones (reads /proc)."""
    parents = []
    for pid in new_pids:
        try:
            parents.append(psutil.Process(pid).ppid())
        except psutil.Error:
            continue
    spawner, children = top_spawner(parents)
    cmdline: tuple[str, ...] = ()
    if spawner is not None:
        try:
            cmdline = tuple(redact_command_line(psutil.Process(spawner).cmdline()))
        except psutil.Error:
            cmdline = ()
    assert isinstance(verdict.evidence, ForkStormEvidence)
    evidence = dataclasses.replace(verdict.evidence, spawner_pid=spawner,
                                   spawner_children=children, spawner_cmdline=cmdline)
    return dataclasses.replace(verdict, evidence=evidence)


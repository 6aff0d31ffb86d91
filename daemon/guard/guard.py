"""The guard's state: the rules, their episodes, fed from the tick and from ingestion.

``observe_records`` runs on the event store's writer thread with what was just written;
``on_tick`` runs on the tick with the tick's sample. Both take the lock briefly: decisions
are the rules' (pure, in this package), this class only routes data to them and keeps
which episodes are open. Windows are measured on the monotonic clock (arrival time for
telemetry: exporters batch, Claude Code's metrics every 60 s); the agents' own timestamps
are kept only as evidence.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from crash_reports.event.kinds import GUARD_KINDS, ReportKind
from daemon.agents.decoding.identity import agent_for_watch
from daemon.agents.decoding.records import ApiRequest, CostUsage, Record, TokenUsage, ToolCall
from daemon.config.schema import GuardSettings, WatchRule
from daemon.guard.cost import CostSurgeRule
from daemon.guard.episodes import Episodes
from daemon.guard.errors import ErrorStormRule
from daemon.guard.forks import ForkStormRule, TreeId
from daemon.guard.spin import IdleSpinRule
from daemon.guard.tools import ToolLoopRule
from daemon.guard.verdicts import Evidence, Verdict
from daemon.guard.versions import VersionBook
from daemon.watch.proc.sampler import TickSample

BLOCKING_RULES = (ReportKind.TOOL_LOOP, ReportKind.COST_SURGE)
IDLE_AFTER_SECONDS = 60.0  # no request or tool call this long: idle, for version figures
MAX_PENDING = 256  # verdicts waiting for the tick (more in one interval are counted, dropped)


@dataclass(frozen=True, slots=True)
class Block:
    """An open tool_loop or cost_surge episode of a session: what ``--hook`` refuses."""

    rule: ReportKind
    agent: str
    session: str
    reason: str
    seconds_left: float  # the episode closes by itself this long after now at the latest


@dataclass(frozen=True, slots=True)
class GuardCounts:
    """What /metrics shows: reports raised since start and episodes open now, per rule."""

    raised: tuple[tuple[str, int], ...]
    active: tuple[tuple[str, int], ...]
    dropped: int = 0


class Guard:
    """Every rule with its episodes; thread-safe."""

    def __init__(self, settings: GuardSettings,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._pending: list[Verdict] = []
        self.raised: Counter[str] = Counter()
        self.dropped = 0
        self._last_tick: float | None = None
        self.settings = settings
        self._build(settings)

    def _build(self, s: GuardSettings) -> None:
        n = s.max_subjects
        self.forks = ForkStormRule(s.fork_storm_processes, s.fork_storm_window_seconds, n)
        self.spin = IdleSpinRule(s.idle_spin_cpu_percent, s.idle_spin_window_seconds,
                                 s.idle_spin_fallback_window_seconds, n)
        self.tools = ToolLoopRule(s.tool_loop_calls, s.tool_loop_window_seconds, n)
        self.errors = ErrorStormRule(s.error_storm_errors, s.error_storm_window_seconds, n)
        self.cost = CostSurgeRule(s.cost_surge_usd_per_hour, s.cost_surge_tokens_per_hour,
                                  s.cost_surge_window_seconds, n)
        book = getattr(self, "versions", None)
        self.versions = VersionBook(s.version_regression_factor,
                                    s.version_regression_use_seconds, n)
        if book is not None:
            self.versions.agents = book.agents
        self.episodes = {kind: Episodes(n) for kind in GUARD_KINDS}
        # agent -> (monotonic of its last request or tool call, of its last record at all)
        self.activity: OrderedDict[str, tuple[float | None, float]] = OrderedDict()
        self.session_pids: OrderedDict[tuple[str, str], int] = OrderedDict()

    def set_settings(self, settings: GuardSettings) -> None:
        """Use a reloaded [guard] table; changed thresholds start the rules afresh."""
        with self._lock:
            if settings != self.settings:
                self.settings = settings
                self._build(settings)

    # --- telemetry (the store writer's thread) ----------------------------------------

    def observe_records(self, records: Sequence[Record]) -> None:
        """Route what the store just wrote to the telemetry rules."""
        if not self.settings.enabled or not records:
            return
        now = self.monotonic()
        with self._lock:
            for record in records:
                self._observe(record, now)

    def _observe(self, record: Record, now: float) -> None:
        agent = record.agent
        name = agent.name
        busy = isinstance(record, ApiRequest | ToolCall)
        before = self.activity.pop(name, (None, now))
        self.activity[name] = (now if busy else before[0], now)
        while len(self.activity) > self.settings.max_subjects:
            self.activity.popitem(last=False)
        session = record.session_id
        evidence: Evidence | None
        if session is not None and agent.pid is not None:
            self.session_pids[(name, session)] = agent.pid
            while len(self.session_pids) > self.settings.max_subjects:
                self.session_pids.popitem(last=False)
        if isinstance(record, ToolCall):
            if record.source != "metric" and session is not None:
                evidence = self.tools.observe((name, session), record.tool, record.input_hash,
                                              record.success, record.ts, now)
                self._step(ReportKind.TOOL_LOOP, (name, session), evidence, now,
                           agent=name, session=session)
        elif isinstance(record, ApiRequest):
            if record.error_class is not None and record.source != "metric":
                evidence = self.errors.observe(name, record.error_class, record.status_code,
                                               record.model, now)
                self._step(ReportKind.ERROR_STORM, name, evidence, now, agent=name)
        elif isinstance(record, CostUsage) and session is not None:
            evidence = self.cost.add_usd((name, session), f"reported:{record.source}",
                                         record.usd, record.model, now)
            self._step(ReportKind.COST_SURGE, (name, session), evidence, now,
                       agent=name, session=session)
        elif isinstance(record, TokenUsage) and session is not None:
            channel = f"{record.source}"
            evidence = self.cost.add_tokens((name, session), channel, record.tokens,
                                            record.model, now)
            if record.cost_usd is not None:
                evidence = self.cost.add_usd((name, session), f"computed:{channel}",
                                             record.cost_usd, record.model, now)
            self._step(ReportKind.COST_SURGE, (name, session), evidence, now,
                       agent=name, session=session)

    def _step(self, rule: ReportKind, subject: Hashable, evidence: Evidence | None, now: float,
              **about: str | None) -> None:
        if not self.episodes[rule].step(subject, evidence is not None, now):
            return
        assert evidence is not None
        agent, session = about.get("agent"), about.get("session")
        pid = self.session_pids.get((agent, session)) if agent and session else None
        self._raise(Verdict(rule, evidence, agent=agent, session=session, agent_pid=pid,
                            at=now))

    def _raise(self, verdict: Verdict) -> None:
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self.raised[verdict.rule.value] += 1
        self._pending.append(verdict)

    # --- the tick -------------------------------------------------------------------------

    def on_tick(self, sample: TickSample, rules: Mapping[str, WatchRule],
                now: float) -> list[Verdict]:
        """Feed the tree rules one tick; close telemetry episodes whose condition lapsed;
        every verdict raised since the previous tick."""
        if not self.settings.enabled:
            return []
        with self._lock:
            dt = 0.0 if self._last_tick is None else max(0.0, now - self._last_tick)
            self._last_tick = now
            present: list[TreeId] = []
            for watch, trees in sample.by_watch.items():
                rule = rules.get(watch)
                if rule is not None and not rule.guard:
                    continue
                agent = agent_for_watch(watch)
                last_busy, last_any = self.activity.get(agent, (None, None))
                telemetry = last_any is not None and \
                    now - last_any <= self.settings.idle_spin_fallback_window_seconds
                for tree in trees:
                    tree_id = (watch, tree.key)
                    present.append(tree_id)
                    self._tree(tree_id, tree.pid, tree.member_pids, tree.cpu_percent, last_busy,
                               telemetry, now)
                    if tree.version and dt:
                        idle = last_busy is None or now - last_busy > IDLE_AFTER_SECONDS
                        found = self.versions.observe(agent, tree.version, f"{tree.key}",
                                                      tree.cpu_percent, tree.rss_bytes, idle,
                                                      dt, now)
                        if found is not None:
                            self._raise(Verdict(ReportKind.VERSION_REGRESSION, found,
                                                watch=watch, pid=tree.pid, key=tree.key,
                                                agent=agent, at=now))
            self.forks.keep_only(present)
            self.spin.keep_only(present)
            for kind in (ReportKind.FORK_STORM, ReportKind.IDLE_SPIN):
                self.episodes[kind].keep_only(present)
            self._lapse(now)
            pending, self._pending = self._pending, []
            return pending

    def _tree(self, tree_id: TreeId, pid: int, member_pids: tuple[int, ...], cpu: float,
              last_busy: float | None, telemetry: bool, now: float) -> None:
        watch, key = tree_id
        forks = self.forks.observe(tree_id, member_pids, now)
        if self.episodes[ReportKind.FORK_STORM].step(tree_id, forks is not None, now):
            assert forks is not None
            self._raise(Verdict(ReportKind.FORK_STORM, forks, watch=watch, pid=pid, key=key,
                                agent=agent_for_watch(watch), at=now))
        spin = self.spin.observe(tree_id, cpu, last_busy, telemetry, now)
        if self.episodes[ReportKind.IDLE_SPIN].step(tree_id, spin is not None, now):
            assert spin is not None
            self._raise(Verdict(ReportKind.IDLE_SPIN, spin, watch=watch, pid=pid, key=key,
                                agent=agent_for_watch(watch), at=now))

    def _lapse(self, now: float) -> None:
        """Close telemetry episodes whose condition no longer holds as time passes."""
        checks: tuple[tuple[ReportKind, Callable[[object, float], object]], ...] = (
            (ReportKind.TOOL_LOOP, lambda s, t: self.tools.evidence(s, t)),  # type: ignore[arg-type]
            (ReportKind.ERROR_STORM, lambda s, t: self.errors.evidence(s, t)),  # type: ignore[arg-type]
            (ReportKind.COST_SURGE, lambda s, t: self.cost.evidence(s, t)),  # type: ignore[arg-type]
        )
        for kind, still in checks:
            episodes = self.episodes[kind]
            for subject in list(episodes.active):
                if still(subject, now) is None:
                    episodes.step(subject, False, now)

    # --- what others read -----------------------------------------------------------------

    def recent_new_pids(self, verdict: Verdict) -> tuple[int, ...]:
        """The latest new pids of a fork storm's tree."""
        if verdict.watch is None or verdict.key is None:
            return ()
        with self._lock:
            return self.forks.recent_new_pids((verdict.watch, verdict.key))

    def blocks(self, now: float) -> list[Block]:
        """Open tool_loop and cost_surge episodes, for ``budget check --hook``."""
        found = []
        with self._lock:
            for subject in self.episodes[ReportKind.TOOL_LOOP].active:
                agent, session = cast(tuple[str, str], subject)
                loop = self.tools.evidence((agent, session), now)
                if loop is not None:
                    left = self.settings.tool_loop_window_seconds
                    found.append(Block(ReportKind.TOOL_LOOP, agent, session,
                                       f"tool_loop: {loop.tool} called {loop.count} times in "
                                       "a row", left))
            for subject in self.episodes[ReportKind.COST_SURGE].active:
                agent, session = cast(tuple[str, str], subject)
                surge = self.cost.evidence((agent, session), now)
                if surge is not None:
                    unit = "$" if surge.measured == "usd" else "tokens "
                    found.append(Block(ReportKind.COST_SURGE, agent, session,
                                       f"cost_surge: {unit}{surge.rate_per_hour:,.2f}/h over "
                                       f"the last {surge.window_seconds:g}s (limit "
                                       f"{unit}{surge.limit_per_hour:,.2f}/h)",
                                       self.settings.cost_surge_window_seconds))
        return found

    def counts(self) -> GuardCounts:
        """Reports raised and episodes open, per rule (every rule listed)."""
        with self._lock:
            return GuardCounts(
                tuple((kind.value, self.raised.get(kind.value, 0)) for kind in GUARD_KINDS),
                tuple((kind.value, len(self.episodes[kind])) for kind in GUARD_KINDS),
                self.dropped)


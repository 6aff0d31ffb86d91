"""What a tick means: per-process threshold state, trends, and the actions they call for.

The Monitor keeps state between ticks but does no I/O: it takes a TickSample and the
rules and returns log events and report requests for the service to carry out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from crash_reports.event.kinds import ReportKind, Trigger
from daemon.config.schema import DaemonSettings, WatchRule
from daemon.watch.proc.members import MemberHistory
from daemon.watch.proc.sampler import TickSample, TreeSample
from daemon.watch.thresholds import Level, LevelRule, Transition, step
from daemon.watch.tracking import (
    Action,
    ChildrenGone,
    CooldownSlot,
    Crossed,
    Exited,
    Metric,
    Orphaned,
    OrphanExited,
    OrphanTrack,
    ReapOrphans,
    ReportRequest,
    SamplePoint,
    Seen,
    Suppressed,
    TrackedProcess,
    WarningDue,
)
from daemon.watch.trend import TREND_POINTS, add_point, seconds_until

# The actions and the tracked state live in daemon/watch/tracking.py; importers may name
# them from here too.
__all__ = ["TREND_POINTS", "Action", "ChildrenGone", "CooldownSlot", "Crossed", "Exited",
           "Metric", "Monitor", "OrphanExited", "OrphanTrack", "Orphaned", "ReapOrphans",
           "ReportRequest", "SamplePoint", "Seen", "Suppressed", "TrackedProcess",
           "WarningDue", "cooldown_allows", "cpu_rule", "rss_rule"]


def rss_rule(rule: WatchRule) -> LevelRule:
    """The RSS levels of a watch as a LevelRule."""
    return LevelRule(rule.rss_warning_bytes, rule.rss_critical_bytes, rule.sustained)


def cpu_rule(rule: WatchRule) -> LevelRule:
    """The CPU levels of a watch as a LevelRule."""
    return LevelRule(rule.cpu_warning_percent, rule.cpu_critical_percent, rule.cpu_sustained)


def cooldown_allows(last_due_at: Mapping[CooldownSlot, float], slot: CooldownSlot, now: float,
                    cooldown_seconds: float) -> bool:
    """Whether a slot (a report kind, or a warning's actions) may be due now for a process:
    the one cooldown of reports and watch actions.

    >>> cooldown_allows({}, ReportKind.RSS_CRITICAL, 100.0, 600.0)
    True
    >>> cooldown_allows({ReportKind.RSS_CRITICAL: 0.0}, ReportKind.RSS_CRITICAL, 100.0, 600.0)
    False
    >>> cooldown_allows({ReportKind.RSS_CRITICAL: 0.0}, Trigger.WARNING, 100.0, 600.0)
    True
    """
    last = last_due_at.get(slot)
    return last is None or now - last >= cooldown_seconds


class Monitor:
    """Turns each tick into transitions, trends and report requests."""

    def __init__(self, rules: tuple[WatchRule, ...], history_samples: int,
                 trend_window_seconds: float,
                 trend_startup_seconds: float = DaemonSettings.trend_startup_seconds) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self.history_samples = history_samples
        self.trend_window_seconds = trend_window_seconds
        self.trend_startup_seconds = trend_startup_seconds
        self.tracked: dict[tuple[str, tuple[int, int]], TrackedProcess] = {}
        self.orphans: dict[tuple[str, tuple[int, int]], OrphanTrack] = {}
        # Agents that exited while (or just before) leaving processes behind, by tree.
        self.departed: dict[tuple[str, tuple[int, int]], TrackedProcess] = {}
        self._orphans_over: dict[tuple[str, tuple[int, int]], int] = {}
        self._level_rules: dict[str, tuple[WatchRule, LevelRule, LevelRule]] = {}

    def set_rules(self, rules: tuple[WatchRule, ...]) -> None:
        """Use new rules; processes of removed watches are forgotten without a report."""
        self.rules = {rule.name: rule for rule in rules}
        self._level_rules = {}
        self.tracked = {k: v for k, v in self.tracked.items() if k[0] in self.rules}
        self.orphans = {k: v for k, v in self.orphans.items() if k[0] in self.rules}

    def observe(self, tick: TickSample, oom_kill_delta: int | None = None) -> list[Action]:
        """Advance every watched process by one tick.

        ``oom_kill_delta`` is how many processes the kernel's OOM killer took since the
        previous tick (None when unknown): with it, a child vanishing from a tree under
        pressure is reported as killed. Intervals (cooldowns, trend windows) run on
        ``tick.monotonic``; what is stored or shown (report and history times) on ``tick.at``.
        """
        now, clock = tick.at, tick.monotonic
        actions: list[Action] = []
        present: set[tuple[str, tuple[int, int]]] = set()
        for watch, samples in tick.by_watch.items():
            rule = self.rules.get(watch)
            if rule is None:
                continue
            for sample in samples:
                if sample.zombie:
                    continue
                tracked_key = (watch, sample.key)
                present.add(tracked_key)
                tracked = self.tracked.get(tracked_key)
                if tracked is None:
                    tracked = TrackedProcess(
                        watch, sample.key, now, sample, deque(maxlen=self.history_samples),
                        first_seen_monotonic=clock,
                        members=MemberHistory(self.trend_window_seconds),
                    )
                    self.tracked[tracked_key] = tracked
                    actions.append(Seen(tracked, sample))
                actions.extend(self._children_killed(tracked, sample, rule, now, clock,
                                                     oom_kill_delta))
                actions.extend(self._advance(tracked, sample, rule, now, clock))
        for tracked_key in [k for k in self.tracked if k not in present]:
            tracked = self.tracked.pop(tracked_key)
            self.departed[tracked_key] = tracked
            actions.extend(self._exited(tracked, now, clock))
        actions.extend(self._follow_orphans(tick, now, clock))
        return actions

    def _follow_orphans(self, tick: TickSample, now: float, clock: float) -> list[Action]:
        """Track left-behind processes; report and reap those of agents that exited."""
        actions: list[Action] = []
        seen: set[tuple[str, tuple[int, int]]] = set()
        by_agent: dict[tuple[str, tuple[int, int]], list[OrphanTrack]] = {}
        for watch, found in tick.orphans.items():
            if watch not in self.rules:
                continue
            for sample in found:
                key = (watch, sample.key)
                seen.add(key)
                orphan = self.orphans.get(key)
                if orphan is None:
                    orphan = OrphanTrack(watch, sample.key, now, sample)
                    self.orphans[key] = orphan
                orphan.last = sample
                orphan.samples += 1
                orphan.agent_exited = (watch, sample.agent_key) not in self.tracked
                if orphan.samples == 1:
                    actions.append(Orphaned(orphan))
                if orphan.agent_exited:
                    by_agent.setdefault((watch, sample.agent_key), []).append(orphan)
        for key in [k for k in self.orphans if k not in seen]:
            actions.append(OrphanExited(self.orphans.pop(key), now))
        for agent_key, orphans in by_agent.items():
            actions.extend(self._orphans_left(agent_key, orphans, now, clock))
        for stale in [k for k in self.departed if k not in by_agent]:
            del self.departed[stale]
            self._orphans_over.pop(stale, None)
        return actions

    def _orphans_left(self, agent_key: tuple[str, tuple[int, int]],
                      orphans: list[OrphanTrack], now: float, clock: float) -> list[Action]:
        rule = self.rules[agent_key[0]]
        actions: list[Action] = []
        count = sum(orphan.last.members for orphan in orphans)
        rss = sum(orphan.last.rss_bytes for orphan in orphans)
        over = count >= rule.orphans_warning or (
            rule.orphans_rss_bytes is not None and rss >= rule.orphans_rss_bytes)
        streak = self._orphans_over.get(agent_key, 0) + 1 if over else 0
        self._orphans_over[agent_key] = streak
        agent = self.departed.get(agent_key)
        if streak == rule.sustained and agent is not None:
            for action in self._report(agent, rule, ReportKind.ORPHANS_LEFT, None, now, clock):
                if isinstance(action, ReportRequest):
                    action = ReportRequest(action.kind, rule, agent, None, now, action.samples,
                                           orphans=tuple(o.last for o in orphans))
                actions.append(action)
        if rule.reap_orphans:
            ripe = [o for o in orphans if o.samples >= rule.sustained and not o.reap_requested]
            for orphan in ripe:
                orphan.reap_requested = True
            due = tuple(o.last for o in ripe)
            if due:
                actions.append(ReapOrphans(rule.name, due, rule.reap_grace_seconds))
        return actions

    def _children_killed(self, tracked: TrackedProcess, sample: TreeSample, rule: WatchRule,
                         now: float, clock: float, oom_kill_delta: int | None) -> list[Action]:
        """Members of a tree under pressure gone in a tick where the OOM killer struck."""
        if not oom_kill_delta or tracked.level < Level.WARNING or sample is tracked.last:
            return []
        gone = tuple(sorted(set(tracked.last.member_pids) - set(sample.member_pids)))
        if not gone:
            return []
        actions: list[Action] = [ChildrenGone(tracked, gone, oom_kill_delta, tracked.level,
                                              tracked.last.rss_bytes, sample.rss_bytes)]
        for action in self._report(tracked, rule, ReportKind.CHILD_OOM_KILLED, None, now,
                                   clock):
            if isinstance(action, ReportRequest):
                action = ReportRequest(action.kind, action.rule, action.process, None, now,
                                       action.samples, gone)
            actions.append(action)
        return actions

    def _advance(self, tracked: TrackedProcess, sample: TreeSample, rule: WatchRule,
                 now: float, clock: float) -> list[Action]:
        tracked.last = sample
        if tracked.members is not None:
            tracked.members.observe(clock, sample.member_rss)
        tracked.history.append(
            SamplePoint(now, sample.rss_bytes, sample.cpu_percent, sample.members)
        )
        self._update_trend(tracked, rule, now, clock)
        actions: list[Action] = []
        warned = False
        rss_levels, cpu_levels = self._levels_of(rule)
        tracked.rss, rss_transitions = step(tracked.rss, sample.rss_bytes, rss_levels, now)
        tracked.cpu, cpu_transitions = step(tracked.cpu, sample.cpu_percent, cpu_levels, now)
        for metric, transitions in ((Metric.RSS, rss_transitions), (Metric.CPU, cpu_transitions)):
            for transition in transitions:
                actions.append(Crossed(tracked, metric, transition, sample,
                                       tracked.rate_bytes_per_min, tracked.eta_seconds))
                if transition.to_level == Level.CRITICAL and transition.from_level < Level.CRITICAL:
                    kind = (ReportKind.RSS_CRITICAL if metric is Metric.RSS
                            else ReportKind.CPU_CRITICAL)
                    actions.extend(self._report(tracked, rule, kind, transition, now, clock))
                elif transition.to_level > transition.from_level:
                    warned = True
        if warned:  # RSS and CPU crossing up to warning together: due once
            actions.append(WarningDue(tracked) if self._due(tracked, rule, Trigger.WARNING, clock)
                           else Suppressed(tracked, Trigger.WARNING, "cooldown"))
        return actions

    def _levels_of(self, rule: WatchRule) -> tuple[LevelRule, LevelRule]:
        # Built once per rule rather than twice per process per tick (a hot path at 1,000).
        cached = self._level_rules.get(rule.name)
        if cached is None or cached[0] is not rule:
            cached = (rule, rss_rule(rule), cpu_rule(rule))
            self._level_rules[rule.name] = cached
        return cached[1], cached[2]

    def _update_trend(self, tracked: TrackedProcess, rule: WatchRule, now: float,
                      clock: float) -> None:
        # Trend points are on the monotonic clock (``clock``); the process's start time
        # (wall) is carried onto it at this tick's offset between the two clocks.
        start = tracked.last.create_time
        started = start - (now - clock) if start else tracked.first_seen_monotonic
        tracked.rate_bytes_per_min = add_point(
            tracked.trend_points, clock, float(tracked.last.rss_bytes), started,
            tracked.first_seen_monotonic, self.trend_window_seconds, self.trend_startup_seconds)
        tracked.eta_seconds = seconds_until(
            tracked.last.rss_bytes, rule.rss_critical_bytes, tracked.rate_bytes_per_min
        )

    @staticmethod
    def _due(tracked: TrackedProcess, rule: WatchRule, slot: CooldownSlot,
             clock: float) -> bool:
        """The one cooldown: whether ``slot`` is due for ``tracked`` now (then it starts)."""
        if not cooldown_allows(tracked.last_due_at, slot, clock, rule.cooldown_seconds):
            return False
        tracked.last_due_at[slot] = clock
        return True

    def _report(self, tracked: TrackedProcess, rule: WatchRule, kind: ReportKind,
                transition: Transition | None, now: float, clock: float) -> list[Action]:
        # A report's watch actions (on_critical, on_exit_under_pressure) are due exactly
        # when the report is: the action gate maps this request to them.
        if not self._due(tracked, rule, kind, clock):
            return [Suppressed(tracked, kind, "cooldown")]
        return [ReportRequest(kind, rule, tracked, transition, now, tuple(tracked.history))]

    def _exited(self, tracked: TrackedProcess, now: float, clock: float) -> list[Action]:
        level = tracked.level
        # From the process's own start time: a process that ran for hours before the
        # daemon (re)started did not live only as long as the daemon watched it.
        started = min(tracked.last.create_time, tracked.first_seen)
        actions: list[Action] = [Exited(tracked, level, tracked.last.rss_bytes,
                                        round(max(0.0, now - started), 1))]
        rule = self.rules.get(tracked.watch)
        if level >= Level.WARNING and rule is not None:
            actions.extend(self._report(tracked, rule, ReportKind.EXITED_UNDER_PRESSURE, None,
                                        now, clock))
        return actions

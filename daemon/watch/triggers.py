"""Which configured watch actions a tick's monitor actions set off, once per cooldown (pure).

``Crossed`` up to warning runs ``on_warning``, up to critical ``on_critical``; a
``ReportRequest`` of kind ``exited_under_pressure`` runs ``on_exit_under_pressure``. Each
(process, trigger) fires at most once per the watch's ``cooldown``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from crash_reports.event.kinds import ReportKind, Trigger
from daemon.config.schema import WatchAction, WatchRule
from daemon.watch.monitor import Action, Crossed, ReportRequest, TrackedProcess
from daemon.watch.thresholds import Level


@dataclass(frozen=True, slots=True)
class Fired:
    """Actions to run for one process; ``report_id`` is filled once its report is written."""

    trigger: Trigger
    watch: str
    pid: int
    key: tuple[int, int]
    create_time: float
    level: str
    rss_bytes: int
    eta_seconds: float | None
    actions: tuple[WatchAction, ...]
    report_id: str | None = None
    report_path: str | None = None


def actions_for(rule: WatchRule, trigger: Trigger) -> tuple[WatchAction, ...]:
    """The rule's actions for a trigger."""
    return {Trigger.WARNING: rule.on_warning, Trigger.CRITICAL: rule.on_critical,
            Trigger.EXIT_UNDER_PRESSURE: rule.on_exit_under_pressure,
            Trigger.GUARD: rule.on_guard}[trigger]


class ActionGate:
    """Turns monitor actions into ``Fired`` values, keeping when each last fired."""

    def __init__(self) -> None:
        self.last_fired: dict[tuple[str, tuple[int, int], Trigger], float] = {}

    def select(self, actions: Iterable[Action], rules: Mapping[str, WatchRule],
               now: float) -> tuple[list[Fired], list[Fired]]:
        """(to run, suppressed by the cooldown) for this tick's monitor actions."""
        fired: list[Fired] = []
        suppressed: list[Fired] = []
        seen: set[tuple[str, tuple[int, int], Trigger]] = set()
        for action in actions:
            found = _trigger_of(action)
            if found is None:
                continue
            trigger, process = found
            rule = rules.get(process.watch)
            if rule is None or not actions_for(rule, trigger):
                continue
            slot = (process.watch, process.key, trigger)
            if slot in seen:
                continue  # RSS and CPU crossing together fire once
            seen.add(slot)
            item = Fired(trigger, process.watch, process.pid, process.key,
                         process.last.create_time, process.level.label,
                         process.last.rss_bytes, process.eta_seconds,
                         actions_for(rule, trigger))
            last = self.last_fired.get(slot)
            if last is not None and now - last < rule.cooldown_seconds:
                suppressed.append(item)
                continue
            self.last_fired[slot] = now
            fired.append(item)
        return fired, suppressed

    def forget_gone(self, present: set[tuple[str, tuple[int, int]]]) -> None:
        """Drop the times of processes no longer tracked (bounded memory)."""
        self.last_fired = {slot: at for slot, at in self.last_fired.items()
                           if (slot[0], slot[1]) in present}


def _trigger_of(action: Action) -> tuple[Trigger, TrackedProcess] | None:
    if isinstance(action, Crossed):
        to_level = action.transition.to_level
        if to_level <= action.transition.from_level:
            return None
        trigger = Trigger.CRITICAL if to_level >= Level.CRITICAL else Trigger.WARNING
        return trigger, action.process
    if isinstance(action, ReportRequest) and action.kind is ReportKind.EXITED_UNDER_PRESSURE:
        return Trigger.EXIT_UNDER_PRESSURE, action.process
    return None

"""Which configured watch actions a tick's monitor actions set off (pure, no times of its own).

The monitor owns the one cooldown (``monitor.cooldown_allows``, per process and slot): it
says when a warning crossing's actions are due (``WarningDue``) and when a report is
(``ReportRequest``). Here those become ``Fired`` values: ``WarningDue`` runs ``on_warning``;
a ``ReportRequest`` of a critical kind runs ``on_critical``, of ``exited_under_pressure``
``on_exit_under_pressure`` — so a report and its actions can never disagree. RSS and CPU
due in the same tick fire once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from crash_reports.event.kinds import ReportKind, Trigger
from daemon.config.schema import WatchAction, WatchRule
from daemon.watch.monitor import (
    Action,
    ReportRequest,
    Suppressed,
    TrackedProcess,
    WarningDue,
)


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


def select(actions: Iterable[Action], rules: Mapping[str, WatchRule]
           ) -> tuple[list[Fired], list[Fired]]:
    """(to run, held back by the monitor's cooldown) for this tick's monitor actions."""
    fired: list[Fired] = []
    suppressed: list[Fired] = []
    seen: set[tuple[str, tuple[int, int], Trigger]] = set()
    for action in actions:
        found = _trigger_of(action)
        if found is None:
            continue
        trigger, process, due = found
        rule = rules.get(process.watch)
        if rule is None or not actions_for(rule, trigger):
            continue
        slot = (process.watch, process.key, trigger)
        if slot in seen:
            continue  # RSS and CPU crossing together fire once
        item = Fired(trigger, process.watch, process.pid, process.key,
                     process.last.create_time, process.level.label,
                     process.last.rss_bytes, process.eta_seconds,
                     actions_for(rule, trigger))
        if due:
            seen.add(slot)
            fired.append(item)
        else:
            suppressed.append(item)
    held = [item for item in suppressed if (item.watch, item.key, item.trigger) not in seen]
    return fired, list({(i.watch, i.key, i.trigger): i for i in held}.values())


def _trigger_of(action: Action) -> tuple[Trigger, TrackedProcess, bool] | None:
    """The trigger an action is about, its process, and whether it is due."""
    if isinstance(action, WarningDue):
        return Trigger.WARNING, action.process, True
    if isinstance(action, ReportRequest) and action.kind.trigger is not None:
        return action.kind.trigger, action.process, True
    if isinstance(action, Suppressed):
        kind = action.kind
        trigger = kind.trigger if isinstance(kind, ReportKind) else kind
        return (trigger, action.process, False) if trigger is not None else None
    return None

"""The threshold state machine (pure): ok -> warning -> critical, with hysteresis.

``step`` takes the previous state, one sampled value, the rule and the time, and
returns the new state and the transitions to act on. Nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Level(IntEnum):
    """How bad a value is, in order."""

    OK = 0
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        """Lower-case name used in logs and status."""
        return self.name.lower()

    @classmethod
    def of(cls, label: object) -> Level:
        """The level a label names (as status.json holds it); OK for anything else.

        >>> Level.of("critical"), Level.of(None)
        (<Level.CRITICAL: 2>, <Level.OK: 0>)
        """
        return cls.__members__.get(str(label).upper(), cls.OK)


@dataclass(frozen=True)
class LevelRule:
    """Warning and critical levels for one metric; None switches a level off."""

    warning: float | None
    critical: float | None
    sustained: int = 3
    clear_ratio: float = 0.9


@dataclass(frozen=True)
class LevelState:
    """Where a metric stands: its level and how many samples in a row were over each level."""

    level: Level = Level.OK
    over_warning: int = 0
    over_critical: int = 0
    since: float | None = None


@dataclass(frozen=True)
class Transition:
    """A change of level worth one log line (and, for critical, a report)."""

    to_level: Level
    from_level: Level
    value: float
    level_value: float | None
    at: float

    @property
    def event(self) -> str:
        """The stable log event name for this transition."""
        if self.to_level > self.from_level:
            return f"threshold.{self.to_level.label}"
        return "threshold.cleared"


def _over(value: float, level: float | None) -> bool:
    return level is not None and value >= level


def _still_over(value: float, level: float | None, ratio: float) -> bool:
    """Hysteresis: once over a level, stay there until below ``ratio`` of it."""
    return level is not None and value >= level * ratio


def step(
    state: LevelState, value: float, rule: LevelRule, now: float
) -> tuple[LevelState, list[Transition]]:
    """Advance one metric by one sample.

    A level fires after ``rule.sustained`` consecutive samples at or over it, and clears
    when the value falls below ``clear_ratio`` of it, so a value hovering at the line
    does not flap.

    >>> rule = LevelRule(warning=100, critical=200, sustained=2)
    >>> s, t = step(LevelState(), 150, rule, now=0)
    >>> s.level, t
    (<Level.OK: 0>, [])
    >>> s, t = step(s, 150, rule, now=1)
    >>> s.level, [x.event for x in t]
    (<Level.WARNING: 1>, ['threshold.warning'])
    >>> s, t = step(s, 95, rule, now=2)   # below the line but within hysteresis
    >>> s.level, t
    (<Level.WARNING: 1>, [])
    >>> s, t = step(s, 80, rule, now=3)
    >>> s.level, [x.event for x in t]
    (<Level.OK: 0>, ['threshold.cleared'])
    """
    over_warning = state.over_warning + 1 if _over(value, rule.warning) else 0
    over_critical = state.over_critical + 1 if _over(value, rule.critical) else 0
    sustained = max(1, rule.sustained)

    target = state.level
    if over_critical >= sustained:
        target = Level.CRITICAL
    elif over_warning >= sustained and state.level < Level.WARNING:
        target = Level.WARNING

    # Falling: a level holds while the value stays within hysteresis of it.
    if target == state.level and state.level == Level.CRITICAL and not _still_over(
        value, rule.critical, rule.clear_ratio
    ):
        target = (
            Level.WARNING
            if _still_over(value, rule.warning, rule.clear_ratio)
            else Level.OK
        )
    if target == state.level and state.level == Level.WARNING and not _still_over(
        value, rule.warning, rule.clear_ratio
    ):
        target = Level.OK

    if target == state.level:
        if over_warning == state.over_warning and over_critical == state.over_critical:
            return state, []  # nothing moved (the common case): no new state to build
        return LevelState(target, over_warning, over_critical, state.since), []
    level_value = _level_value(target if target > state.level else state.level, rule)
    transition = Transition(target, state.level, value, level_value, now)
    since = now if target != Level.OK else None
    return LevelState(target, over_warning, over_critical, since), [transition]


def _level_value(level: Level, rule: LevelRule) -> float | None:
    if level == Level.CRITICAL:
        return rule.critical
    if level == Level.WARNING:
        return rule.warning
    return None

"""idle_spin: a tree busy on the CPU while its agent sends no activity (pure).

With telemetry from the agent, the tree must stay at or above the CPU level for the window
while the agent made no model request and no tool call in it. Without telemetry the rule
falls back to CPU alone over the longer window, and says so in its evidence.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from daemon.guard.verdicts import IdleSpinEvidence

TreeId = tuple[str, tuple[int, int]]


@dataclass
class _Spell:
    since: float
    cpu_sum: float = 0.0
    ticks: int = 0


class IdleSpinRule:
    """A spell per tree: since when it has stayed at or above the CPU level.

    >>> rule = IdleSpinRule(50.0, window_seconds=10.0, fallback_seconds=20.0, max_trees=8)
    >>> t = ("w", (1, 1))
    >>> [rule.observe(t, 90.0, None, True, now) is None for now in (0.0, 5.0, 10.0)]
    [True, True, False]
    >>> rule.observe(t, 90.0, 9.0, True, 11.0) is None  # the agent did something lately
    True
    >>> rule.observe(t, 10.0, None, True, 12.0) is None  # the spell ends
    True
    """

    def __init__(self, cpu_percent: float, window_seconds: float, fallback_seconds: float,
                 max_trees: int) -> None:
        self.cpu_percent = cpu_percent
        self.window_seconds = window_seconds
        self.fallback_seconds = fallback_seconds
        self.max_trees = max_trees
        self.spells: OrderedDict[TreeId, _Spell] = OrderedDict()

    def observe(self, tree_id: TreeId, cpu_percent: float, last_activity: float | None,
                telemetry: bool, now: float) -> IdleSpinEvidence | None:
        """One tick's CPU of a tree; the evidence while it spins idle past the window."""
        if cpu_percent < self.cpu_percent:
            self.spells.pop(tree_id, None)
            return None
        spell = self.spells.get(tree_id)
        if spell is None:
            spell = self.spells[tree_id] = _Spell(now)
            while len(self.spells) > self.max_trees:
                self.spells.popitem(last=False)
        spell.cpu_sum += cpu_percent
        spell.ticks += 1
        window = self.window_seconds if telemetry else self.fallback_seconds
        spinning = now - spell.since
        if spinning < window:
            return None
        if telemetry and last_activity is not None and last_activity >= now - window:
            return None
        return IdleSpinEvidence(
            cpu_percent_mean=spell.cpu_sum / spell.ticks, cpu_percent_now=cpu_percent,
            spinning_seconds=spinning, telemetry=telemetry,
            last_activity_seconds_ago=None if last_activity is None else now - last_activity)

    def keep_only(self, present: Iterable[TreeId]) -> None:
        """Forget trees that are gone."""
        keep = set(present)
        for tree_id in [t for t in self.spells if t not in keep]:
            del self.spells[tree_id]

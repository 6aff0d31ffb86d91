"""Which reports the spool drops when it is over a bound (pure).

Past ``max_age`` a report always goes.  Past the count or byte bound, the spool drops the
oldest report of the *largest group* (reports sharing a watch and a kind) first, not the
oldest report overall: a storm of one watch's reports, or one noisy kind, gives up its
own reports before a lone agent's crash report, or the daemon's own, is touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from crash_reports.spool.records import EntryState

DropReason = Literal["max_reports", "max_bytes", "max_age"]
Group = tuple[str | None, str | None]


@dataclass(frozen=True)
class SpoolLimits:
    """How much the spool may hold (see ``choose_drops`` for what goes first)."""

    max_reports: int = 200
    max_bytes: int = 64 * 1024 * 1024
    max_age_seconds: float = 30 * 24 * 3600.0
    max_delivered_records: int = 50
    # Free space the other stores leave on the filesystem for reports (``Spool.reserve``).
    disk_reserve_bytes: int = 32 * 1024 * 1024


@dataclass(frozen=True)
class Dropped:
    """A report removed by the spool's bounds (count it as dropped by retention)."""

    id: str
    state: EntryState
    reason: DropReason
    created_at: float
    size_bytes: int


@dataclass(frozen=True)
class Stored:
    """One report on disk as retention sees it; ``group`` is its (watch, kind)."""

    name: str
    state: EntryState
    created_at: float
    size_bytes: int
    group: Group = (None, None)


def choose_drops(
    stored: Sequence[Stored], limits: SpoolLimits, now: float
) -> list[tuple[Stored, DropReason]]:
    """The reports to drop and why, in the order to drop them.

    >>> a = [Stored(f"s{i}", "pending", float(i), 1, ("w", "rss_critical")) for i in range(3)]
    >>> lone = Stored("lone", "pending", -1.0, 1, ("agent", "exited_under_pressure"))
    >>> [(s.name, why) for s, why in choose_drops([lone, *a], SpoolLimits(max_reports=2), 9)]
    [('s0', 'max_reports'), ('s1', 'max_reports')]
    """
    drops: list[tuple[Stored, DropReason]] = []
    keep: list[Stored] = []
    for item in sorted(stored, key=lambda s: (s.created_at, s.name)):
        if item.created_at < now - limits.max_age_seconds:
            drops.append((item, "max_age"))
        else:
            keep.append(item)
    count = len(keep)
    total = sum(item.size_bytes for item in keep)
    if count <= limits.max_reports and total <= limits.max_bytes:
        return drops
    sizes = Counter(item.group for item in keep)
    while keep and (count > limits.max_reports or total > limits.max_bytes):
        reason: DropReason = "max_reports" if count > limits.max_reports else "max_bytes"
        largest = max(sizes.values())
        # The oldest report among the largest groups (``keep`` is oldest first).
        victim = next(item for item in keep if sizes[item.group] == largest)
        keep.remove(victim)
        sizes[victim.group] -= 1
        count -= 1
        total -= victim.size_bytes
        drops.append((victim, reason))
    return drops

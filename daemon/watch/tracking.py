"""What a tick's monitor remembers per process and the actions it returns (plain values).

``daemon/watch/monitor.py`` produces them; the runtime, the log lines, triggers and the
guard read them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from crash_reports.event.kinds import ReportKind, Trigger
from daemon.config.schema import WatchRule
from daemon.watch.proc.members import MemberHistory
from daemon.watch.proc.sampler import OrphanSample, TreeSample
from daemon.watch.thresholds import Level, LevelState, Transition
from daemon.watch.trend import TREND_POINTS

# One cooldown per process and slot: a report kind, or ``Trigger.WARNING`` for the actions of
# a crossing up to warning (critical and exit actions go with their report's slot).
CooldownSlot = ReportKind | Trigger


# slots: a daemon keeps history_samples of these per watched tree (120,000 at 1,000
# trees); without an instance dict each is one 64-byte allocation instead of two.
@dataclass(frozen=True, slots=True)
class SamplePoint:
    """One sample of one process tree, as kept in its history."""

    at: float
    rss_bytes: int
    cpu_percent: float
    members: int

    def as_dict(self) -> dict[str, Any]:
        """Plain data for reports and status."""
        return {"at": self.at, "rss_bytes": self.rss_bytes, "cpu_percent": self.cpu_percent,
                "members": self.members}


@dataclass
class TrackedProcess:
    """Everything remembered about one watched process (by pid and start time)."""

    watch: str
    key: tuple[int, int]
    first_seen: float
    last: TreeSample
    history: deque[SamplePoint]
    rss: LevelState = field(default_factory=LevelState)
    cpu: LevelState = field(default_factory=LevelState)
    trend_points: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=TREND_POINTS + 1)
    )
    rate_bytes_per_min: float | None = None
    eta_seconds: float | None = None
    # Monotonic times: when first seen (the trend's age) and when each cooldown slot was
    # last due (the one cooldown of reports and watch actions), so a wall-clock step cannot
    # stretch or shrink an interval.
    first_seen_monotonic: float = 0.0
    last_due_at: dict[CooldownSlot, float] = field(default_factory=dict)
    members: MemberHistory | None = None  # per-member RSS over the trend window

    @property
    def level(self) -> Level:
        """The worse of the RSS and CPU levels."""
        return max(self.rss.level, self.cpu.level)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.key[0]


class Metric(StrEnum):
    """Which figure of a tree crossed a level."""

    RSS = "rss"
    CPU = "cpu"


@dataclass(frozen=True, slots=True)
class Seen:
    """A process matched a watch for the first time."""

    process: TrackedProcess
    sample: TreeSample


@dataclass(frozen=True, slots=True)
class Crossed:
    """A tree's RSS or CPU moved from one level to another (up or back down)."""

    process: TrackedProcess
    metric: Metric
    transition: Transition
    sample: TreeSample
    rate_bytes_per_min: float | None
    eta_seconds: float | None


@dataclass(frozen=True, slots=True)
class ChildrenGone:
    """Members of a tree under pressure vanished in a tick where the OOM killer struck."""

    process: TrackedProcess
    gone_pids: tuple[int, ...]
    oom_kill_delta: int
    pressure: Level
    rss_bytes_before: int
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A report (``kind`` a ReportKind) or a warning's actions (``Trigger.WARNING``) would
    be due but the slot's cooldown has not passed."""

    process: TrackedProcess
    kind: CooldownSlot
    reason: str


@dataclass(frozen=True, slots=True)
class WarningDue:
    """A crossing up to warning whose ``on_warning`` actions are due (once per tick, past
    the watch's cooldown); critical and exit actions are due with their report."""

    process: TrackedProcess


@dataclass(frozen=True, slots=True)
class Exited:
    """A watched process is gone; ``pressure`` is the level it was at.

    ``lifetime_seconds`` counts from the process's start time, not from when it was seen.
    """

    process: TrackedProcess
    pressure: Level
    last_rss_bytes: int
    lifetime_seconds: float


@dataclass
class OrphanTrack:
    """A process left behind by a watched tree, followed until it exits."""

    watch: str
    key: tuple[int, int]
    orphaned_at: float
    last: OrphanSample
    samples: int = 0
    agent_exited: bool = False
    reap_requested: bool = False

    @property
    def pid(self) -> int:
        """The process id."""
        return self.key[0]


@dataclass(frozen=True, slots=True)
class Orphaned:
    """A member of a watched tree outlived its place in it (its parent exited)."""

    orphan: OrphanTrack


@dataclass(frozen=True, slots=True)
class OrphanExited:
    """A left-behind process is gone."""

    orphan: OrphanTrack
    at: float


@dataclass(frozen=True, slots=True)
class ReapOrphans:
    """Terminate these left-behind processes (``reap_orphans = true``)."""

    watch: str
    orphans: tuple[OrphanSample, ...]
    grace_seconds: float


@dataclass(frozen=True)
class ReportRequest:
    """A crash report to build and spool."""

    kind: ReportKind
    rule: WatchRule
    process: TrackedProcess
    transition: Transition | None
    at: float
    samples: tuple[SamplePoint, ...]
    gone_pids: tuple[int, ...] = ()
    orphans: tuple[OrphanSample, ...] = ()


Action = (Seen | Crossed | ChildrenGone | Suppressed | WarningDue | Exited | Orphaned
          | OrphanExited | ReapOrphans | ReportRequest)

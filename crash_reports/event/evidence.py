"""What a crash report carries beyond the tree: one typed value from the tick (or ``wrap``)
to the report builder, turned into the ``crossing`` context's fields only there.

>>> Evidence(level="critical", oom_kill_total=3, oom_kill_delta=1).as_dict()
{'oom_kill_total': 3, 'oom_kill_delta': 1, 'level': 'critical'}
>>> Evidence(gone_pids=(7,), rss_bytes_before=100).as_dict()
{'gone_pids': [7], 'rss_bytes_before': 100}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class OrphanFact:
    """One process a watched tree left behind, as a report lists it."""

    pid: int
    name: str
    rss_bytes: int
    members: int
    age_seconds: float


@dataclass(frozen=True, slots=True)
class KilledFacts:
    """How a child run by ``telemetryd wrap`` ended."""

    signal: int | None
    signal_name: str | None
    exit_status: int | None
    wrap_id: str
    ran_seconds: float
    oom_kill_sources: dict[str, int] = field(default_factory=dict)
    last_rss_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """The facts of one report beyond its tree; each is absent (None or empty) when unknown.

    ``level`` is the pressure level of a tree under pressure; ``oom_kill_*`` the kernel's
    OOM-kill counter and its rise; ``gone_pids`` the members the OOM killer took (with the
    tree's RSS before); ``orphans`` what an exited agent left behind; ``killed`` how a
    wrapped child ended; ``leak``, ``storm`` and ``actions`` their own sections.
    """

    level: str | None = None
    oom_kill_total: int | None = None
    oom_kill_delta: int | None = None
    gone_pids: tuple[int, ...] = ()
    rss_bytes_before: int | None = None
    orphans: tuple[OrphanFact, ...] = ()
    killed: KilledFacts | None = None
    leak: dict[str, Any] | None = None
    storm: dict[str, Any] | None = None
    actions: tuple[str, ...] = ()

    @property
    def orphans_count(self) -> int:
        """Processes left behind, counting what runs under each."""
        return sum(orphan.members for orphan in self.orphans)

    @property
    def orphans_rss_bytes(self) -> int:
        """Their RSS together."""
        return sum(orphan.rss_bytes for orphan in self.orphans)

    def as_dict(self) -> dict[str, Any]:
        """The fields of the report's ``crossing`` context."""
        out: dict[str, Any] = {}
        killed = self.killed
        if killed is not None:
            out.update(signal=killed.signal, signal_name=killed.signal_name,
                       exit_status=killed.exit_status, wrap_id=killed.wrap_id,
                       ran_seconds=killed.ran_seconds, oom_kill_delta=self.oom_kill_delta,
                       oom_kill_sources=dict(killed.oom_kill_sources),
                       last_rss_bytes=killed.last_rss_bytes)
        elif self.oom_kill_total is not None and self.oom_kill_delta is not None:
            out.update(oom_kill_total=self.oom_kill_total, oom_kill_delta=self.oom_kill_delta)
        if self.level is not None:
            out["level"] = self.level
        if self.orphans:
            out["orphans_count"] = self.orphans_count
            out["orphans_rss_bytes"] = self.orphans_rss_bytes
            out["orphans"] = [{"pid": o.pid, "name": o.name, "rss_bytes": o.rss_bytes,
                               "members": o.members, "age_seconds": o.age_seconds}
                              for o in self.orphans]
        if self.gone_pids:
            out["gone_pids"] = list(self.gone_pids)
            if self.rss_bytes_before is not None:
                out["rss_bytes_before"] = self.rss_bytes_before
        if self.leak is not None:
            out["leak"] = self.leak
        if self.actions:
            out["actions"] = list(self.actions)
        if self.storm is not None:
            out["storm"] = self.storm
        return out

"""version_regression: a new agent version idles hotter or grows faster than the one before
it on this machine (pure; the shell keeps the book in the state dir).

Per agent and version the book adds up, over the ticks its trees are seen: the CPU of idle
ticks (no request or tool call from the agent lately; every tick when it sends no
telemetry) and each tree's RSS change over its life. Once a version has ``use_seconds`` of
use its figures are settled and compared with the last settled version before it: one
verdict per version when either figure is ``factor`` times the previous one's or more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from daemon.guard.verdicts import VersionFigures, VersionRegressionEvidence

# Below these, "three times" is noise: 0.3 % against 0.1 % CPU is not a regression.
CPU_FLOOR_PERCENT = 1.0
GROWTH_FLOOR_BYTES_PER_HOUR = 4 * 1024**2
MAX_VERSIONS = 8  # per agent
MAX_TREES = 64  # per version being measured


@dataclass
class VersionUse:
    """What one version did so far."""

    use_seconds: float = 0.0
    idle_cpu_percent_seconds: float = 0.0
    idle_seconds: float = 0.0
    growth_bytes: float = 0.0
    growth_seconds: float = 0.0
    settled: bool = False
    reported: bool = False
    trees: dict[str, tuple[float, int]] = field(default_factory=dict)  # tree -> (t0, rss0)
    seen: int = 0  # order of first sight, to find "the previous version"

    def figures(self, version: str) -> VersionFigures:
        """Idle CPU and RSS growth so far."""
        cpu = self.idle_cpu_percent_seconds / self.idle_seconds if self.idle_seconds else 0.0
        growth = self.growth_bytes / self.growth_seconds * 3600 if self.growth_seconds else 0.0
        return VersionFigures(version, cpu, growth, self.use_seconds)

    def to_json(self) -> dict[str, Any]:
        """What the state file keeps (no trees: they do not outlive the daemon)."""
        return {"use_seconds": self.use_seconds,
                "idle_cpu_percent_seconds": self.idle_cpu_percent_seconds,
                "idle_seconds": self.idle_seconds, "growth_bytes": self.growth_bytes,
                "growth_seconds": self.growth_seconds, "settled": self.settled,
                "reported": self.reported, "seen": self.seen}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VersionUse:
        """Read back ``to_json``; unknown or bad fields raise (the shell starts afresh)."""
        return cls(**{k: type(getattr(cls(), k))(data[k]) for k in (
            "use_seconds", "idle_cpu_percent_seconds", "idle_seconds", "growth_bytes",
            "growth_seconds", "settled", "reported", "seen")})


class VersionBook:
    """Per agent, its versions' use in the order first seen.

    >>> book = VersionBook(factor=3.0, use_seconds=10.0, max_agents=4)
    >>> for t in range(12):
    ...     _ = book.observe("claude-code", "1.0", "t1", 2.0, 100 << 20, True, 1.0, t)
    >>> for t in range(12):
    ...     found = book.observe("claude-code", "1.1", "t2", 60.0, 100 << 20, True, 1.0, t)
    ...     if found: print(found.worse, found.previous.version, found.current.version)
    ('idle_cpu',) 1.0 1.1
    """

    def __init__(self, factor: float, use_seconds: float, max_agents: int) -> None:
        self.factor = factor
        self.use_seconds = use_seconds
        self.max_agents = max_agents
        self.agents: dict[str, dict[str, VersionUse]] = {}
        self.changed = False  # something the state file should keep
        self.last_seen: dict[tuple[str, str, str], tuple[float, int]] = {}

    def observe(self, agent: str, version: str, tree: str, cpu_percent: float, rss_bytes: int,
                idle: bool, dt: float, now: float) -> VersionRegressionEvidence | None:
        """One tick of one tree; the evidence once, when a version settles worse."""
        versions = self.agents.get(agent)
        if versions is None:
            if len(self.agents) >= self.max_agents:
                return None
            versions = self.agents[agent] = {}
        use = versions.get(version)
        if use is None:
            use = versions[version] = VersionUse(seen=1 + max(
                (v.seen for v in versions.values()), default=0))
            _trim(versions)
        if use.settled:
            return None
        use.use_seconds += dt
        if idle:
            use.idle_seconds += dt
            use.idle_cpu_percent_seconds += cpu_percent * dt
        if tree in use.trees:
            self.last_seen[(agent, version, tree)] = (now, rss_bytes)
        elif len(use.trees) < MAX_TREES:
            use.trees[tree] = (now, rss_bytes)
        if use.use_seconds < self.use_seconds:
            return None
        self._settle(agent, version, use)
        self.changed = True
        return self._compare(versions, version, use)

    def _settle(self, agent: str, version: str, use: VersionUse) -> None:
        use.settled = True
        for tree, (t0, rss0) in use.trees.items():
            last = self.last_seen.pop((agent, version, tree), None)
            if last is not None and last[0] > t0:
                use.growth_bytes += last[1] - rss0
                use.growth_seconds += last[0] - t0
        use.trees.clear()

    def _compare(self, versions: dict[str, VersionUse], version: str,
                 use: VersionUse) -> VersionRegressionEvidence | None:
        earlier = [(v.seen, name) for name, v in versions.items()
                   if v.settled and v.seen < use.seen]
        if not earlier:
            return None
        previous_name = max(earlier)[1]
        previous = versions[previous_name].figures(previous_name)
        current = use.figures(version)
        worse = []
        if current.idle_cpu_percent >= self.factor * max(previous.idle_cpu_percent,
                                                         CPU_FLOOR_PERCENT):
            worse.append("idle_cpu")
        if current.rss_growth_bytes_per_hour >= self.factor * max(
                previous.rss_growth_bytes_per_hour, GROWTH_FLOOR_BYTES_PER_HOUR):
            worse.append("rss_growth")
        if not worse or use.reported:
            return None
        use.reported = True
        return VersionRegressionEvidence(previous, current, self.factor, tuple(worse))

    def to_json(self) -> dict[str, Any]:
        """The book as the state file keeps it."""
        return {agent: {name: use.to_json() for name, use in versions.items()}
                for agent, versions in self.agents.items()}

    def load(self, data: Any) -> None:
        """Take a state file's book (ValueError/TypeError/KeyError for a bad one)."""
        if not isinstance(data, dict):
            raise ValueError("not a table")
        self.agents = {str(agent): {str(name): VersionUse.from_json(use)
                                    for name, use in dict(versions).items()}
                       for agent, versions in list(data.items())[:self.max_agents]}


def _trim(versions: dict[str, VersionUse]) -> None:
    while len(versions) > MAX_VERSIONS:
        oldest = min(versions, key=lambda name: versions[name].seen)
        del versions[oldest]

"""One tick's sample: each watch's matched processes with RSS and CPU totalled over their trees.

The parent->children map is built once per tick from the same table scan; CPU% comes
from the change in CPU seconds since the previous tick, per (pid, start time).

A tree is counted once, under its topmost matched process: a match inside another
watch's tree (an MCP server under an agent, a native child under its node wrapper) is
a member of that tree. A member that leaves its tree alive (re-parented to init or a
subreaper when its parent exits) stays attributed to the watch as an orphan of the
agent that started it, until it exits.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from crash_reports.event.redact import redact_name
from daemon.config.schema import WatchRule
from daemon.watch.proc.helpers import long_lived, may_be_helper
from daemon.watch.proc.members import MemberRss
from daemon.watch.proc.proctable import ProcessTable, ProcStat
from daemon.watch.proc.selection import ProcessIdentity, Selector
from daemon.watch.proc.tree_walk import children_map, merge_matches, top_matches, tree_pids


@dataclass(frozen=True, slots=True)
class TreeSample:
    """A matched process (the root) and, with include_children, everything under it."""

    watch: str
    pid: int
    key: tuple[int, int]
    name: str
    create_time: float
    rss_bytes: int
    cpu_percent: float
    root_rss_bytes: int
    root_cpu_percent: float
    members: int
    zombie: bool = False
    access_denied: bool = False
    member_pids: tuple[int, ...] = ()
    member_rss: tuple[MemberRss, ...] = ()  # the root first, then each live member
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """Which watched tree a process belonged to: the watch and the agent at its root."""

    watch: str
    agent_key: tuple[int, int]

    @property
    def agent_pid(self) -> int:
        """The pid of the agent that started the process."""
        return self.agent_key[0]


@dataclass(frozen=True, slots=True)
class OrphanSample:
    """A process left behind by a watched tree, with everything under it."""

    watch: str
    pid: int
    key: tuple[int, int]
    name: str
    create_time: float
    rss_bytes: int
    cpu_percent: float
    members: int
    agent_key: tuple[int, int]

    @property
    def agent_pid(self) -> int:
        """The pid of the agent whose tree it belonged to."""
        return self.agent_key[0]


@dataclass(frozen=True)
class TickSample:
    """Everything one tick saw, for every watch."""

    at: float  # wall time: what reports and history show
    monotonic: float  # the monotonic time of the same moment: what intervals are measured on
    by_watch: dict[str, list[TreeSample]]
    processes_scanned: int
    orphans: dict[str, list[OrphanSample]] = field(default_factory=dict)
    identities_evicted: int = 0  # process images the selector's cache evicted since start


def _alive(table: Mapping[int, ProcStat], key: tuple[int, int]) -> bool:
    stat = table.get(key[0])
    return stat is not None and stat.start_ticks == key[1] and not stat.is_exiting


VERSION_RECHECK_TICKS = 10


@dataclass(frozen=True, slots=True)
class _KnownVersion:
    """A tree's agent version as last read, and what it was read from."""

    identity: ProcessIdentity | None
    member_pids: tuple[int, ...]
    version: str | None
    tick: int


@dataclass(frozen=True, slots=True)
class _Tree:
    """A tree's sample and the stat lines it was made from."""

    watch: str
    stats: tuple[ProcStat, ...]  # the root first, then each live member
    identity: ProcessIdentity | None
    sample: TreeSample

    def unchanged(self, watch: str, stats: Sequence[ProcStat],
                  identity: ProcessIdentity | None, version: str | None) -> bool:
        """Whether this tick's tree gives the same sample: the very same stat lines (the
        table hands back the same value for a line that did not change), no CPU used."""
        sample = self.sample
        return (self.watch == watch and self.identity is identity and sample.version == version
                and sample.cpu_percent == sample.root_cpu_percent == 0.0
                and len(self.stats) == len(stats) and all(map(operator.is_, self.stats, stats)))


@dataclass
class _Totals:
    """One pass of totals over a table, before the sampler keeps any of it."""

    by_watch: dict[str, list[TreeSample]]
    orphans: dict[str, list[OrphanSample]]
    origins: dict[tuple[int, int], Origin]
    cpu_seconds: dict[tuple[int, int], float]
    used: set[int]  # every pid whose stat line fed a figure (or could have)
    versions: dict[tuple[int, int], _KnownVersion] = field(default_factory=dict)
    trees: dict[tuple[int, int], _Tree] = field(default_factory=dict)


@dataclass
class Sampler:
    """Samples the watches each tick; keeps the previous CPU seconds to turn them into CPU%,
    and which tree each member belonged to, to follow what a tree leaves behind."""

    table_source: ProcessTable
    rules: Sequence[WatchRule]
    selector: Selector = field(init=False)
    _previous_cpu: dict[tuple[int, int], float] = field(default_factory=dict, init=False)
    _previous_at: float | None = field(default=None, init=False)
    _origins: dict[tuple[int, int], Origin] = field(default_factory=dict, init=False)
    _used: frozenset[int] = field(default=frozenset(), init=False)
    _evicted_before: int = field(default=0, init=False)
    _versions: dict[tuple[int, int], _KnownVersion] = field(default_factory=dict, init=False)
    _trees: dict[tuple[int, int], _Tree] = field(default_factory=dict, init=False)
    _ticks: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.selector = Selector(self.rules)

    @property
    def origins(self) -> Mapping[tuple[int, int], Origin]:
        """Which watched tree each process (by pid and start time) belonged to last tick."""
        return self._origins

    def restore(self, origins: Mapping[tuple[int, int], Origin]) -> None:
        """Take back what an earlier run knew about the trees (before the first sample): the
        processes trees left behind are orphans again, not ordinary processes. A pid reused
        since has another start time and matches nothing."""
        if self._previous_at is None:
            self._origins = dict(origins)

    def set_rules(self, rules: Sequence[WatchRule]) -> None:
        """Swap the watches (on reload); CPU history is kept."""
        self._evicted_before += self.selector.evicted
        self.rules = rules
        self.selector = Selector(rules)

    def close(self) -> None:
        """Release what the process table reader holds between scans."""
        self.table_source.close()

    @property
    def identities_evicted(self) -> int:
        """Process images evicted from the selector's cache since start (reloads included)."""
        return self._evicted_before + self.selector.evicted

    def sample(self, monotonic_now: float, wall_now: float,
               announced: Mapping[str, Sequence[int]] | None = None) -> TickSample:
        """Scan the process table once and total each watch's trees and orphans.

        ``announced``: pids per watch that join it whatever its selectors say (children
        started by ``telemetryd wrap``). The scan reads the processes the previous tick's
        trees used; should a tree now use one the scan carried over (a new match among
        old processes, a reload), it is read and the totals are made again, so every
        figure comes from a line read in this tick.
        """
        table = self.table_source.scan(self._used)
        elapsed = monotonic_now - self._previous_at if self._previous_at is not None else None
        totals = self._totals(table, announced, elapsed)
        for _ in range(3):
            stale = self.table_source.stale(totals.used)
            if not stale:
                break
            fresh = self.table_source.refresh(stale)
            for pid in stale:  # in place: the table keeps the listing's order
                if pid in fresh:
                    table[pid] = fresh[pid]
                else:
                    del table[pid]
            totals = self._totals(table, announced, elapsed)
        self._used = frozenset(totals.used)
        self._versions = totals.versions
        self._trees = totals.trees
        self._ticks += 1
        self._origins = totals.origins
        self._previous_cpu = totals.cpu_seconds
        self._previous_at = monotonic_now
        return TickSample(wall_now, monotonic_now, totals.by_watch, len(table),
                          totals.orphans, self.identities_evicted)

    def _totals(self, table: dict[int, ProcStat],
                announced: Mapping[str, Sequence[int]] | None,
                elapsed: float | None) -> _Totals:
        """Each watch's trees and orphans in ``table`` (no state of the sampler changes)."""
        matches = self.selector.match(table)
        if announced:
            matches = merge_matches(self.rules, matches, announced, table)
        need_tree = any(rule.include_children for rule in self.rules)
        children = children_map(table) if need_tree else {}
        current_cpu: dict[tuple[int, int], float] = {}
        used: set[int] = set()
        previous_cpu = self._previous_cpu

        def cpu_percent(stat: ProcStat) -> float:
            current_cpu[stat.key] = stat.cpu_seconds
            before = previous_cpu.get(stat.key)
            if before is None or not elapsed or elapsed <= 0:
                return 0.0
            return max(0.0, (stat.cpu_seconds - before) / elapsed * 100.0)

        def live_tree(root_pid: int) -> list[int]:
            # A killed child lingers as a zombie until reaped: it is gone.
            tree = tree_pids(root_pid, children)
            used.update(tree)
            return [pid for pid in tree[1:] if not table[pid].is_exiting]

        # Members that were in a watched tree last tick and still run: orphan candidates.
        candidates: dict[str, dict[int, Origin]] = {}
        for key, origin in self._origins.items():
            if key[0] in table:
                used.add(key[0])
            if _alive(table, key):
                candidates.setdefault(origin.watch, {})[key[0]] = origin
        in_trees = {pid for rule, pids in zip(self.rules, matches, strict=True)
                    if rule.include_children for pid in pids}
        # A process left behind by a tree stays that tree's orphan, even where another
        # watch's selectors match it (an MCP server outliving its agent): one place only.
        left_behind = {pid for found in candidates.values() for pid in found}
        blockers = in_trees | left_behind
        origins: dict[tuple[int, int], Origin] = {}
        by_watch: dict[str, list[TreeSample]] = {}
        orphans: dict[str, list[OrphanSample]] = {}
        versions: dict[tuple[int, int], _KnownVersion] = {}
        trees: dict[tuple[int, int], _Tree] = {}
        for rule, pids in zip(self.rules, matches, strict=True):
            used.update(pids)
            mine = candidates.get(rule.name, {})
            if rule.pid is not None or rule.pidfile is not None:
                roots = top_matches(pids, table) if rule.include_children else pids
            elif not rule.include_children:
                roots = [p for p in pids if p not in left_behind]
            else:
                roots = top_matches([p for p in pids if p not in left_behind], table, blockers)
            samples = []
            attached: set[int] = set()
            for root_pid in sorted(roots):
                root = table[root_pid]
                live = live_tree(root_pid) if rule.include_children else []
                stats = (root, *[table[pid] for pid in live])
                member_pids = tuple(live)
                identity = self.selector.identity(root) if root.comm else None
                version = self._version(root, identity, member_pids, table, versions)
                last = self._trees.get(root.key)
                if last is not None and last.unchanged(rule.name, stats, identity, version):
                    sample = last.sample  # an idle tree: nothing to add up again
                    for stat in stats:
                        current_cpu[stat.key] = stat.cpu_seconds
                else:
                    sample = self._tree_sample(rule.name, stats, identity, version, cpu_percent)
                if live:
                    # Last tick's Origin of this tree, when it is the same tree.
                    known = self._origins.get(stats[1].key)
                    origin = known if known is not None and known.agent_key == root.key \
                        and known.watch == rule.name else Origin(rule.name, root.key)
                    for member in stats[1:]:
                        if not self._outlives_its_tree(member):
                            origins[member.key] = origin
                    attached.update(live)
                attached.add(root_pid)
                trees[root.key] = _Tree(rule.name, stats, identity, sample)
                samples.append(sample)
            by_watch[rule.name] = samples
            left = [pid for pid in mine if pid not in attached]
            if left:
                orphans[rule.name] = self._orphan_trees(
                    left, mine, table, live_tree, cpu_percent, origins)
        return _Totals(by_watch, orphans, origins, current_cpu, used, versions, trees)

    def _tree_sample(self, watch: str, stats: tuple[ProcStat, ...],
                     identity: ProcessIdentity | None, version: str | None,
                     cpu_percent: Callable[[ProcStat], float]) -> TreeSample:
        """A tree's RSS and CPU added up over its root and live members."""
        root = stats[0]
        root_cpu = cpu_percent(root)
        rss, cpu = root.rss_bytes, root_cpu
        for member in stats[1:]:
            rss += member.rss_bytes
            cpu += cpu_percent(member)
        return TreeSample(
            watch=watch,
            pid=root.pid,
            key=root.key,
            name=redact_name(root.comm),
            create_time=self.table_source.create_time(root),
            rss_bytes=rss,
            cpu_percent=round(cpu, 2),
            root_rss_bytes=root.rss_bytes,
            root_cpu_percent=round(root_cpu, 2),
            members=len(stats),
            zombie=root.is_exiting,
            access_denied=bool(identity and identity.access_denied),
            member_pids=tuple(stat.pid for stat in stats[1:]),
            member_rss=tuple(MemberRss(stat.pid, redact_name(stat.comm), stat.rss_bytes)
                             for stat in stats),
            version=version,
        )

    def _orphan_trees(self, left: list[int], origin_of: Mapping[int, Origin],
                      table: Mapping[int, ProcStat], live_tree: Callable[[int], list[int]],
                      cpu_percent: Callable[[ProcStat], float],
                      origins: dict[tuple[int, int], Origin]) -> list[OrphanSample]:
        """Each topmost left-behind process with what runs under it, still attributed."""
        found = []
        for pid in sorted(top_matches(left, table)):
            stat = table[pid]
            origin = origin_of[pid]
            rss, cpu = stat.rss_bytes, cpu_percent(stat)
            origins[stat.key] = origin
            below = live_tree(pid)
            for member_pid in below:
                member = table[member_pid]
                rss += member.rss_bytes
                cpu += cpu_percent(member)
                origins[member.key] = origin
            found.append(OrphanSample(
                watch=origin.watch, pid=pid, key=stat.key, name=redact_name(stat.comm),
                create_time=self.table_source.create_time(stat), rss_bytes=rss,
                cpu_percent=round(cpu, 2), members=1 + len(below), agent_key=origin.agent_key))
        return found

    def _outlives_its_tree(self, stat: ProcStat) -> bool:
        """A server the agent starts to outlive it (helpers.py): never its orphan."""
        if not may_be_helper(stat.comm):
            return False
        identity = self.selector.identity(stat)
        return identity is not None and long_lived(
            stat.comm, identity.exe, identity.cmdline) is not None

    def _version(self, root: ProcStat, identity: ProcessIdentity | None,
                 member_pids: tuple[int, ...], table: Mapping[int, ProcStat],
                 versions: dict[tuple[int, int], _KnownVersion]) -> str | None:
        """The agent version its root's install path names, else a matched member's.

        Read again when the root's identity or the members change, else every
        ``VERSION_RECHECK_TICKS`` ticks (a member's identity may be read later).
        """
        known = self._versions.get(root.key)
        if (known is not None and known.identity is identity
                and known.member_pids == member_pids
                and self._ticks - known.tick < VERSION_RECHECK_TICKS):
            versions[root.key] = known
            return known.version
        version = identity.version(root.comm) if identity else None
        if not version:
            for pid in member_pids[:8]:
                member = table[pid]
                if self.selector.known(member):
                    found = self.selector.identity(member)
                    version = found.version(member.comm) if found else None
                    if version:
                        break
        versions[root.key] = _KnownVersion(identity, member_pids, version or None, self._ticks)
        return version or None

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

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from daemon.config.schema import WatchRule
from daemon.watch.members import MemberRss
from daemon.watch.proctable import ProcessTable, ProcStat
from daemon.watch.selection import Selector


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

    at: float
    by_watch: dict[str, list[TreeSample]]
    processes_scanned: int
    orphans: dict[str, list[OrphanSample]] = field(default_factory=dict)
    identities_evicted: int = 0  # process images the selector's cache evicted since start


def children_map(table: Mapping[int, ProcStat]) -> dict[int, list[int]]:
    """Parent pid -> child pids, built once per tick.

    >>> t = {1: ProcStat(1, 0, "init", "S", 0, 0, 0, 1), 5: ProcStat(5, 1, "sh", "S", 0, 0, 0, 1)}
    >>> children_map(t)
    {0: [1], 1: [5]}
    """
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(stat.ppid, []).append(pid)
    return children


def tree_pids(root: int, children: Mapping[int, list[int]]) -> list[int]:
    """The root and all its descendants (iterative, so deep trees cannot overflow the stack)."""
    found = [root]
    stack = [root]
    seen = {root}
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                found.append(child)
                stack.append(child)
    return found


def top_matches(pids: Sequence[int], table: Mapping[int, ProcStat],
                blockers: AbstractSet[int] = frozenset()) -> list[int]:
    """Drop matches that sit inside another match's tree (or a blocker's), so nothing is
    counted twice."""
    matched = set(pids) | blockers
    tops = []
    for pid in pids:
        ancestor = table[pid].ppid
        nested = False
        hops = 0
        while ancestor > 1 and hops < 256:
            if ancestor in matched:
                nested = True
                break
            parent = table.get(ancestor)
            if parent is None:
                break
            ancestor = parent.ppid
            hops += 1
        if not nested:
            tops.append(pid)
    return tops


def merge_matches(rules: Sequence[WatchRule], matches: list[list[int]],
                  announced: Mapping[str, Sequence[int]], live: Mapping[int, object]
                  ) -> list[list[int]]:
    """Selector matches plus the live announced pids of each watch, without duplicates.

    >>> from types import SimpleNamespace as Rule
    >>> r = [Rule(name="a"), Rule(name="b")]
    >>> merge_matches(r, [[1], []], {"a": [1, 2], "b": [9]}, {1: 0, 2: 0})
    [[1, 2], []]
    """
    merged = []
    for rule, pids in zip(rules, matches, strict=True):
        extra = [pid for pid in announced.get(rule.name, ()) if pid in live and pid not in pids]
        merged.append([*pids, *extra])
    return merged


def _alive(table: Mapping[int, ProcStat], key: tuple[int, int]) -> bool:
    stat = table.get(key[0])
    return stat is not None and stat.start_ticks == key[1] and not stat.is_exiting


@dataclass
class _Totals:
    """One pass of totals over a table, before the sampler keeps any of it."""

    by_watch: dict[str, list[TreeSample]]
    orphans: dict[str, list[OrphanSample]]
    origins: dict[tuple[int, int], Origin]
    cpu_seconds: dict[tuple[int, int], float]
    used: set[int]  # every pid whose stat line fed a figure (or could have)


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

    def __post_init__(self) -> None:
        self.selector = Selector(self.rules)

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

    def sample(
        self,
        monotonic_now: float,
        wall_now: float,
        announced: Mapping[str, Sequence[int]] | None = None,
    ) -> TickSample:
        """Scan the process table once and total each watch's trees and orphans.

        ``announced``: pids per watch that join it whatever its selectors say (children
        started by ``telemetryd wrap``). The scan reads the processes the previous tick's
        trees used; should a tree now use one the scan carried over (a new match among
        old processes, a reload), it is read and the totals are made again, so every
        figure comes from a line read in this tick.
        """
        table = self.table_source.scan(self._used)
        elapsed = (
            monotonic_now - self._previous_at if self._previous_at is not None else None
        )
        totals = self._totals(table, announced, elapsed)
        for _ in range(3):
            stale = self.table_source.stale(totals.used)
            if not stale:
                break
            fresh = self.table_source.refresh(stale)
            for pid in stale:
                if pid in fresh:
                    table[pid] = fresh[pid]
                else:
                    table.pop(pid, None)
            totals = self._totals(table, announced, elapsed)
        self._used = frozenset(totals.used)
        self._origins = totals.origins
        self._previous_cpu = totals.cpu_seconds
        self._previous_at = monotonic_now
        return TickSample(wall_now, totals.by_watch, len(table), totals.orphans,
                          self.identities_evicted)

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
        blockers = in_trees | {pid for found in candidates.values() for pid in found}
        origins: dict[tuple[int, int], Origin] = {}
        by_watch: dict[str, list[TreeSample]] = {}
        orphans: dict[str, list[OrphanSample]] = {}
        for rule, pids in zip(self.rules, matches, strict=True):
            used.update(pids)
            mine = candidates.get(rule.name, {})
            if not rule.include_children:
                roots = pids
            elif rule.pid is not None or rule.pidfile is not None:
                roots = top_matches(pids, table)  # an explicit pid is always its own tree
            else:
                roots = top_matches([p for p in pids if p not in mine], table, blockers)
            samples = []
            attached: set[int] = set()
            for root_pid in sorted(roots):
                root = table[root_pid]
                root_cpu = cpu_percent(root)
                rss, cpu, members = root.rss_bytes, root_cpu, 1
                member_pids: tuple[int, ...] = ()
                member_rss = [MemberRss(root_pid, root.comm, root.rss_bytes)]
                if rule.include_children:
                    live = live_tree(root_pid)
                    origin = Origin(rule.name, root.key)
                    for member_pid in live:
                        member = table[member_pid]
                        member_rss.append(MemberRss(member_pid, member.comm, member.rss_bytes))
                        rss += member.rss_bytes
                        cpu += cpu_percent(member)
                        origins[member.key] = origin
                    members += len(live)
                    member_pids = tuple(live)
                    attached.update(live)
                attached.add(root_pid)
                identity = self.selector.identity(root) if root.comm else None
                samples.append(
                    TreeSample(
                        watch=rule.name,
                        pid=root_pid,
                        key=root.key,
                        name=root.comm,
                        create_time=self.table_source.create_time(root),
                        rss_bytes=rss,
                        cpu_percent=round(cpu, 2),
                        root_rss_bytes=root.rss_bytes,
                        root_cpu_percent=round(root_cpu, 2),
                        members=members,
                        zombie=root.is_exiting,
                        access_denied=bool(identity and identity.access_denied),
                        member_pids=member_pids,
                        member_rss=tuple(member_rss),
                        version=self._version(root, member_pids, table),
                    )
                )
            by_watch[rule.name] = samples
            left = [pid for pid in mine if pid not in attached]
            if left:
                orphans[rule.name] = self._orphan_trees(
                    left, mine, table, live_tree, cpu_percent, origins)
        return _Totals(by_watch, orphans, origins, current_cpu, used)

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
                watch=origin.watch, pid=pid, key=stat.key, name=stat.comm,
                create_time=self.table_source.create_time(stat), rss_bytes=rss,
                cpu_percent=round(cpu, 2), members=1 + len(below), agent_key=origin.agent_key))
        return found

    def _version(self, root: ProcStat, member_pids: Sequence[int],
                 table: Mapping[int, ProcStat]) -> str | None:
        """The agent version its root's install path names, else a matched member's."""
        identity = self.selector.identity(root)
        version = identity.version(root.comm) if identity else None
        if version:
            return version
        for pid in member_pids[:8]:
            member = table[pid]
            if self.selector.known(member):
                identity = self.selector.identity(member)
                version = identity.version(member.comm) if identity else None
                if version:
                    return version
        return None

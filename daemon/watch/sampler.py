"""One tick's sample: each watch's matched processes with RSS and CPU totalled over their trees.

The parent->children map is built once per tick from the same table scan; CPU% comes
from the change in CPU seconds since the previous tick, per (pid, start time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from daemon.config.schema import WatchRule
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


@dataclass(frozen=True)
class TickSample:
    """Everything one tick saw, for every watch."""

    at: float
    by_watch: dict[str, list[TreeSample]]
    processes_scanned: int


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


def top_matches(pids: Sequence[int], table: Mapping[int, ProcStat]) -> list[int]:
    """Drop matches that sit inside another match's tree, so nothing is counted twice."""
    matched = set(pids)
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


@dataclass
class Sampler:
    """Samples the watches each tick; keeps the previous CPU seconds to turn them into CPU%."""

    table_source: ProcessTable
    rules: Sequence[WatchRule]
    selector: Selector = field(init=False)
    _previous_cpu: dict[tuple[int, int], float] = field(default_factory=dict, init=False)
    _previous_at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.selector = Selector(self.rules)

    def set_rules(self, rules: Sequence[WatchRule]) -> None:
        """Swap the watches (on reload); CPU history is kept."""
        self.rules = rules
        self.selector = Selector(rules)

    def sample(
        self,
        monotonic_now: float,
        wall_now: float,
        announced: Mapping[str, Sequence[int]] | None = None,
    ) -> TickSample:
        """Scan the process table once and total each watch's trees.

        ``announced``: pids per watch that join it whatever its selectors say (children
        started by ``telemetryd wrap``).
        """
        table = self.table_source.scan()
        matches = self.selector.match(table)
        if announced:
            matches = merge_matches(self.rules, matches, announced, table)
        need_tree = any(rule.include_children for rule in self.rules)
        children = children_map(table) if need_tree else {}
        elapsed = (
            monotonic_now - self._previous_at if self._previous_at is not None else None
        )
        current_cpu: dict[tuple[int, int], float] = {}

        def cpu_percent(stat: ProcStat) -> float:
            current_cpu[stat.key] = stat.cpu_seconds
            before = self._previous_cpu.get(stat.key)
            if before is None or not elapsed or elapsed <= 0:
                return 0.0
            return max(0.0, (stat.cpu_seconds - before) / elapsed * 100.0)

        by_watch: dict[str, list[TreeSample]] = {}
        for rule, pids in zip(self.rules, matches, strict=True):
            roots = top_matches(pids, table) if rule.include_children else pids
            samples = []
            for root_pid in sorted(roots):
                root = table[root_pid]
                root_cpu = cpu_percent(root)
                rss, cpu, members = root.rss_bytes, root_cpu, 1
                member_pids: tuple[int, ...] = ()
                if rule.include_children:
                    live: list[int] = []
                    for member_pid in tree_pids(root_pid, children)[1:]:
                        member = table[member_pid]
                        # A killed child lingers as a zombie until reaped: it is gone.
                        if member.is_exiting:
                            continue
                        rss += member.rss_bytes
                        cpu += cpu_percent(member)
                        members += 1
                        live.append(member_pid)
                    member_pids = tuple(live)
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
                    )
                )
            by_watch[rule.name] = samples
        self._previous_cpu = current_cpu
        self._previous_at = monotonic_now
        return TickSample(wall_now, by_watch, len(table))

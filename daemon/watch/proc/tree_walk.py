"""Process trees in one tick's table (pure): children by parent, a tree's pids, topmost matches.

The parent->children map is built once per tick from the table scan; every tree walk
uses it, so a tick never asks the kernel for children.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

from daemon.config.schema import WatchRule
from daemon.watch.proc.proctable import ProcStat


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
    """Selector matches plus the live announced pids no watch matched, each once.

    A process ``telemetryd wrap`` started belongs to the watch whose selectors match it
    (as any process does: to the first); only when none does it joins the watch it was
    announced to.

    >>> from types import SimpleNamespace as Rule
    >>> r = [Rule(name="a"), Rule(name="b")]
    >>> merge_matches(r, [[1], []], {"a": [1, 2], "b": [9]}, {1: 0, 2: 0})
    [[1, 2], []]
    >>> merge_matches(r, [[1], []], {"b": [1]}, {1: 0})
    [[1], []]
    """
    matched = {pid for pids in matches for pid in pids}
    merged = []
    for rule, pids in zip(rules, matches, strict=True):
        extra = [pid for pid in announced.get(rule.name, ()) if pid in live and pid not in matched]
        matched.update(extra)
        merged.append([*pids, *extra])
    return merged

"""fork_storm: a watched tree gains many new processes within a window (pure).

A process is new to a tree the first tick it is seen among the tree's members. The first
tick a tree is seen counts nothing (what it already had is not a storm). Per tree the rule
keeps the previous member set, the arrivals of the window and a short process-count history.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from daemon.guard.verdicts import ForkStormEvidence

HISTORY_POINTS = 24  # process counts kept per tree, spread over the window
MAX_NEW_PIDS = 256  # new pids kept per tree, to find who spawned them
MAX_ARRIVALS = 256  # ticks with new processes kept per tree; later ones fold into the last

TreeId = tuple[str, tuple[int, int]]


@dataclass
class _Tree:
    previous: frozenset[int]
    seen_at: float  # when the previous member set was read
    arrivals: deque[tuple[float, int, float]] = field(default_factory=deque)  # (at, n, since)
    new_pids: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_NEW_PIDS))
    history: deque[tuple[float, int]] = field(default_factory=lambda: deque(
        maxlen=HISTORY_POINTS))


class ForkStormRule:
    """Arrivals per tree over a sliding window.

    >>> rule = ForkStormRule(threshold=3, window_seconds=10.0, max_trees=10)
    >>> tree = ("w", (1, 1))
    >>> rule.observe(tree, (2,), 0.0) is None, rule.observe(tree, (2, 3, 4), 1.0) is None
    (True, True)
    >>> rule.observe(tree, (2, 3, 4, 5), 2.0).count
    3
    >>> rule.observe(tree, (2, 3, 4, 5), 12.0) is None  # the arrivals left the window
    True
    """

    def __init__(self, threshold: int, window_seconds: float, max_trees: int) -> None:
        self.threshold = threshold
        self.window_seconds = window_seconds
        self.max_trees = max_trees
        self.trees: OrderedDict[TreeId, _Tree] = OrderedDict()

    def observe(self, tree_id: TreeId, member_pids: tuple[int, ...],
                now: float) -> ForkStormEvidence | None:
        """Take one tick's members of a tree; the evidence while the storm condition holds."""
        tree = self.trees.get(tree_id)
        if tree is None:
            tree = _Tree(frozenset(member_pids), now)
            self.trees[tree_id] = tree
            while len(self.trees) > self.max_trees:
                self.trees.popitem(last=False)
            tree.history.append((now, len(member_pids) + 1))
            return None
        self.trees.move_to_end(tree_id)
        members = frozenset(member_pids)
        if members != tree.previous:
            new = members - tree.previous
            if new and len(tree.arrivals) >= MAX_ARRIVALS:
                _, count, gap = tree.arrivals.pop()  # never the first: its gap starts the span
                tree.arrivals.append((now, count + len(new), gap))
            elif new:
                tree.arrivals.append((now, len(new), now - tree.seen_at))
            tree.new_pids.extend(sorted(new))
            tree.previous = members
        tree.seen_at = now
        horizon = now - self.window_seconds
        while tree.arrivals and tree.arrivals[0][0] < horizon:
            tree.arrivals.popleft()
        step = self.window_seconds / HISTORY_POINTS
        if not tree.history or now - tree.history[-1][0] >= step:
            tree.history.append((now, len(members) + 1))
        count = sum(n for _, n, _ in tree.arrivals)
        if count < self.threshold:
            return None
        # From the tick before the first arrival to the last: the new processes came within it.
        first_at, _, first_gap = tree.arrivals[0]
        span = tree.arrivals[-1][0] - first_at + first_gap
        history = [*tree.history]
        if history[-1][0] != now:
            history.append((now, len(members) + 1))
        return ForkStormEvidence(
            count=count, window_seconds=self.window_seconds, span_seconds=span,
            members_now=len(members) + 1, new_pids=tuple(list(tree.new_pids)[-64:]),
            members_over_time=tuple((round(now - at, 2), n) for at, n in history))

    def recent_new_pids(self, tree_id: TreeId) -> tuple[int, ...]:
        """The latest new pids of a tree (up to MAX_NEW_PIDS), to find their parent."""
        tree = self.trees.get(tree_id)
        return tuple(tree.new_pids) if tree is not None else ()

    def keep_only(self, present: Iterable[TreeId]) -> None:
        """Forget trees that are gone."""
        keep = set(present)
        for tree_id in [t for t in self.trees if t not in keep]:
            del self.trees[tree_id]


def top_spawner(parents: Iterable[int]) -> tuple[int | None, int]:
    """The parent pid that started most of the new processes, and how many (pure).

    >>> top_spawner([7, 7, 9, 7]), top_spawner([])
    ((7, 3), (None, 0))
    """
    counts: dict[int, int] = {}
    for pid in parents:
        counts[pid] = counts.get(pid, 0) + 1
    if not counts:
        return None, 0
    pid = max(counts, key=lambda p: counts[p])
    return pid, counts[pid]

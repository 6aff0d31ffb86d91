"""Per-member RSS history of watched trees: which child grew over the trend window (pure).

The sampler hands each tick's members (pid, name, RSS); the history keeps the points of the
last ``window_seconds`` per member, so a report can say which member grew, largest first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

MAX_POINTS = 512  # per member: bounds the memory of a tiny interval over a long window


class MemberRss(NamedTuple):
    """One member of a tree as one tick saw it."""

    pid: int
    name: str
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class MemberGrowth:
    """One tree member: RSS now and how much it grew over the window it has been seen in."""

    pid: int
    name: str
    rss_bytes: int
    growth_bytes: int
    seen_seconds: float


class MemberHistory:
    """RSS points per (pid, name) within the window; members not seen for a window are dropped.

    >>> h = MemberHistory(60.0)
    >>> h.observe(0.0, [MemberRss(1, "agent", 100), MemberRss(2, "mcp", 100)])
    >>> h.observe(30.0, [MemberRss(1, "agent", 110), MemberRss(2, "mcp", 900)])
    >>> [(g.pid, g.growth_bytes) for g in h.growth([1, 2])]
    [(2, 800), (1, 10)]
    """

    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self._points: dict[tuple[int, str], deque[tuple[float, int]]] = {}
        self._last_prune = 0.0

    def observe(self, at: float, members: Iterable[MemberRss]) -> None:
        """Add one tick's members."""
        horizon = at - self.window_seconds
        known = self._points
        for pid, name, rss in members:
            points = known.get((pid, name))
            if points is None:
                points = known[(pid, name)] = deque(maxlen=MAX_POINTS)
            points.append((at, rss))
            while len(points) > 2 and points[1][0] <= horizon:
                points.popleft()
        if at - self._last_prune >= self.window_seconds:
            self._last_prune = at
            self._points = {key: points for key, points in self._points.items()
                            if points and points[-1][0] > horizon}

    def growth(self, pids: Iterable[int]) -> list[MemberGrowth]:
        """The members among ``pids``, largest growth first (then largest RSS)."""
        wanted = set(pids)
        found = []
        for (pid, name), points in self._points.items():
            if pid not in wanted or not points:
                continue
            first, last = points[0], points[-1]
            found.append(MemberGrowth(pid, name, last[1], last[1] - first[1],
                                      round(last[0] - first[0], 3)))
        return sorted(found, key=lambda g: (-g.growth_bytes, -g.rss_bytes, g.pid))

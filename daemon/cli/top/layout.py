"""How ``telemetryd top`` shares the terminal it has: column widths and rows per panel (pure).

Fixed columns keep their widths; the names (watch, process) take what is left, up to their
longest value, so nothing is cut when there is room. The trees get the rows they need; the
events panel gets the rest of the height.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Trees table: (header, justify, width); None marks a flexible name column.
TREE_COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("WATCH", "left", None), ("PID", "right", 7), ("NAME", "left", None),
    ("RSS", "right", 9), ("HISTORY", "left", 14), ("GROW/MIN", "right", 9),
    ("TO CRIT", "right", 7), ("CPU%", "right", 4), ("STATE", "left", 8))
MIN_NAME = 6


def name_widths(width: int, fixed: Sequence[int], longest: Sequence[int]) -> list[int]:
    """Widths of the flexible columns in a table ``width`` wide (one space between columns).

    Each gets at least ``MIN_NAME`` and at most its longest value; spare room is shared in
    turn so that a long name does not starve a short one.

    >>> name_widths(80, [7, 9, 14, 9, 7, 4, 8], [12, 30])
    [7, 7]
    >>> name_widths(200, [7, 9, 14, 9, 7, 4, 8], [12, 30])
    [12, 30]
    """
    columns = len(fixed) + len(longest)
    room = max(0, width - sum(fixed) - (columns - 1))
    widths = [min(MIN_NAME, n) for n in longest]
    room -= sum(widths)
    while room > 0:
        grew = False
        for i, n in enumerate(longest):
            if room > 0 and widths[i] < n:
                widths[i] += 1
                room -= 1
                grew = True
        if not grew:
            break
    return [max(1, w) for w in widths]


@dataclass(frozen=True, slots=True)
class Rows:
    """How many lines each panel of the main screen gets."""

    trees: int
    agents: int
    events: int


def share_rows(height: int, trees: int, agents: int, events: int) -> Rows:
    """Split ``height`` lines: trees as many as they need (at least 3), events the rest.

    Fixed lines: header, note, tree header, two around each of agents and events, the keys.

    >>> share_rows(50, 5, 2, 50)
    Rows(trees=5, agents=2, events=34)
    >>> share_rows(24, 200, 2, 50)
    Rows(trees=9, agents=2, events=4)
    """
    agents = min(agents, 3)
    fixed = 3 + 2 + (1 + agents if agents else 1) + 2 + 1
    remaining = max(4, height - fixed)
    events_min = min(events, max(4, remaining // 3))
    tree_rows = max(3, min(trees, remaining - events_min))
    event_rows = max(1, min(events, remaining - tree_rows)) if events else 1
    return Rows(tree_rows, agents, event_rows)

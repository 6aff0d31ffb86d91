"""One source per figure: metrics, events and spans often carry the same calls (pure).

Claude Code sends its tokens and cost as metrics and again in ``api_request`` events; Gemini
CLI and Codex send requests and tool calls as metrics, events and spans. Stored rows keep
their source in the measure name (``tokens`` from metrics, ``tokens@event``, ``requests@span``)
and every reader picks, per group (agent, session, model or tool) and family of figures, the
source that counted the most — ties go to events, then metrics, then spans — and never adds
two sources up. An agent that sends only logs therefore gets its figures from events, one that
sends only metrics from metrics.

Cost is the exception: it is the source that *counted* the most (costs.py), so that a source
inflated with tokens and a tiny cost cannot replace the cost another source counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from daemon.agents.measures import split_measure

_FAMILIES: dict[str, str] = {
    "tokens": "spend", "cost_reported": "spend", "cost_computed": "spend",
    "cost_counted": "spend", "tokens_unpriced": "spend", "requests": "requests",
    "errors": "requests",
    "request_le": "requests", "tool_calls": "tools", "tool_le": "tools",
    "sessions": "sessions", "work": "work",
}
# Which measure of a family counts for choosing, and whether by value or by count.
_WEIGHTS: dict[str, tuple[str, bool]] = {
    "spend": ("tokens", True), "requests": ("requests", False), "tools": ("tool_calls", False),
    "sessions": ("sessions", False), "work": ("work", True),
}
_PREFERENCE: dict[str, int] = {"event": 0, "metric": 1, "span": 2}
PREFERENCE = _PREFERENCE  # ties between sources, for readers listing one source's entries
FAMILIES = _FAMILIES  # which figures one source must give together, for partial-hour readers
MAX_MEASURES = frozenset({"context_max", "context_window"})


@dataclass(frozen=True, slots=True)
class Row:
    """One aggregate row: ``group`` is whatever the reader groups by (agent, model, tool...)."""

    group: tuple[str, ...]
    measure: str
    dim: str
    value: float
    count: int


def _weight(family: str, source: str, rows: list[Row]) -> tuple[float, float, int]:
    weight_measure, by_value = _WEIGHTS[family]
    total = sum(
        (r.value if by_value else r.count)
        for r in rows
        if split_measure(r.measure)[0] == weight_measure
    )
    # Without the weighing measure (cost but no tokens), any figure at all counts.
    anything = sum(abs(r.value) + r.count for r in rows) if not total else 0
    return float(total), float(anything), -_PREFERENCE.get(source, 9)


def choose(rows: Iterable[Row]) -> list[Row]:
    """The rows of the chosen source per group and family, with plain measure names.

    >>> a, b = ("a",), ("b",)
    >>> rows = [Row(a, "tokens", "input", 100, 0), Row(a, "tokens@event", "input", 100, 1),
    ...         Row(a, "requests@event", "ok", 30.0, 1), Row(b, "tokens@event", "input", 7, 1)]
    >>> [(r.group, r.measure, r.value) for r in choose(rows)]
    [(('a',), 'tokens', 100), (('a',), 'requests', 30.0), (('b',), 'tokens', 7)]
    """
    by_family: dict[tuple[tuple[str, ...], str], dict[str, list[Row]]] = defaultdict(
        lambda: defaultdict(list)
    )
    plain: list[Row] = []
    for row in rows:
        base, source = split_measure(row.measure)
        family = _FAMILIES.get(base)
        if family is None:
            plain.append(Row(row.group, base, row.dim, row.value, row.count))
            continue
        by_family[(row.group, family)][source].append(row)
    chosen: list[Row] = []
    for (_, family), sources in by_family.items():
        best = max(sources, key=lambda source: _weight(family, source, sources[source]))
        chosen.extend(
            Row(r.group, split_measure(r.measure)[0], r.dim, r.value, r.count)
            for r in sources[best]
        )
    return chosen + plain

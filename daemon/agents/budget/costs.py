"""The one cost rule over aggregate rows: spend only grows, whatever a client sends (pure).

What counts is the measure ``cost_counted``: the writer adds to it, per export, the agent's
own reported cost when it is plausible for the tokens it came with, else the cost priced
from those tokens (``daemon.agents.budget.integrity``). It is a sum of amounts that are never
negative, so no export can lower it. Sources are never added up (metrics and events carry
the same calls): per group (a session's or an hour's agent and model) the source that
counted the most wins, which again only grows. ``cost_reported``, ``cost_computed`` and
``tokens_unpriced`` only say how the figure was made (its status).

A store written before ``cost_counted`` existed has groups without it: those keep the rule
of those builds (reported cost wins over computed cost), until the daemon fills them in
(``daemon.agents.store.legacy_costs``).

Kept free of heavy imports (no dataclasses): ``budget check`` runs it on every tool call.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import NamedTuple, TypeVar

from daemon.agents.measures import split_measure

K = TypeVar("K", bound=Hashable)
COST_MEASURES = ("cost_counted", "cost_reported", "cost_computed", "tokens_unpriced")
_INDEX = {name: index for index, name in enumerate(COST_MEASURES)}
# Counted above reported by more than this share: part of the figure was priced here.
_MIXED_TOLERANCE = 1e-9


class SourceCost(NamedTuple):
    """The cost facts of one group from one source (metrics, events or spans).

    ``counted_usd`` and ``reported_usd`` are None when the source has no such row.
    """

    counted_usd: float | None
    reported_usd: float | None
    computed_usd: float
    unpriced_tokens: float


def source_cost(cost: SourceCost) -> tuple[float | None, str]:
    """Cost and status of one group from one source.

    >>> source_cost(SourceCost(1.5, 1.5, 1.4, 0))
    (1.5, 'reported')
    >>> source_cost(SourceCost(2.0, 0.5, 2.0, 0))  # tokens priced beside a reported cost
    (2.0, 'mixed')
    >>> source_cost(SourceCost(None, None, 0.0, 300.0))
    (None, 'unknown')
    >>> source_cost(SourceCost(None, 0.5, 9.0, 0))  # written before cost_counted existed
    (0.5, 'reported')
    """
    counted, reported = cost.counted_usd, cost.reported_usd
    if counted is None:
        if reported is not None:
            return reported, "reported"
        counted = cost.computed_usd
    if reported is not None:
        mixed = counted > reported + _MIXED_TOLERANCE * max(1.0, abs(reported))
        return counted, "mixed" if mixed else "reported"
    if cost.unpriced_tokens > 0:
        return (counted, "partial") if counted > 0 else (None, "unknown")
    return counted, "computed"


def gather(rows: Iterable[tuple[K, str, float]]) -> dict[K, dict[str, SourceCost]]:
    """Cost rows ``(group, stored measure, value)`` summed per group and source.

    >>> found = gather([("a", "cost_counted@event", 2.0), ("a", "cost_counted", 0.5),
    ...                 ("a", "cost_reported", 0.5), ("a", "tokens", 10.0)])
    >>> found["a"]["event"], found["a"]["metric"].reported_usd
    (SourceCost(counted_usd=2.0, reported_usd=None, computed_usd=0.0, unpriced_tokens=0.0), 0.5)
    """
    sums: dict[K, dict[str, list[float | None]]] = {}
    for group, measure, value in rows:
        base, source = split_measure(measure)
        index = _INDEX.get(base)
        if index is None:
            continue
        slot = sums.setdefault(group, {}).setdefault(source, [None, None, 0.0, 0.0])
        slot[index] = (slot[index] or 0.0) + value
    return {group: {source: SourceCost(s[0], s[1], s[2] or 0.0, s[3] or 0.0)
                    for source, s in by_source.items()}
            for group, by_source in sums.items()}


def group_cost(sources: Mapping[str, SourceCost]) -> tuple[float | None, str]:
    """The cost of one group: the source that counted the most (never a sum of sources).

    >>> group_cost({"metric": SourceCost(1e-6, 1e-6, 150.0, 0),
    ...             "event": SourceCost(25.0, 25.0, 0.04, 0)})
    (25.0, 'reported')
    >>> group_cost({})
    (None, 'none')
    """
    best: tuple[float | None, str] | None = None
    for source in sorted(sources):
        usd, status = source_cost(sources[source])
        if best is None or (usd or 0.0) > (best[0] or 0.0):
            best = (usd, status)
    return best or (None, "none")


def combine(groups: Iterable[tuple[float | None, str]]) -> tuple[float | None, str]:
    """Total cost and one status over many groups' ``(usd, status)`` (``none`` for none).

    >>> combine([(1.0, "reported"), (0.5, "computed")])
    (1.5, 'mixed')
    >>> combine([(None, "unknown"), (0.5, "computed")])
    (0.5, 'partial')
    >>> combine([])
    (None, 'none')
    """
    total: float | None = None
    statuses: set[str] = set()
    for usd, status in groups:
        statuses.add(status)
        if usd is not None:
            total = (total or 0.0) + usd
    if not statuses:
        return None, "none"
    if len(statuses) == 1:
        return total, statuses.pop()
    if statuses & {"unknown", "partial"}:
        return total, "partial"
    return total, "mixed"


def total_cost(groups: Iterable[Mapping[str, SourceCost]]) -> tuple[float | None, str]:
    """``combine`` over the cost of each group."""
    return combine(group_cost(sources) for sources in groups)

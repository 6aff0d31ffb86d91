"""The one cost rule over aggregate groups: reported cost wins over computed cost (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class CostGroup(NamedTuple):
    """The cost facts of one (hour, agent, model) group of the hourly aggregates.

    A NamedTuple, not a dataclass: ``budget check`` imports this on every tool call of an
    agent, and ``dataclasses`` (with ``inspect``) costs it about 5 ms.
    """

    reported_usd: float | None
    computed_usd: float
    unpriced_tokens: float


def group_cost(group: CostGroup) -> tuple[float | None, str]:
    """Cost and status of one group.

    >>> group_cost(CostGroup(reported_usd=1.5, computed_usd=1.2, unpriced_tokens=0))
    (1.5, 'reported')
    >>> group_cost(CostGroup(None, 0.0, 300.0))
    (None, 'unknown')
    >>> group_cost(CostGroup(None, 0.25, 300.0))
    (0.25, 'partial')
    """
    if group.reported_usd is not None:
        return group.reported_usd, "reported"
    if group.unpriced_tokens > 0:
        return (group.computed_usd, "partial") if group.computed_usd > 0 else (None, "unknown")
    return group.computed_usd, "computed"


def combine(groups: Iterable[CostGroup]) -> tuple[float | None, str]:
    """Total cost and one status over many groups (``none`` when there were none).

    >>> combine([CostGroup(1.0, 0.0, 0), CostGroup(None, 0.5, 0)])
    (1.5, 'mixed')
    >>> combine([CostGroup(None, 0.0, 10.0), CostGroup(None, 0.5, 0)])
    (0.5, 'partial')
    >>> combine([])
    (None, 'none')
    """
    total: float | None = None
    statuses: set[str] = set()
    for group in groups:
        usd, status = group_cost(group)
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

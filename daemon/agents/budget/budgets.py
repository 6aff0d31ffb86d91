"""Daily and monthly cost budgets per agent: which thresholds a spend crosses, once per period.

Periods are calendar days and months in UTC, matching the store's UTC hour buckets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daemon.agents.budget.periods import period_key, utc

if TYPE_CHECKING:
    from daemon.agents.settings import BudgetPeriod, BudgetSettings

THRESHOLDS_PERCENT: tuple[int, ...] = (50, 75, 90, 100)


@dataclass(frozen=True, slots=True)
class BudgetState:
    """Thresholds already fired in one period of one budget (keep it; pass it back next time)."""

    period_key: str
    fired: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Crossing:
    """A threshold of a budget crossed for the first time in its period."""

    agent: str
    period: BudgetPeriod
    period_key: str
    threshold_percent: int
    spent_usd: float
    limit_usd: float


def check(
    budget: BudgetSettings, spent_usd: float, state: BudgetState | None, now: float
) -> tuple[BudgetState, list[Crossing]]:
    """New state and the thresholds newly crossed; a new period starts with none fired.

    >>> from daemon.agents.settings import BudgetSettings
    >>> b = BudgetSettings("bot", "daily", 10.0)
    >>> state, crossed = check(b, 7.6, None, 0.0)
    >>> [c.threshold_percent for c in crossed], sorted(state.fired)
    ([50, 75], [50, 75])
    >>> [c.threshold_percent for c in check(b, 9.0, state, 60.0)[1]]
    [90]
    >>> [c.threshold_percent for c in check(b, 9.0, state, 86400.0)[1]]
    [50, 75, 90]
    """
    key = period_key(budget.period, now)
    if state is None or state.period_key != key:
        state = BudgetState(key)
    if budget.limit_usd <= 0:
        return state, []
    percent = spent_usd / budget.limit_usd * 100.0
    new = [t for t in THRESHOLDS_PERCENT if t <= percent and t not in state.fired]
    crossings = [
        Crossing(budget.agent, budget.period, key, t, spent_usd, budget.limit_usd) for t in new
    ]
    return BudgetState(key, state.fired | frozenset(new)), crossings


def sentry_event(crossing: Crossing, now: float) -> dict[str, Any]:
    """The Sentry event for a budget exhausted: warning level, one issue per agent and period.

    >>> c = Crossing("bot", "monthly", "2026-11", 100, 51.0, 50.0)
    >>> e = sentry_event(c, 0.0)
    >>> e["level"], e["fingerprint"], e["tags"]["budget.period"]
    ('warning', ['telemetryd-budget', 'bot', 'monthly'], 'monthly')
    """
    return {
        "level": "warning",
        "logger": "telemetryd.budgets",
        "message": (
            f"Agent {crossing.agent} spent {crossing.spent_usd:.2f} USD, "
            f"{crossing.threshold_percent}% of its {crossing.period} budget "
            f"of {crossing.limit_usd:.2f} USD ({crossing.period_key})"
        ),
        "timestamp": utc(now).isoformat(),
        "fingerprint": ["telemetryd-budget", crossing.agent, crossing.period],
        "tags": {
            "agent": crossing.agent,
            "budget.period": crossing.period,
            "budget.threshold_percent": str(crossing.threshold_percent),
        },
        "contexts": {
            "budget": {
                "agent": crossing.agent,
                "period": crossing.period,
                "period_key": crossing.period_key,
                "spent_usd": round(crossing.spent_usd, 6),
                "limit_usd": crossing.limit_usd,
                "percent": round(crossing.spent_usd / crossing.limit_usd * 100.0, 2),
            }
        },
    }

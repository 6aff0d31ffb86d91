"""Budget periods: calendar days and months in UTC, matching the store's UTC hour buckets.

Standard library only: ``budget check`` reads ``period_start`` on every tool call of an agent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: settings imports more than this path may pay for
    from daemon.agents.settings import BudgetPeriod


def utc(now: float) -> datetime:
    """``now`` (epoch seconds) as an aware UTC datetime."""
    return datetime.fromtimestamp(now, UTC)


def period_key(period: BudgetPeriod, now: float) -> str:
    """Name of the period ``now`` falls in.

    >>> period_key("daily", 86400 * 3.5), period_key("monthly", 86400 * 40)
    ('1970-01-04', '1970-02')
    """
    moment = utc(now)
    return moment.strftime("%Y-%m-%d") if period == "daily" else moment.strftime("%Y-%m")


def period_start(period: BudgetPeriod, now: float) -> float:
    """Epoch seconds at which the period ``now`` falls in began.

    >>> period_start("daily", 86400 * 3.5), period_start("monthly", 86400 * 40)
    (259200.0, 2678400.0)
    """
    moment = utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "monthly":
        moment = moment.replace(day=1)
    return moment.timestamp()

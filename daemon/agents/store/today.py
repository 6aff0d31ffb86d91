"""Per agent, today: tokens, cost, burn rate, sessions and budget use (for `top` and the page).

Computed by the daemon at most every ``AGENTS_REFRESH_SECONDS`` from the store's hourly
buckets and published in the status snapshot, so a viewer never opens the event store.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from daemon.agents.budget import periods
from daemon.agents.settings import BudgetSettings
from daemon.agents.store.queries import StatsRow, StoreReader

AGENTS_REFRESH_SECONDS = 10.0
# Agents shown besides the watched and budgeted ones (the busiest today).
MAX_AGENTS_SHOWN = 50
HOUR_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class AgentToday:
    """One agent's figures for the current UTC day."""

    agent: str
    tokens_today: int
    cost_today_usd: float | None
    burn_usd_per_hour: float | None
    sessions_today: int
    budget_used_percent: float | None

    def to_json(self) -> dict[str, Any]:
        """Plain data for the status snapshot."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AgentToday:
        """Read one back from a snapshot."""
        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)
        return cls(str(data["agent"]), int(data.get("tokens_today") or 0),
                   number("cost_today_usd"), number("burn_usd_per_hour"),
                   int(data.get("sessions_today") or 0), number("budget_used_percent"))


def agents_today(today: Sequence[StatsRow], last_hour: Sequence[StatsRow],
                 budget_list: Sequence[BudgetSettings], hour_fraction: float,
                 spent: dict[str, float]) -> list[AgentToday]:
    """Combine today's and the last hour's rows with the daily budgets (pure).

    ``hour_fraction`` is how much of an hour the last-hour rows span (the burn rate divides
    by it); ``spent`` maps ``agent|period`` to the spend at the last budget check.

    >>> row = StatsRow("aider", tokens={"input": 900, "output": 100}, cost_usd=2.0, sessions=1)
    >>> b = [BudgetSettings("aider", "daily", 10.0)]
    >>> [a.budget_used_percent for a in agents_today([row], [row], b, 0.5, {"aider|daily": 2.0})]
    [20.0]
    >>> agents_today([row], [row], b, 0.5, {})[0].burn_usd_per_hour
    4.0
    """
    recent = {row.key: row for row in last_hour}
    out = []
    for row in today:
        hour = recent.get(row.key)
        burn = None
        if hour is not None and hour.cost_usd is not None and hour_fraction > 0:
            burn = hour.cost_usd / hour_fraction
        used = None
        for budget in budget_list:
            if budget.agent in (row.key, "*") and budget.period == "daily" and budget.limit_usd:
                key = f"{budget.agent}|{budget.period}"
                used = 100.0 * spent.get(key, row.cost_usd or 0.0) / budget.limit_usd
        out.append(AgentToday(row.key, sum(row.tokens.values()), row.cost_usd, burn,
                              row.sessions, used))
    return out


def read_agents_today(reader: StoreReader, budget_list: Sequence[BudgetSettings],
                      spent: dict[str, float], now: float, *, keep: Collection[str] = (),
                      limit: int = MAX_AGENTS_SHOWN) -> list[AgentToday]:
    """Query the store for today and the last hour (reads of the hourly buckets): the
    agents in ``keep`` and those with a budget, and the ``limit`` busiest others. Bounded
    so that a flood of new service names costs the tick (and the snapshot) no more than
    ``limit`` agents."""
    day_start = periods.period_start("daily", now)
    hour_start = (now // HOUR_SECONDS - 1) * HOUR_SECONDS  # this hour and the one before
    agents = {*keep, *(b.agent for b in budget_list if b.agent != "*")}
    agents.update(reader.busiest_agents(day_start, now, limit))
    today = reader.stats(day_start, now, "agent", agents)
    last_hour = reader.stats(hour_start, now, "agent", agents)
    return agents_today(today, last_hour, budget_list, (now - hour_start) / HOUR_SECONDS,
                        spent)


def hourly_cost(reader: StoreReader, since: float,
                until: float) -> dict[str, list[tuple[float, float]]]:
    """Cost per agent per UTC hour in [since, until], for the page's cost chart."""
    out: dict[str, list[tuple[float, float]]] = {}
    if not reader.exists():
        return out
    hour = (since // HOUR_SECONDS) * HOUR_SECONDS
    while hour <= until:
        for row in reader.stats(hour, hour + HOUR_SECONDS - 1, "agent"):
            if row.cost_usd is not None:
                out.setdefault(row.key, []).append((hour, row.cost_usd))
        hour += HOUR_SECONDS
    return out

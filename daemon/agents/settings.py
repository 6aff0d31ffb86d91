"""The agents' view of the config: the [otlp] table is ``OtlpSettings`` from the schema as is;
budgets are split per period here. No defaults of its own: those live in ``config/schema.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from daemon.agents.decoding.identity import agent_for_watch
from daemon.config.schema import BudgetRule

BudgetPeriod = Literal["daily", "monthly"]


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """One cost budget: ``agent`` is the agent name (``"*"`` means all agents).

    >>> BudgetSettings(agent="claude-code", period="daily", limit_usd=20.0).limit_usd
    20.0
    """

    agent: str
    period: BudgetPeriod
    limit_usd: float


def budgets_from(rules: Iterable[BudgetRule]) -> tuple[BudgetSettings, ...]:
    """One budget per [[budget]] table and period it limits; the table may name the agent,
    one of its service names or its watch.

    >>> budgets_from([BudgetRule("a", daily_usd=5.0, monthly_usd=90.0)])[1].period
    'monthly'
    >>> budgets_from([BudgetRule("codex_exec", daily_usd=5.0)])[0].agent
    'codex'
    """
    found: list[BudgetSettings] = []
    for rule in rules:
        agent = rule.agent if rule.agent == "*" else agent_for_watch(rule.agent)
        if rule.daily_usd is not None:
            found.append(BudgetSettings(agent, "daily", rule.daily_usd))
        if rule.monthly_usd is not None:
            found.append(BudgetSettings(agent, "monthly", rule.monthly_usd))
    return tuple(found)

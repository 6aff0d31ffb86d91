"""What an agent or a session spent, read from an open event store connection.

Kept free of heavy imports: ``budget check`` calls it before every tool call of an agent.
The rows go through the one cost rule of ``daemon.agents.budget.costs``: per group the source that
counted the most, never a sum of sources, so no client can lower what was counted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from daemon.agents.budget.costs import COST_MEASURES, gather, total_cost

# How long `budget check` waits for the daemon's writer before failing open: it runs before
# every tool call, so it waits less than the daemon's own readers.
HOOK_BUSY_TIMEOUT_SECONDS = 2.0
_COST_LIKE = " OR ".join(f"measure LIKE '{name}%'" for name in COST_MEASURES)
_SESSION_ROWS = f"""
SELECT session_id, agent, model, tool, measure, dim, value, count FROM session_totals
WHERE session_id = ? AND ({_COST_LIKE})
"""  # noqa: S608 (fixed names)
_PERIOD_ROWS = f"""
SELECT '', agent, model, tool, measure, dim, sum(value), sum(count) FROM hourly
WHERE hour BETWEEN ? AND ? AND ({_COST_LIKE})
GROUP BY agent, model, tool, measure, dim
"""  # noqa: S608 (fixed names)
_SESSION_AGENTS = "SELECT DISTINCT agent FROM session_seen WHERE session_id = ?"


def cost_per_agent(found: Iterable[Any]) -> dict[str, float]:
    """Rows (session, agent, model, tool, measure, dim, value, count) to USD per agent.

    >>> rows = [("s", "bot", "m", "", "cost_counted", "", 0.5, 0),
    ...         ("s", "bot", "m", "", "cost_reported", "", 0.5, 0),
    ...         ("s", "bot", "m", "", "cost_computed", "", 0.6, 0),
    ...         ("s", "bot", "m", "", "cost_counted@event", "", 0.4, 0)]
    >>> cost_per_agent(rows)
    {'bot': 0.5}
    """
    groups = gather(((session, agent, model), measure, value)
                    for session, agent, model, _tool, measure, _dim, value, _count in found)
    per_agent: dict[str, list[Any]] = {}
    for key, sources in groups.items():
        per_agent.setdefault(key[1], []).append(sources)
    return {agent: total_cost(found_groups)[0] or 0.0
            for agent, found_groups in per_agent.items()}


def session_spend(db: sqlite3.Connection, session_id: str) -> dict[str, float]:
    """Cost of one agent session per agent name."""
    return cost_per_agent(db.execute(_SESSION_ROWS, (session_id,)))


def session_agents(db: sqlite3.Connection, session_id: str) -> set[str]:
    """Every agent that sent anything under this session id (with or without spend)."""
    return {agent for (agent,) in db.execute(_SESSION_AGENTS, (session_id,))}


def period_spend(db: sqlite3.Connection, agent: str | None, since: float, until: float) -> float:
    """Cost of one agent (``None`` or ``"*"``: all agents) over the hours in [since, until]."""
    per_agent = cost_per_agent(db.execute(_PERIOD_ROWS, (int(since // 3600), int(until // 3600))))
    return sum(usd for name, usd in per_agent.items() if agent in (None, "*", name))

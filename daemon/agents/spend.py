"""What an agent or a session spent, read from an open event store connection.

Kept free of heavy imports: ``budget check`` calls it before every tool call of an agent.
The rows go through the readers' rules: one source per group (``choose``), then the one
cost rule of ``daemon.agents.costs`` (reported cost wins over computed cost, per model).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from daemon.agents.choose import Row, choose
from daemon.agents.costs import CostGroup, combine

# How long `budget check` waits for the daemon's writer before failing open: it runs before
# every tool call, so it waits less than the daemon's own readers.
HOOK_BUSY_TIMEOUT_SECONDS = 2.0
COST_MEASURES = ("cost_reported", "cost_computed", "tokens_unpriced")
# Only the spend family (tokens decide which source counts, see choose.py).
_SESSION_ROWS = """
SELECT session_id, agent, model, tool, measure, dim, value, count FROM session_totals
WHERE session_id = ? AND (measure LIKE 'tokens%' OR measure LIKE 'cost_%')
"""
_PERIOD_ROWS = """
SELECT '', agent, model, tool, measure, dim, sum(value), sum(count) FROM hourly
WHERE hour BETWEEN ? AND ? AND (measure LIKE 'tokens%' OR measure LIKE 'cost_%')
GROUP BY agent, model, tool, measure, dim
"""


def cost_per_agent(found: Iterable[Any]) -> dict[str, float]:
    """Rows (session, agent, model, tool, measure, dim, value, count) to USD per agent.

    >>> rows = [("s", "bot", "m", "", "tokens", "input", 10, 1),
    ...         ("s", "bot", "m", "", "cost_reported", "", 0.5, 1),
    ...         ("s", "bot", "m", "", "cost_computed", "", 9.0, 1)]
    >>> cost_per_agent(rows)
    {'bot': 0.5}
    """
    groups: dict[str, dict[tuple[str, str, str], list[float | None]]] = {}
    for row in choose(Row((s, a, m, t), measure, dim, value, count)
                      for s, a, m, t, measure, dim, value, count in found):
        if row.measure not in COST_MEASURES:
            continue
        session, agent, model, _tool = row.group
        slot = groups.setdefault(agent, {}).setdefault((session, agent, model), [None, 0.0, 0.0])
        index = COST_MEASURES.index(row.measure)
        slot[index] = (slot[index] or 0.0) + row.value
    spend: dict[str, float] = {}
    for agent, by_model in groups.items():
        usd, _status = combine(CostGroup(reported, computed or 0.0, unpriced or 0.0)
                               for reported, computed, unpriced in by_model.values())
        spend[agent] = usd or 0.0
    return spend


def session_spend(db: sqlite3.Connection, session_id: str) -> dict[str, float]:
    """Cost of one agent session per agent name."""
    return cost_per_agent(db.execute(_SESSION_ROWS, (session_id,)))


def period_spend(db: sqlite3.Connection, agent: str | None, since: float, until: float) -> float:
    """Cost of one agent (``None`` or ``"*"``: all agents) over the hours in [since, until]."""
    per_agent = cost_per_agent(db.execute(_PERIOD_ROWS, (int(since // 3600), int(until // 3600))))
    return sum(usd for name, usd in per_agent.items() if agent in (None, "*", name))

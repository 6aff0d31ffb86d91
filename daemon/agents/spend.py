"""What an agent or a session spent, read from an open event store connection.

Kept free of heavy imports: ``budget check`` calls it before every tool call of an agent.
Both readers apply the one cost rule of ``daemon.agents.costs`` (reported cost wins).
"""

from __future__ import annotations

import sqlite3

from daemon.agents.costs import CostGroup, combine

# How long `budget check` waits for the daemon's writer before failing open: it runs before
# every tool call, so it waits less than the daemon's own readers.
HOOK_BUSY_TIMEOUT_SECONDS = 2.0

# Uses the events_session index; the sums skip tokens without a price (cost_usd null).
_SESSION_SPEND = """
SELECT agent, json_extract(data, '$.model'), kind,
       sum(CASE kind WHEN 'cost' THEN json_extract(data, '$.usd')
                     ELSE json_extract(data, '$.cost_usd') END)
FROM events WHERE session_id = ? AND kind IN ('cost', 'tokens')
GROUP BY agent, json_extract(data, '$.model'), kind
"""
_PERIOD_SPEND = """
SELECT hour, agent, model, measure, sum(value) FROM hourly
WHERE hour BETWEEN ? AND ? AND measure IN ('cost_reported', 'cost_computed', 'tokens_unpriced')
GROUP BY hour, agent, model, measure
"""


def session_spend(db: sqlite3.Connection, session_id: str) -> dict[str, float]:
    """Cost of one agent session per agent name, from its raw events.

    Per (agent, model) the agent's own cost reports count when there are any, else the
    cost computed from tokens.
    """
    groups: dict[tuple[str, str], list[float | None]] = {}
    for agent, model, kind, usd in db.execute(_SESSION_SPEND, (session_id,)):
        slot = groups.setdefault((agent, model or ""), [None, 0.0])
        index = 0 if kind == "cost" else 1
        slot[index] = (slot[index] or 0.0) + (usd or 0.0)
    spend: dict[str, float] = {}
    for (agent, _model), (reported, computed) in groups.items():
        usd, _status = combine([CostGroup(reported, computed or 0.0, 0.0)])
        spend[agent] = spend.get(agent, 0.0) + (usd or 0.0)
    return spend


def period_spend(db: sqlite3.Connection, agent: str | None, since: float, until: float) -> float:
    """Cost of one agent (``None`` or ``"*"``: all agents) over the hours in [since, until]."""
    groups: dict[tuple[int, str, str], list[float | None]] = {}
    index_of = {"cost_reported": 0, "cost_computed": 1, "tokens_unpriced": 2}
    for hour, name, model, measure, value in db.execute(
        _PERIOD_SPEND, (int(since // 3600), int(until // 3600))
    ):
        if agent not in (None, "*", name):
            continue
        slot = groups.setdefault((hour, name, model), [None, 0.0, 0.0])
        index = index_of[measure]
        slot[index] = (slot[index] or 0.0) + value
    total, _status = combine(
        CostGroup(reported, computed or 0.0, unpriced or 0.0)
        for reported, computed, unpriced in groups.values()
    )
    return total or 0.0

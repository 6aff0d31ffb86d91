"""The page's sessions tab: one row per agent session today, from the agent store's buckets.

Figures only (tokens, cost, requests, tool calls and failures); never prompt or tool content.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from daemon.agents.queries import StatsRow

DAY_SECONDS = 86400.0


def day_start(now: float) -> float:
    """Start of the current UTC day (the agents' day, as budgets count it).

    >>> day_start(90000.0)
    86400.0
    """
    return now // DAY_SECONDS * DAY_SECONDS


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def sessions_table(rows: Sequence[StatsRow]) -> str:
    """The sessions, the costliest first."""
    if not rows:
        return '<p class="muted">No agent session today.</p>'
    body = []
    for row in sorted(rows, key=lambda r: (-(r.cost_usd or 0.0), r.key)):
        body.append(
            f'<tr id="session-{escape(row.key)}"><td>{escape(row.agent or "-")}</td>'
            f"<td>{escape(row.key)}</td><td class=num>{row.requests}</td>"
            f"<td class=num>{sum(row.tokens.values()):,}</td>"
            f"<td class=num>{escape(_usd(row.cost_usd))}</td>"
            f"<td class=num>{row.tool_calls}</td><td class=num>{row.tool_failures}</td></tr>")
    return ("<table id=\"sessions-table\"><thead><tr><th>Agent</th><th>Session</th>"
            "<th class=num>Requests</th><th class=num>Tokens</th><th class=num>Cost</th>"
            "<th class=num>Tool calls</th><th class=num>Tool failures</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")

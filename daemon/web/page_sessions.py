"""The page's sessions tab: one row per recent agent session; a chosen one shows its last steps.

A row links the session's process tree (RSS, CPU) when the session's pid is a watched tree,
and its agent's daily budget use. Choosing a session is a link (``?session=agent/id``), so
it works without a script. Figures and names only; never prompt or tool content.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from crash_reports.common.humanize import format_bytes, format_duration
from daemon.agents.store.session_list import SessionStep, SessionSummary
from daemon.agents.store.today import AgentToday
from daemon.status.view import TreeRow


def _usd(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"${value:.{digits}f}"


def _when(at: float, now: float | None = None) -> str:
    """HH:MM:SS local time; with the date when ``at`` is not within the last 20 hours."""
    if now is not None and now - at > 72000:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))
    return time.strftime("%H:%M:%S", time.localtime(at))


def budget_state(agent: str, agents: Sequence[AgentToday]) -> str:
    """The agent's daily budget use, as the session row shows it."""
    for today in agents:
        if today.agent == agent and today.budget_used_percent is not None:
            used = today.budget_used_percent
            word = "over budget" if used >= 100 else "budget"
            return f"{word} {used:.0f} % used"
    return "no budget"


def sessions_table(sessions: Sequence[SessionSummary], trees: Sequence[TreeRow],
                   agents: Sequence[AgentToday], now: float, chosen: str | None,
                   range_name: str) -> str:
    """The sessions, the most recently active first; the chosen one highlighted."""
    if not sessions:
        return '<p class="muted">No agent session recorded.</p>'
    by_pid = {t.pid: t for t in trees}
    body = []
    for s in sessions:
        tree = by_pid.get(s.pid) if s.pid is not None else None
        linked = ("-" if tree is None else
                  f"{tree.watch} pid {tree.pid}: {format_bytes(tree.rss_bytes)}, "
                  f"{tree.cpu_percent:.0f} % CPU")
        burn = s.burn_usd_per_hour
        href = f"/?range={range_name}&amp;session={quote(s.key, safe='')}#sessions"
        cells = [
            f'<td><a href="{href}">{escape(s.agent)}</a></td>',
            f"<td>{escape(s.version or '-')}</td>",
            f"<td>{escape(', '.join(s.models) or '-')}</td>",
            f"<td>{_when(s.started_at, now)}</td>",
            f"<td>{escape(format_duration(max(0.0, now - s.last_active_at)))} ago</td>",
            f"<td class=num>{s.requests}</td>", f"<td class=num>{s.tokens:,}</td>",
            f"<td class=num>{escape(_usd(s.cost_usd))}</td>",
            f"<td class=num>{escape('-' if burn is None else _usd(burn, 2) + '/h')}</td>",
            f"<td class=num>{s.tool_calls}</td>",
            f"<td class=num>{s.tool_failures}</td>",
            f"<td>{escape(linked)}</td>",
            f"<td>{escape(budget_state(s.agent, agents))}</td>",
        ]
        selected = ' class="selected"' if s.key == chosen else ""
        body.append(f'<tr id="session-{escape(s.key)}"{selected} data-agent="{escape(s.agent)}">'
                    f"{''.join(cells)}</tr>")
    head = "".join(f"<th{' class=num' if n else ''}>{h}</th>" for h, n in (
        ("Agent", 0), ("Version", 0), ("Model(s)", 0), ("Started", 0), ("Last active", 0),
        ("Requests", 1), ("Tokens", 1), ("Cost", 1), ("Burn", 1), ("Tool calls", 1),
        ("Failed", 1), ("Process tree", 0), ("Budget", 0)))
    return (f'<table id="sessions-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def steps_table(session: str, steps: Sequence[SessionStep]) -> str:
    """The chosen session's last requests and tool calls, newest first."""
    if not steps:
        return f'<p class="muted">No request or tool call recorded for {escape(session)}.</p>'
    rows = "".join(
        f'<tr class="step-{escape(s.kind)}"><td>{_when(s.at)}</td>'
        f"<td>{'request' if s.kind == 'request' else 'tool call'}</td>"
        f"<td>{escape(s.name)}</td>"
        f"<td class=\"{'state-ok' if s.ok else 'state-critical'}\">{escape(s.outcome)}</td>"
        f"<td class=num>{s.duration_ms:.0f} ms</td></tr>" for s in steps)
    return (f'<h3 id="session-steps">Last steps of {escape(session)}</h3>'
            "<table><thead><tr><th>At</th><th>What</th><th>Model / tool</th><th>Outcome</th>"
            f"<th class=num>Duration</th></tr></thead><tbody>{rows}</tbody></table>")

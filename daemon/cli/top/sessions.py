"""``telemetryd top``'s sessions panel: one row per recent agent session, the chosen one's steps.

Read from the agent event store (read-only, only while the panel is shown). ``j``/``k``
choose a session; its last requests and tool calls (names, outcomes, durations; never
content) show under the table.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from crash_reports.common.humanize import format_bytes, format_duration, printable
from daemon.agents.store.session_list import SessionStep, SessionSummary, read_sessions, read_steps
from daemon.status.view import StatusView
from daemon.web.page_sessions import budget_state


def read_panel(events_db: Path, now: float,
               selected: int) -> tuple[list[SessionSummary], list[SessionStep]]:
    """Today's sessions and the chosen one's last steps (nothing when there is no store)."""
    try:
        sessions = read_sessions(events_db, now)
        if not sessions:
            return [], []
        chosen = sessions[min(max(0, selected), len(sessions) - 1)]
        return sessions, read_steps(events_db, chosen.agent, chosen.session_id)
    except Exception:  # a store being migrated or locked costs the panel, not the view
        return [], []


def _cell(text: str, style: str = "") -> Text:
    return Text(printable(text), style=style)


def sessions_panel(sessions: Sequence[SessionSummary], steps: Sequence[SessionStep],
                   view: StatusView, selected: int, height: int, width: int,
                   now: float) -> RenderableType:
    """The sessions table (the chosen row marked) and the chosen session's last steps."""
    if not sessions:
        return Text("no agent session recorded", style="dim")
    chosen = min(max(0, selected), len(sessions) - 1)
    by_pid = {t.pid: t for t in view.trees}
    table = Table(box=None, padding=(0, 1), pad_edge=False, collapse_padding=True,
                  show_edge=False, header_style="bold")
    wide = width >= 150
    agent_w = min(24, 2 + max(len(printable(s.agent)) for s in sessions))
    columns = [("AGENT", "left", agent_w), ("VERSION", "left", 8), ("MODEL", "left", 16 if wide
                                                               else 10),
               ("LAST", "right", 6), ("REQS", "right", 5), ("TOKENS", "right", 8),
               ("COST", "right", 8), ("BURN/H", "right", 7), ("TOOLS", "right", 5),
               ("FAIL", "right", 4)]
    if wide:
        columns += [("STARTED", "left", 8), ("TREE RSS/CPU", "left", 22), ("BUDGET", "left", 18)]
    for name, justify, w in columns:
        table.add_column(name, justify=justify, width=w, no_wrap=True,  # type: ignore[arg-type]
                         overflow="ellipsis")
    rows_room = max(3, height // 2)
    start = max(0, chosen - rows_room + 1)
    for i, s in enumerate(sessions[start:start + rows_room], start):
        tree = by_pid.get(s.pid) if s.pid is not None else None
        burn = s.burn_usd_per_hour
        cells: list[str | Text] = [_cell(("> " if i == chosen else "  ") + s.agent),
                 _cell(s.version or "-"), _cell(", ".join(s.models) or "-"),
                 format_duration(max(0.0, now - s.last_active_at)), str(s.requests),
                 f"{s.tokens:,}", "-" if s.cost_usd is None else f"${s.cost_usd:.4f}",
                 "-" if burn is None else f"${burn:.2f}",
                 str(s.tool_calls), Text(str(s.tool_failures),
                                         style="red" if s.tool_failures else "")]
        if wide:
            cells += [time.strftime("%H:%M:%S", time.localtime(s.started_at)),
                      "-" if tree is None else
                      f"{format_bytes(tree.rss_bytes)} {tree.cpu_percent:.0f}%",
                      _cell(budget_state(s.agent, view.agents))]
        table.add_row(*cells, style="reverse" if i == chosen else "")
    lines = [Text(printable(f"Last steps of {sessions[chosen].key}"), style="bold")]
    for step in steps[:max(1, height - rows_room - 3)]:
        what = "request  " if step.kind == "request" else "tool call"
        line = Text(f"{time.strftime('%H:%M:%S', time.localtime(step.at))} {what} ")
        line.append(printable(step.name))
        line.append(f" {printable(step.outcome)}", style="green" if step.ok else "red")
        line.append(f" {step.duration_ms:.0f} ms")
        line.truncate(width, overflow="ellipsis")
        lines.append(line)
    if len(lines) == 1:
        lines.append(Text("no request or tool call recorded", style="dim"))
    return Group(table, Text(""), *lines)

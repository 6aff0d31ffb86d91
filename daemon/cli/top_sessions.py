"""``telemetryd top``'s sessions panel: one row per agent session today (figures, no content).

Read from the agent event store (read-only, only while the panel is shown) the way
``telemetryd stats --by session`` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table
from rich.text import Text

from crash_reports.event.humanize import printable
from daemon.agents.queries import StatsRow, StoreReader

SessionRow = StatsRow
DAY_SECONDS = 86400.0


def read_sessions(events_db: Path, now: float) -> list[SessionRow]:
    """Today's (UTC) sessions, the costliest first; empty when there is no store yet."""
    reader = StoreReader(events_db)
    if not reader.exists():
        return []
    try:
        rows = reader.stats(now // DAY_SECONDS * DAY_SECONDS, now, "session")
    except Exception:  # a store being migrated or locked costs the panel, not the view
        return []
    return sorted(rows, key=lambda r: (-(r.cost_usd or 0.0), r.key))


def sessions_table(rows: Sequence[SessionRow], max_rows: int, width: int = 80) -> Table | Text:
    """Agent, session, requests, tokens, cost, tool calls and failures, one row a session."""
    if not rows:
        return Text("no agent session today", style="dim")
    table = Table(box=None, padding=(0, 1), pad_edge=False, collapse_padding=True,
                  show_edge=False, header_style="bold")
    session_w = max(8, min(36, width - 12 - 6 * 1 - 8 - 10 - 9 - 6 - 6))
    for name, justify, w in (("AGENT", "left", 12), ("SESSION", "left", session_w),
                             ("REQS", "right", 6), ("TOKENS", "right", 10),
                             ("COST", "right", 9), ("TOOLS", "right", 6),
                             ("FAILED", "right", 6)):
        table.add_column(name, justify=justify, width=w, no_wrap=True,  # type: ignore[arg-type]
                         overflow="ellipsis")
    for row in rows[:max_rows]:
        table.add_row(Text(printable(row.agent or "-")), Text(printable(row.key)),
                      str(row.requests), f"{sum(row.tokens.values()):,}",
                      "-" if row.cost_usd is None else f"${row.cost_usd:.4f}",
                      str(row.tool_calls),
                      Text(str(row.tool_failures), style="red" if row.tool_failures else ""))
    return table

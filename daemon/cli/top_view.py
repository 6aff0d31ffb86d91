"""What ``telemetryd top`` draws, as rich renderables built from published data (pure).

The rows come from the same ``StatusView`` the status page uses; sparklines from the
history the daemon keeps. Sorting and filtering are values (``TopState``) changed by keys.
Every string that came from outside (agent, process and watch names, event texts, delivery
errors) is drawn through ``humanize.printable`` as a ``Text``, never as a str: rich would
print control characters as they are and read ``[...]`` in a str as its markup.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from crash_reports.event.humanize import format_bytes, format_duration, printable
from daemon.web.view import StatusView, TreeRow

SPARK_CHARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 14
STATE_STYLES = {"ok": "green", "warning": "bold yellow", "critical": "bold red",
                "orphaned": "dim italic"}


class SortKey(StrEnum):
    """What the tree rows are ordered by (``s`` cycles through them)."""

    RSS = "rss"
    GROWTH = "growth"
    ETA = "eta"
    CPU = "cpu"
    WATCH = "watch"


@dataclass(frozen=True, slots=True)
class TopState:
    """What the keys changed: the sort order and the watch shown (None: all)."""

    sort: SortKey = SortKey.RSS
    watch: str | None = None
    quit: bool = False


def on_key(state: TopState, key: str, watches: Sequence[str]) -> TopState:
    """The state after one key press (``s`` sort, ``f`` filter by watch, ``q`` quit).

    >>> s = on_key(TopState(), "s", []); s.sort
    <SortKey.GROWTH: 'growth'>
    >>> on_key(on_key(TopState(), "f", ["a", "b"]), "f", ["a", "b"]).watch
    'b'
    >>> on_key(TopState(watch="b"), "f", ["a", "b"]).watch is None
    True
    >>> on_key(TopState(), "q", []).quit
    True
    """
    if key in ("q", "Q"):
        return replace(state, quit=True)
    if key == "s":
        order = list(SortKey)
        return replace(state, sort=order[(order.index(state.sort) + 1) % len(order)])
    if key == "f":
        choices: list[str | None] = [None, *sorted(watches)]
        index = choices.index(state.watch) if state.watch in choices else 0
        return replace(state, watch=choices[(index + 1) % len(choices)])
    return state


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """The last ``width`` values as block characters, scaled from their minimum to maximum.

    >>> sparkline([1, 2, 3, 4, 5, 6, 7, 8])
    '▁▂▃▄▅▆▇█'
    >>> sparkline([5, 5, 5])
    '▁▁▁'
    """
    tail = list(values)[-width:]
    if not tail:
        return ""
    low, high = min(tail), max(tail)
    span = high - low
    top = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[0 if span <= 0 else round((v - low) / span * top)] for v in tail)


def sort_rows(rows: Sequence[TreeRow], key: SortKey) -> list[TreeRow]:
    """Rows in display order: the most pressing first for every key but ``watch``."""
    if key is SortKey.WATCH:
        return sorted(rows, key=lambda r: (r.watch, r.pid))
    if key is SortKey.ETA:
        return sorted(rows, key=lambda r: (r.eta_seconds is None, r.eta_seconds or 0.0))
    measure = {SortKey.RSS: lambda r: float(r.rss_bytes),
               SortKey.GROWTH: lambda r: r.rate_bytes_per_min or 0.0,
               SortKey.CPU: lambda r: r.cpu_percent}[key]
    return sorted(rows, key=measure, reverse=True)


def shown(text: str, style: str = "") -> Text:
    """Text from outside as rich should draw it: control characters escaped, no markup.

    >>> shown("[bold]x\x1b]52;c;aGk=\x07").plain
    '[bold]x\\\\x1b]52;c;aGk=\\\\x07'
    """
    return Text(printable(text), style=style)


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.2f}"


def header(view: StatusView, state: TopState, now: float) -> Text:
    """The top line: the daemon's state, then sort and filter."""
    d = view.daemon
    line = Text()
    if d.running:
        tick = "-" if d.last_tick_at is None else f"{max(0.0, now - d.last_tick_at):.1f}s ago"
        line.append("telemetryd ", style="bold")
        line.append(f"pid {d.pid}, tick {tick}, {d.reports_pending} pending, "
                    f"delivery: {printable(d.delivery)}")
    else:
        line.append("telemetryd is not running", style="bold red")
        line.append(" - waiting for it to start (last known state below)")
    line.truncate(80, overflow="ellipsis")
    return line


def trees_table(view: StatusView, sparks: Mapping[tuple[str, int], Sequence[float]],
                state: TopState, max_rows: int) -> Table:
    """One row per watched tree: RSS with its sparkline, growth, time to critical, CPU, state."""
    table = Table(box=None, padding=(0, 1), pad_edge=False, collapse_padding=True,
                  show_edge=False, header_style="bold")
    for name, justify, width in (("WATCH", "left", 10), ("PID", "right", 7),
                                 ("RSS", "right", 9), ("HISTORY", "left", SPARK_WIDTH),
                                 ("GROW/MIN", "right", 9), ("TO CRIT", "right", 7),
                                 ("CPU%", "right", 4), ("STATE", "left", 8)):
        table.add_column(name, justify=justify, width=width, no_wrap=True,  # type: ignore[arg-type]
                         overflow="ellipsis")
    rows = [r for r in view.trees if state.watch in (None, r.watch)]
    for row in sort_rows(rows, state.sort)[:max_rows]:
        table.add_row(
            shown(row.watch), str(row.pid), format_bytes(row.rss_bytes),
            Text(sparkline(sparks.get((row.watch, row.pid), ())), style="cyan"),
            "-" if row.rate_bytes_per_min is None else format_bytes(row.rate_bytes_per_min),
            "-" if row.eta_seconds is None else format_duration(row.eta_seconds),
            f"{row.cpu_percent:.0f}", shown(row.state, STATE_STYLES.get(row.state, "")))
    for name in view.idle_watches:
        if state.watch in (None, name) and len(table.rows) < max_rows:
            table.add_row(shown(name), "-", "-", Text("no match", style="dim"), "", "", "", "")
    return table


def agents_table(view: StatusView, max_rows: int) -> Table:
    """Per agent today: tokens, cost, burn rate, budget used, sessions."""
    table = Table(box=None, padding=(0, 1), pad_edge=False, collapse_padding=True,
                  show_edge=False, header_style="bold")
    for name, justify, width in (("AGENT", "left", 16), ("TOKENS", "right", 10),
                                 ("COST", "right", 9), ("BURN/H", "right", 9),
                                 ("BUDGET", "right", 7), ("SESSIONS", "right", 8)):
        table.add_column(name, justify=justify, width=width, no_wrap=True,  # type: ignore[arg-type]
                         overflow="ellipsis")
    for agent in view.agents[:max_rows]:
        budget = agent.budget_used_percent
        style = "bold red" if budget is not None and budget >= 90 else ""
        table.add_row(shown(agent.agent), f"{agent.tokens_today:,}", _usd(agent.cost_today_usd),
                      _usd(agent.burn_usd_per_hour),
                      Text("-" if budget is None else f"{budget:.0f}%", style=style),
                      str(agent.sessions_today))
    return table


def events_strip(view: StatusView, max_rows: int) -> Text:
    """The newest events, one per line."""
    styles = {"critical": "red", "warning": "yellow", "delivery_failed": "red",
              "report_delivered": "green"}
    lines = []
    for event in view.events[:max_rows]:
        stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
        line = shown(f"{stamp} {event.text}", styles.get(event.kind, ""))
        line.truncate(79, overflow="ellipsis")
        lines.append(line)
    if not lines:
        return Text("no events yet", style="dim")
    return Text("\n").join(lines)


def frame(view: StatusView, sparks: Mapping[tuple[str, int], Sequence[float]],
          state: TopState, now: float, height: int = 24,
          problem: str | None = None) -> RenderableType:
    """The whole screen for a terminal ``height`` lines tall (24 or more)."""
    agent_rows = min(len(view.agents), 3)
    event_rows = 4
    # header, note, table header | blank, title, agents header + rows (or one line) |
    # blank, title, events | footer
    agent_lines = 1 + agent_rows if agent_rows else 1
    fixed = 3 + (2 + agent_lines) + (2 + max(1, min(event_rows, len(view.events)))) + 1
    tree_rows = max(3, height - fixed)
    note = shown(problem or "", "red")
    note.truncate(80, overflow="ellipsis")
    parts: list[RenderableType] = [header(view, state, now), note]
    parts.append(trees_table(view, sparks, state, tree_rows))
    parts.append(Text("\nAgents today", style="bold"))
    parts.append(agents_table(view, agent_rows) if view.agents
                 else Text("no agent telemetry today", style="dim"))
    parts.append(Text("\nRecent events", style="bold"))
    parts.append(events_strip(view, event_rows))
    parts.append(shown(f"s sort ({state.sort})  f filter by watch ({state.watch or 'all'})  "
                       "q quit", "reverse"))
    return Group(*parts)

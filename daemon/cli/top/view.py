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

from rich.cells import cell_len, set_cell_size
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from crash_reports.common.humanize import format_bytes, format_duration, printable
from daemon.agents.store.session_list import SessionStep, SessionSummary
from daemon.cli.top.layout import TREE_COLUMNS, name_widths, share_rows
from daemon.cli.top.sessions import sessions_panel
from daemon.status.view import StatusView, TreeRow, also_waiting, once_per_pid

SPARK_CHARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 14
STATE_STYLES = {"ok": "green", "warning": "bold yellow", "critical": "bold red",
                "orphaned": "dim italic"}


class Panel(StrEnum):
    """What fills the screen (``1`` trees, ``2`` sessions, ``3`` events; Tab cycles)."""

    TREES = "trees"
    SESSIONS = "sessions"
    EVENTS = "events"


PANEL_KEYS = {"1": Panel.TREES, "2": Panel.SESSIONS, "3": Panel.EVENTS}


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
    panel: Panel = Panel.TREES
    selected: int = 0


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
    >>> on_key(TopState(), "3", []).panel, on_key(TopState(), chr(9), []).panel
    (<Panel.EVENTS: 'events'>, <Panel.SESSIONS: 'sessions'>)
    """
    if key in ("q", "Q"):
        return replace(state, quit=True)
    if key in ("j", "k") and state.panel is Panel.SESSIONS:
        return replace(state, selected=max(0, state.selected + (1 if key == "j" else -1)))
    if key in PANEL_KEYS:
        return replace(state, panel=PANEL_KEYS[key])
    if key == "\t":
        panels = list(Panel)
        return replace(state, panel=panels[(panels.index(state.panel) + 1) % len(panels)])
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


def header(view: StatusView, state: TopState, now: float, width: int = 80) -> Text:
    """The top line: the daemon's state, then sort and filter."""
    d = view.daemon
    line = Text()
    if d.running:
        tick = "-" if d.last_tick_at is None else f"{max(0.0, now - d.last_tick_at):.1f}s ago"
        line.append("telemetryd ", style="bold")
        others = also_waiting(d)
        line.append(f"pid {d.pid}, tick {tick}, {d.reports_pending} pending, "
                    f"delivery: {printable(d.delivery)}" + (f" ({others})" if others else ""))
    else:
        line.append("telemetryd is not running", style="bold red")
        line.append(" - waiting for it to start (last known state below)")
    line.truncate(width, overflow="ellipsis")
    return line


def _table() -> Table:
    return Table(box=None, padding=(0, 1), pad_edge=False, collapse_padding=True,
                 show_edge=False, header_style="bold")


def fit(text: str, width: int, right: bool = False) -> str:
    """``text`` in exactly ``width`` cells: padded, or cut with an ellipsis.

    >>> fit("claude-code", 6), fit("42", 4, right=True)
    ('claud…', '  42')
    """
    if cell_len(text) > width:
        return set_cell_size(text, max(0, width - 1)) + "…" if width > 0 else ""
    return set_cell_size(text, width) if not right else " " * (width - cell_len(text)) + text


def visible_trees(view: StatusView, state: TopState, height: int) -> list[TreeRow]:
    """The tree rows the trees panel shows at this height (their sparklines are read)."""
    if state.panel is not Panel.TREES:
        return []
    rows = [r for r in view.trees if state.watch in (None, r.watch)]
    limit = share_rows(height, len(view.trees) + len(view.idle_watches), len(view.agents),
                       len(view.events)).trees
    return once_per_pid(sort_rows(rows, state.sort))[:limit]


def trees_table(view: StatusView, sparks: Mapping[tuple[str, int], Sequence[float]],
                state: TopState, max_rows: int, width: int = 80) -> Text:
    """One row per watched tree: RSS with its sparkline, growth, time to critical, CPU, state.

    The watch and process names take the width the terminal has, up to their longest value.
    Drawn as lines of Text with the widths computed here (a rich Table measured every cell
    again on each refresh: most of a refresh's time at 200 trees).
    """
    rows = [r for r in view.trees if state.watch in (None, r.watch)]
    ordered = once_per_pid(sort_rows(rows, state.sort))[:max_rows]
    idle = [n for n in view.idle_watches if state.watch in (None, n)]
    watch_w, name_w = name_widths(
        width, [w for _, _, w in TREE_COLUMNS if w is not None],
        [max([5, *(len(printable(r.watch)) for r in ordered), *(len(printable(n)) for n in idle)]),
         max([4, *(len(printable(r.name)) for r in ordered)])])
    flexible = iter((watch_w, name_w))
    columns = [(name, justify == "right", fixed if fixed is not None else next(flexible))
               for name, justify, fixed in TREE_COLUMNS]
    out = Text(" ".join(fit(name, w, right) for name, right, w in columns).rstrip(),
               style="bold")
    lines = [out]
    for row in ordered:
        cells = [
            (printable(row.watch), ""), (str(row.pid), ""), (printable(row.name), ""),
            (format_bytes(row.rss_bytes), ""),
            (sparkline(sparks.get((row.watch, row.pid), ())), "cyan"),
            ("-" if row.rate_bytes_per_min is None else format_bytes(row.rate_bytes_per_min), ""),
            ("-" if row.eta_seconds is None else format_duration(row.eta_seconds), ""),
            (f"{row.cpu_percent:.0f}", ""), (printable(row.state),
                                             STATE_STYLES.get(row.state, ""))]
        lines.append(_line(columns, cells))
    for name in idle[:max(0, max_rows - len(ordered))]:
        lines.append(_line(columns, [(printable(name), ""), ("-", ""), ("no match", "dim"),
                                     ("-", ""), ("", ""), ("", ""), ("", ""), ("", ""),
                                     ("", "")]))
    return Text("\n").join(lines)


def _line(columns: Sequence[tuple[str, bool, int]], cells: Sequence[tuple[str, str]]) -> Text:
    line = Text()
    for i, ((_, right, w), (value, style)) in enumerate(zip(columns, cells, strict=True)):
        if i:
            line.append(" ")
        line.append(fit(value, w, right), style=style)
    line.rstrip()
    return line


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


def events_strip(view: StatusView, max_rows: int, width: int = 80) -> Text:
    """The newest events, one per line."""
    styles = {"critical": "red", "warning": "yellow", "delivery_failed": "red",
              "report_delivered": "green"}
    lines = []
    for event in view.events[:max_rows]:
        stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
        line = shown(f"{stamp} {event.text}", styles.get(event.kind, ""))
        line.truncate(max(20, width - 1), overflow="ellipsis")
        lines.append(line)
    if not lines:
        return Text("no events yet", style="dim")
    return Text("\n").join(lines)


def keys_line(state: TopState, width: int) -> Text:
    """The keys, on screen: panels first, then what the trees panel understands."""
    panels = " ".join(f"{k} {p}" + ("*" if p is state.panel else "")
                      for k, p in PANEL_KEYS.items())
    line = shown(f"{panels}  Tab next  s sort ({state.sort})  f filter "
                 f"({state.watch or 'all'})  q quit", "reverse")
    line.truncate(width, overflow="ellipsis")
    return line


def frame(view: StatusView, sparks: Mapping[tuple[str, int], Sequence[float]],
          state: TopState, now: float, height: int = 24,
          problem: str | None = None, width: int = 80,
          sessions: Sequence[SessionSummary] = (),
          steps: Sequence[SessionStep] = ()) -> RenderableType:
    """The whole screen for a terminal ``height`` lines tall (24 or more), ``width`` wide."""
    note = shown(problem or "", "red")
    note.truncate(width, overflow="ellipsis")
    parts: list[RenderableType] = [header(view, state, now, width), note]
    body = max(3, height - 4)
    if state.panel is Panel.EVENTS:
        parts.append(Text(f"Recent events (newest first, {len(view.events)} kept)",
                          style="bold"))
        parts.append(events_strip(view, body, width))
    elif state.panel is Panel.SESSIONS:
        parts.append(Text("Agent sessions, latest first (j/k choose)", style="bold"))
        parts.append(sessions_panel(sessions, steps, view, state.selected, body - 1, width, now))
    else:
        rows = share_rows(height, len(view.trees) + len(view.idle_watches), len(view.agents),
                          len(view.events))
        parts.append(trees_table(view, sparks, state, rows.trees, width))
        parts.append(Text("\nAgents today", style="bold"))
        parts.append(agents_table(view, rows.agents) if view.agents
                     else Text("no agent telemetry today", style="dim"))
        parts.append(Text("\nRecent events", style="bold"))
        parts.append(events_strip(view, rows.events, width))
    parts.append(keys_line(state, width))
    return Group(*parts)

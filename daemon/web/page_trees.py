"""The page's "now" part: a chart per live tree, ended trees folded per watch (pure HTML).

Live trees come first, most pressing first; each chart scales to its own data and marks
only the reports of its own tree (the report's pid and time within the tree's life). Ended
trees collapse to one ``<details>`` line per watch: how many, their peak, how they ended.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from html import escape

from crash_reports.common.humanize import format_bytes, format_duration
from daemon.stats.history import TreeHistory, TreeKey, TreeSpan
from daemon.status.view import ReportRow, TreeRow, report_pid
from daemon.web.svg import Axes, Level, Marker, Series, line_chart

MIN_SPAN_SECONDS = 120.0
SEVERITY = {"critical": 0, "warning": 1, "ok": 2, "orphaned": 3}


def local_clock(at: float) -> str:
    """HH:MM in the daemon host's local time."""
    return time.strftime("%H:%M", time.localtime(at))


def time_caption() -> str:
    """The time axis caption, naming the zone."""
    return f"local time ({time.strftime('%Z') or 'local'})"


def live_first(trees: Sequence[TreeRow]) -> list[TreeRow]:
    """Most pressing first: critical, warning, ok, then orphans; larger RSS first within.

    >>> rows = [TreeRow("w", p, "n", 0.0, rss, 0.0, st, None, None, None, None)
    ...         for p, rss, st in ((1, 5, "ok"), (2, 1, "critical"), (3, 9, "orphaned"))]
    >>> [r.pid for r in live_first(rows)]
    [2, 1, 3]
    """
    return sorted(trees, key=lambda t: (SEVERITY.get(t.state, 4), -t.rss_bytes, t.watch, t.pid))


def reports_of(key: TreeKey, first: float, last: float, reports: Sequence[ReportRow],
               slack: float) -> list[ReportRow]:
    """The reports about this tree: same watch, same pid, written during its life."""
    first = min(key.started_at, first)
    return [r for r in reports if r.watch == key.watch and report_pid(r) == key.pid
            and first - slack <= r.created_at <= last + slack]


def _levels(row: TreeRow) -> list[Level]:
    return [Level(f"{label} {format_bytes(value)}", value, f"level-{label}")
            for label, value in (("warning", row.rss_warning_bytes),
                                 ("critical", row.rss_critical_bytes)) if value]


def _figures(row: TreeRow) -> str:
    growth = ("-" if row.rate_bytes_per_min is None
              else f"{format_bytes(row.rate_bytes_per_min)}/min")
    eta = "-" if row.eta_seconds is None else format_duration(row.eta_seconds)
    return (f'<dl class="figures"><dt>RSS</dt><dd>{escape(format_bytes(row.rss_bytes))}</dd>'
            f"<dt>Growth</dt><dd>{escape(growth)}</dd><dt>To critical</dt>"
            f"<dd>{escape(eta)}</dd><dt>CPU</dt><dd>{row.cpu_percent:.0f} %</dd>"
            f'<dt>State</dt><dd class="state-{escape(row.state)}">{escape(row.state)}</dd></dl>')


def live_charts(trees: Sequence[TreeRow], histories: Sequence[TreeHistory],
                reports: Sequence[ReportRow], since: float, until: float,
                step: float) -> str:
    """One figure per live tree, most pressing first, each scaled to its own data."""
    by_tree = {(h.key.watch, h.key.pid): h for h in histories if h.points}
    axes = Axes(format_bytes, local_clock, "RSS", time_caption())
    figures = []
    for row in live_first(trees):
        history = by_tree.get((row.watch, row.pid))
        name = f"{row.watch} pid {row.pid}"
        if history is None:
            points: list[tuple[float, float]] = [(until, float(row.rss_bytes))]
            marks: list[Marker] = []
            started = row.started_at or until
        else:
            points = [(p.at, float(p.rss_bytes)) for p in history.points]
            marks = [Marker(r.created_at, f"{r.kind} report ({r.state})")
                     for r in reports_of(history.key, history.points[0].at,
                                         history.points[-1].at, reports, step)]
            started = history.key.started_at
        # A tree younger than the window gets the chart's width for its own life.
        start = max(since, min(points[0][0], until - MIN_SPAN_SECONDS))
        svg = line_chart([Series(f"RSS of {row.name}", points)], (start, until), axes,
                         levels=_levels(row), markers=marks, title=f"RSS of {name}")
        figures.append(
            f'<figure class="chart-box live" id="tree-{escape(row.watch)}-{row.pid}-'
            f'{int(started)}" data-drawn="server" data-state="{escape(row.state)}" '
            f'data-marks="{len(marks)}">{svg}<figcaption><b>{escape(name)}</b> '
            f"{escape(row.name)}{_figures(row)}</figcaption></figure>")
    return "".join(figures) or '<p class="muted">No live tree right now.</p>'


@dataclass(frozen=True, slots=True)
class EndedWatch:
    """The ended trees of one watch, folded."""

    watch: str
    trees: tuple[TreeSpan, ...]
    peak_bytes: int
    endings: tuple[tuple[str, int], ...]  # (how it ended, count), most common first


def _kinds(span: TreeSpan, reports: Sequence[ReportRow], slack: float) -> list[str]:
    return sorted({r.kind or "report"
                   for r in reports_of(span.key, span.first_at, span.last_at, reports, slack)})


def ended_by_watch(spans: Sequence[TreeSpan], live: Collection[tuple[str, int]],
                   reports: Sequence[ReportRow], slack: float) -> list[EndedWatch]:
    """Trees not live now, grouped per watch, with how each ended."""
    groups: dict[str, list[TreeSpan]] = {}
    for span in spans:
        if (span.key.watch, span.key.pid) not in live:
            groups.setdefault(span.key.watch, []).append(span)
    out = []
    for watch, trees in sorted(groups.items()):
        endings: dict[str, int] = {}
        for span in trees:
            kinds = _kinds(span, reports, slack)
            how = "after " + ", ".join(kinds) + " report" if kinds else "exited, no report"
            endings[how] = endings.get(how, 0) + 1
        trees.sort(key=lambda t: t.last_at, reverse=True)
        out.append(EndedWatch(watch, tuple(trees), max(t.peak_rss_bytes for t in trees),
                              tuple(sorted(endings.items(), key=lambda kv: -kv[1]))))
    return out


def ended_section(groups: Sequence[EndedWatch], reports: Sequence[ReportRow],
                  slack: float) -> str:
    """One ``<details>`` per watch: the summary line, the trees inside (no script needed)."""
    if not groups:
        return '<p class="muted">No tree ended in this range.</p>'
    parts = []
    for group in groups:
        how = "; ".join(f"{n} {what}" for what, n in group.endings)
        rows = [f"<tr><td class=num>{span.key.pid}</td>"
                f"<td>{local_clock(span.key.started_at)}</td>"
                f"<td>{local_clock(span.last_at)}</td>"
                f"<td class=num>{escape(format_bytes(span.peak_rss_bytes))}</td>"
                f"<td>{escape(', '.join(_kinds(span, reports, slack)) or '-')}</td></tr>"
                for span in group.trees]
        parts.append(
            f'<details class="ended" id="ended-{escape(group.watch)}"><summary>'
            f"<b>{escape(group.watch)}</b>: {len(group.trees)} ended, peak "
            f"{escape(format_bytes(group.peak_bytes))}; {escape(how)}</summary>"
            "<table><thead><tr><th class=num>PID</th><th>Started</th><th>Last seen</th>"
            "<th class=num>Peak RSS</th><th>Reports</th></tr></thead><tbody>"
            f'{"".join(rows)}</tbody></table></details>')
    return "".join(parts)

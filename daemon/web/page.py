"""``GET /``: the status page, drawn on the server (tables and SVG charts) so it reads without
JavaScript; its script (static/page.js, inlined) then redraws from the JSON API every 5 s.

Everything it needs ships in the package (templates/, static/); nothing comes from the
network.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cache
from html import escape
from importlib import resources
from string import Template

from crash_reports.event.humanize import format_bytes, format_duration
from daemon.agents.today import AgentToday
from daemon.runtime.recent_events import RecentEvent
from daemon.web.sources import RANGES_SECONDS, PageSources, Reply, window
from daemon.web.svg import Level, Marker, Series, line_chart
from daemon.web.view import (
    DaemonView,
    ReportRow,
    StatusView,
    TreeRow,
    cost_steps,
    status_view,
)

REFRESH_SECONDS = 10
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'")


@cache
def _asset(folder: str, name: str) -> str:
    return (resources.files("daemon.web") / folder / name).read_text(encoding="utf-8")


def _clock(at: float) -> str:
    return time.strftime("%H:%M", time.localtime(at))


def _daemon_line(d: DaemonView, now: float) -> tuple[str, str]:
    if not d.running:
        return "down", "telemetryd is not running (last known state below)"
    tick = "-" if d.last_tick_at is None else f"{max(0.0, now - d.last_tick_at):.1f} s ago"
    up = "-" if d.started_at is None else format_duration(now - d.started_at)
    return "", (f"running, pid {d.pid}, version {d.version}, up {up}, last tick {tick}; "
                f"{d.reports_pending} report(s) pending; delivery: {d.delivery}")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str,
           numeric: frozenset[int] = frozenset()) -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{escape(h)}</th>'
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(text: str, css: str = "") -> str:
    return f'<td class="{css}">{escape(text)}</td>' if css else f"<td>{escape(text)}</td>"


def trees_table(trees: Sequence[TreeRow], idle: Sequence[str]) -> str:
    """The watched trees, one row each; watches matching nothing get a row saying so."""
    rows = [[_td(t.watch), _td(str(t.pid), "num"), _td(t.name), _td(format_bytes(t.rss_bytes),
             "num"),
             _td("-" if t.rate_bytes_per_min is None else format_bytes(t.rate_bytes_per_min),
                 "num"),
             _td("-" if t.eta_seconds is None else format_duration(t.eta_seconds), "num"),
             _td(f"{t.cpu_percent:.0f} %", "num"), _td(t.state, f"state-{t.state}")]
            for t in trees]
    rows += [[_td(name), _td("-"), _td("no process matches now", "muted"), *[_td("")] * 5]
             for name in idle]
    return _table(("Watch", "PID", "Name", "RSS", "Growth/min", "To critical", "CPU", "State"),
                  rows, "No watches configured.", frozenset({1, 3, 4, 5, 6}))


def agents_table(agents: Sequence[AgentToday]) -> str:
    """Per agent figures for today."""
    def usd(value: float | None) -> str:
        return "-" if value is None else f"${value:.2f}"
    rows = [[_td(a.agent), _td(f"{a.tokens_today:,}", "num"), _td(usd(a.cost_today_usd), "num"),
             _td("-" if a.burn_usd_per_hour is None else f"{usd(a.burn_usd_per_hour)}/h", "num"),
             _td("-" if a.budget_used_percent is None else f"{a.budget_used_percent:.0f} %",
                 "num"), _td(str(a.sessions_today), "num")] for a in agents]
    return _table(("Agent", "Tokens", "Cost", "Burn", "Budget used", "Sessions"), rows,
                  "No agent telemetry today.", frozenset({1, 2, 3, 4, 5}))


def events_list(events: Sequence[RecentEvent]) -> str:
    """The recent events strip, newest first."""
    if not events:
        return '<p class="muted">Nothing happened lately.</p>'
    items = "".join(f'<li class="event-{e.kind}"><time>{_clock(e.at)}</time> '
                    f"{escape(e.text)}</li>" for e in events)
    return f'<ul class="events">{items}</ul>'


def reports_table(reports: Sequence[ReportRow]) -> str:
    """Reports with their state and, once delivered, a link to the event in Sentry."""
    rows = []
    for r in reports:
        link = (f'<td><a href="{escape(r.url)}" rel="noreferrer">open in Sentry</a></td>'
                if r.url else _td("-"))
        rows.append([_td(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at))),
                     _td(r.watch or "-"), _td(r.kind or "-"), _td(r.state, f"report-{r.state}"),
                     _td(r.title), link])
    return _table(("Written", "Watch", "Kind", "State", "Title", "Sentry"), rows,
                  "No crash reports.")


def tree_charts(view: StatusView, sources: PageSources, since: float, until: float,
                step: float) -> tuple[str, str]:
    """One RSS chart per tree (levels dashed, reports marked) and the cost chart."""
    histories = sources.history(since, until, step)
    levels = {t.watch: (t.rss_warning_bytes, t.rss_critical_bytes) for t in view.trees}
    figures = []
    for history in histories:
        key = history.key
        if not history.points:
            continue
        warning, critical = levels.get(key.watch, (None, None))
        lines = [Level(f"{label} {format_bytes(v)}", v, f"level-{label}") for label, v in
                 (("warning", warning), ("critical", critical)) if v]
        marks = [Marker(r.created_at, f"{r.kind} report ({r.state})") for r in view.reports
                 if r.watch == key.watch and r.created_at >= history.points[0].at - step]
        name = f"{key.watch} pid {key.pid}"
        svg = line_chart([Series(name, [(p.at, p.rss_bytes) for p in history.points])],
                         (since, until), levels=lines, markers=marks, y_label=format_bytes,
                         x_label=_clock, title=f"RSS of {name}")
        figures.append(f'<figure class="chart-box" id="tree-{escape(key.watch)}-{key.pid}-'
                       f'{int(key.started_at)}" data-drawn="server">{svg}'
                       f"<figcaption>{escape(name)}</figcaption></figure>")
    charts = "".join(figures) or '<p class="muted">No history yet.</p>'
    costs = sources.costs(since, until)
    if not costs:
        return f'<div class="charts" id="tree-charts">{charts}</div>', ""
    cost_svg = line_chart([Series(agent, cost_steps(points, since, until), f"line s{i % 5}")
                           for i, (agent, points) in enumerate(sorted(costs.items()))],
                          (since, until), y_label=lambda v: f"${v:.2f}", x_label=_clock,
                          title="Cost per hour by agent")
    cost = (f'<figure class="chart-box" id="cost-chart" data-drawn="server">{cost_svg}'
            "<figcaption>Cost per hour, by agent (USD)</figcaption></figure>")
    return f'<div class="charts" id="tree-charts">{charts}</div>', cost


def render_page(sources: PageSources, query: str) -> Reply:
    """The whole page for ``GET /?range=...``."""
    now = sources.clock()
    snapshot = sources.snapshot()
    view = status_view(snapshot, sources.running(), now, sources.reports(), sources.event_url)
    win = window(query, now, view.daemon.interval_seconds,
                 sources.earliest(now - RANGES_SECONDS["24h"]))
    charts, cost = tree_charts(view, sources, win.since, win.until, win.step_seconds)
    css_class, line = _daemon_line(view.daemon, now)
    ranges = " ".join(
        f'<a href="/?range={name}"{" class=current" if name == win.name else ""}>{name}</a>'
        for name in RANGES_SECONDS)
    html = Template(_asset("templates", "page.html")).substitute(
        refresh=REFRESH_SECONDS, host_state="" if view.daemon.running else "(not running)",
        css=_asset("static", "page.css"), js=_asset("static", "page.js"), range=win.name,
        daemon_class=css_class, daemon_line=escape(line), ranges=ranges,
        trees_table=trees_table(view.trees, view.idle_watches), tree_charts=charts,
        agents_table=agents_table(view.agents), cost_chart=cost,
        events_list=events_list(view.events), reports_table=reports_table(view.reports),
        generated=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
    )
    return Reply(200, (("Content-Type", "text/html; charset=utf-8"),
                       ("Cache-Control", "no-store"), ("Content-Security-Policy", _CSP),
                       ("X-Content-Type-Options", "nosniff")), html.encode())

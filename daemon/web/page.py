"""``GET /``: the status page, drawn on the server (tables and SVG charts) so it reads without
JavaScript; its script (static/page.js, inlined) then swaps in a freshly drawn page every 5 s.

It leads with now: the live trees, most pressing first, one chart each; ended trees fold
per watch into a ``<details>`` line. Tabs (now, agents, events and reports, daemon) are
``#anchors`` shown with CSS ``:target``, so they work without a script too.

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
from urllib.parse import parse_qs

from crash_reports.common.humanize import format_bytes, format_duration
from daemon.agents.store.today import AgentToday
from daemon.status.recent_events import RecentEvent
from daemon.status.view import (
    DaemonView,
    ReportRow,
    StatusView,
    TreeRow,
    also_waiting,
    cost_steps,
    once_per_pid,
    status_view,
)
from daemon.web.page_daemon import daemon_tab
from daemon.web.page_sessions import sessions_table, steps_table
from daemon.web.page_trees import (
    ended_by_watch,
    ended_section,
    live_charts,
    live_first,
    local_clock,
    time_caption,
)
from daemon.web.sources import (
    RANGES_SECONDS,
    PageSources,
    Reply,
    live_histories,
    other_spans,
    window,
)
from daemon.web.svg import Axes, Series, stacked_chart

REFRESH_SECONDS = 10
MAX_CHARTS = 24  # the most pressing live trees get a chart; the table lists every one
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'")


@cache
def _asset(folder: str, name: str) -> str:
    return (resources.files("daemon.web") / folder / name).read_text(encoding="utf-8")


def _daemon_line(d: DaemonView, now: float) -> tuple[str, str]:
    if not d.running:
        return "down", "telemetryd is not running (last known state below)"
    tick = "-" if d.last_tick_at is None else f"{max(0.0, now - d.last_tick_at):.1f} s ago"
    up = "-" if d.started_at is None else format_duration(now - d.started_at)
    others = also_waiting(d)
    return "", (f"running, pid {d.pid}, version {d.version}, up {up}, last tick {tick}; "
                f"{d.reports_pending} crash report(s) pending; delivery: {d.delivery}"
                + (f" ({others})" if others else ""))


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
    items = "".join(f'<li class="event-{e.kind}"><time>{local_clock(e.at)}</time> '
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


def cost_chart(sources: PageSources, since: float, until: float) -> str:
    """Cost per hour, stacked by agent, with a legend (empty when no agent has a cost)."""
    costs = sources.costs(since, until)
    if not costs:
        return ""
    hours = sorted({start for points in costs.values() for start, _ in points})
    series = []
    for i, (agent, points) in enumerate(sorted(costs.items())):
        per_hour = dict(points)
        steps = cost_steps([(h, per_hour.get(h, 0.0)) for h in hours], since, until)
        series.append(Series(agent, steps, f"area s{i % 5}"))
    svg = stacked_chart(series, (since, until),
                        Axes(lambda v: f"${v:.2f}", local_clock, "USD per hour",
                             time_caption()), title="Cost per hour, stacked by agent")
    return (f'<figure class="chart-box" id="cost-chart" data-drawn="server">{svg}'
            "<figcaption>Cost per hour, stacked by agent (USD)</figcaption></figure>")


def tree_sections(view: StatusView, sources: PageSources, since: float, until: float,
                  step: float) -> tuple[str, str]:
    """The live trees' charts and the ended trees folded per watch."""
    live_rows = once_per_pid(live_first([t for t in view.trees if t.state != "orphaned"]))
    live = {(t.watch, t.pid) for t in view.trees}
    charted = live_rows[:MAX_CHARTS]
    histories = live_histories(sources, since, until, step, {(t.watch, t.pid) for t in charted})
    charts = live_charts(charted, histories, view.reports, since, until, step)
    if len(live_rows) > len(charted):
        charts += (f'<p class="muted" id="more-live">{len(live_rows) - len(charted)} more live '
                   "trees, less pressing: see the table above.</p>")
    spans = other_spans(sources, since, until, step, live)
    ended = ended_section(ended_by_watch(spans, live, view.reports, step), view.reports, step)
    return f'<div class="charts" id="tree-charts">{charts}</div>', ended


def reports_heading(view: StatusView) -> str:
    """Say how the list relates to the pending count (summaries are not crash reports)."""
    shown = len(view.reports)
    pending = view.daemon.reports_pending
    others = also_waiting(view.daemon)
    return (f"{shown} crash report(s) listed; {pending} pending delivery"
            + (f"; also waiting, not crash reports and not listed here: {others}"
               if others else ""))


def sessions_section(sources: PageSources, view: StatusView, now: float, query: str,
                     range_name: str) -> str:
    """One row per recent agent session; the one chosen by ``?session=agent/id`` with steps."""
    chosen = next(iter(parse_qs(query).get("session") or ()), None)
    html = sessions_table(sources.sessions(now), view.trees, view.agents, now,
                          chosen, range_name)
    if chosen and "/" in chosen:
        agent, session_id = chosen.split("/", 1)
        html += steps_table(chosen, sources.session_steps(agent, session_id))
    return html


def render_page(sources: PageSources, query: str) -> Reply:
    """The whole page for ``GET /?range=...``."""
    now = sources.clock()
    snapshot = sources.snapshot()
    view = status_view(snapshot, sources.running(), now, sources.reports(), sources.event_url)
    win = window(query, now, view.daemon.interval_seconds,
                 sources.earliest(now - RANGES_SECONDS["24h"]))
    charts, ended = tree_sections(view, sources, win.since, win.until, win.step_seconds)
    last_tick = view.daemon.last_tick_seconds
    css_class, line = _daemon_line(view.daemon, now)
    ranges = " ".join(
        f'<a href="/?range={name}"{" class=current" if name == win.name else ""}>{name}</a>'
        for name in RANGES_SECONDS)
    html = Template(_asset("templates", "page.html")).substitute(
        refresh=REFRESH_SECONDS, host_state="" if view.daemon.running else "(not running)",
        css=_asset("static", "page.css"), js=_asset("static", "page.js"), range=win.name,
        daemon_class=css_class, daemon_line=escape(line), ranges=ranges,
        trees_table=trees_table(once_per_pid(live_first(view.trees)), view.idle_watches),
        tree_charts=charts, ended_trees=ended, agents_table=agents_table(view.agents),
        cost_chart=cost_chart(sources, win.since, win.until),
        daemon_tab=daemon_tab(sources.daemon_hours(now - RANGES_SECONDS["24h"]),
                              now - RANGES_SECONDS["24h"], now, last_tick),
        reports_heading=escape(reports_heading(view)),
        sessions=sessions_section(sources, view, now, query, win.name),
        events_list=events_list(view.events), reports_table=reports_table(view.reports),
        generated=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
    )
    return Reply(200, (("Content-Type", "text/html; charset=utf-8"),
                       ("Cache-Control", "no-store"), ("Content-Security-Policy", _CSP),
                       ("X-Content-Type-Options", "nosniff")), html.encode())

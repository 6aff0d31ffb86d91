"""The views built from a status snapshot: rows, reports with Sentry links, page HTML, API."""

from __future__ import annotations

import json
from dataclasses import replace

from crash_reports.spool.records import SpoolEntry
from daemon.agents.store.today import AgentToday
from daemon.stats.history import HistoryPoint, TreeHistory, TreeKey
from daemon.status.recent_events import EventKind, RecentEvent
from daemon.status.snapshot import FlushStatus, ReportCounts, StatusSnapshot, WatchStatus
from daemon.status.view import status_view
from daemon.web.api import api_history, api_status
from daemon.web.page import render_page
from daemon.web.sources import PageSources
from daemon.web.status_routes import serve_page
from tests.support.snapshots import process, watch, zombie
from tests.support.snapshots import snapshot as base

NOW = 1_800_000_000.0


def snapshot() -> StatusSnapshot:
    """A snapshot with one leaking tree, an idle watch, a zombie, an agent and events."""
    leaking = process(42, rss_bytes=150 << 20, cpu_percent=12.5, state="warning",
                      rate=float(1 << 20), eta=3000.0, name="node", create_time=NOW - 500)
    return replace(
        base([WatchStatus("claude", (leaking, zombie(43)), rss_warning_bytes=100 << 20,
                          rss_critical_bytes=200 << 20),
              watch("<idle>")], now=NOW, interval=2.0,
             reports=ReportCounts(pending=1), flush=FlushStatus(True, last_result="ok")),
        agents=(AgentToday("claude-code", 1200, 1.5, 0.5, 2, 7.5),),
        events=(RecentEvent(NOW - 30, EventKind.WARNING, "claude pid 42: rss warning"),),
    )


def entry(report_id: str, state: str, kind: str | None = "rss_critical") -> SpoolEntry:
    """A spool entry as the spool lists it."""
    return SpoolEntry(id=report_id, state=state, created_at=NOW - 100,  # type: ignore[arg-type]
                      title=f"claude pid 42: report {report_id}", watch="claude", kind=kind)


def sources() -> PageSources:
    """Sources over fixed data."""
    history = [TreeHistory(TreeKey("claude", 42, NOW - 500),
                           tuple(HistoryPoint(NOW - 300 + i * 10, (100 + i) << 20, 5.0)
                                 for i in range(30)))]
    return PageSources(
        snapshot=snapshot, running=lambda: True,
        history=lambda since, until, step: history,
        reports=lambda: [entry("aa", "delivered"), entry("bb", "pending"),
                         entry("cc", "delivered", kind=None)],
        costs=lambda since, until: {"claude-code": [(NOW - 3600, 1.0), (NOW, 0.5)]},
        event_url=lambda event_id: f"https://sentry.example/issues/?query={event_id}",
        earliest=lambda since: NOW - 300, clock=lambda: NOW,
    )


def test_status_view_rows_reports_and_events() -> None:
    """Zombies are left out, idle watches named, only delivered reports link, stats skipped."""
    src = sources()
    view = status_view(snapshot(), True, NOW, src.reports(), src.event_url)
    assert [t.pid for t in view.trees] == [42] and view.idle_watches == ("<idle>",)
    assert view.trees[0].rss_critical_bytes == 200 << 20
    assert [(r.id, r.url is not None) for r in view.reports] == [("aa", True), ("bb", False)]
    assert [e.text for e in view.events] == ["claude pid 42: rss warning"]
    assert view.agents[0].budget_used_percent == 7.5


def test_page_escapes_names_and_draws_levels_and_markers() -> None:
    """The HTML escapes watch names, has both level lines, the report mark and the Sentry link."""
    reply = render_page(sources(), "range=15m")
    html = reply.body.decode()
    assert reply.status == 200 and dict(reply.headers)["Content-Type"].startswith("text/html")
    assert "&lt;idle&gt;" in html and "<idle>" not in html
    # 100-129 MiB of data: warning (100 MiB) is in reach, critical (200 MiB) is an arrow
    assert 'class="level-warning"' in html and 'class="beyond level-critical"' in html
    assert html.count('class="marker"') == 2  # one per report of the watch in the window
    assert 'href="https://sentry.example/issues/?query=aa"' in html
    assert "claude-code" in html and "$1.50" in html
    assert "default-src 'none'" in dict(reply.headers)["Content-Security-Policy"]


def test_api_documents_are_json_with_the_documented_keys() -> None:
    """/api/status and /api/history parse and hold what docs/views.md documents."""
    status = json.loads(api_status(sources()).body)
    assert set(status) == {"generated_at", "daemon", "trees", "idle_watches", "agents",
                           "events", "reports"}
    history = json.loads(api_history(sources(), "range=24h").body)
    assert set(history) == {"since", "until", "step_seconds", "trees", "agents", "range"}
    assert history["since"] == NOW - 300  # the window starts at the oldest point
    [tree] = history["trees"]
    assert len(tree["points"]) == 30 and tree["rss_warning_bytes"] == 100 << 20


def test_a_failing_source_gives_a_500_not_a_dropped_connection() -> None:
    """A view whose source raises answers 500; a path that is not ours answers None."""
    broken = PageSources(snapshot=lambda: 1 / 0, running=lambda: True,  # type: ignore[arg-type,return-value]
                         history=lambda a, b, c: [], reports=list, costs=lambda a, b: {},
                         event_url=lambda e: None)
    reply = serve_page(broken, "/api/status", "")
    assert reply is not None and reply.status == 500
    assert serve_page(broken, "/metrics", "") is None

"""The page leads with now: live trees first, ended folded, own-scaled charts, own reports."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from crash_reports.spool.records import SpoolEntry
from daemon.agents.store.session_list import SessionStep, SessionSummary
from daemon.stats.history import HistoryPoint, TreeHistory, TreeKey
from daemon.status.snapshot import WatchStatus
from daemon.web.api import api_history
from daemon.web.page import render_page
from daemon.web.page_daemon import DaemonHour
from daemon.web.sources import PageSources
from tests.support.snapshots import process
from tests.support.snapshots import snapshot as base

NOW = 1_800_000_000.0
MiB = 1 << 20
GiB = 1 << 30


def history(pid: int, rss_mib: int, start: float, end: float) -> TreeHistory:
    """A tree's points, 10 s apart, growing by a MiB a point."""
    count = max(1, int((end - start) // 10))
    return TreeHistory(TreeKey("agents", pid, start),
                       tuple(HistoryPoint(start + i * 10, (rss_mib + i) * MiB, 3.0)
                             for i in range(count)))


def report(pid: int, at: float, kind: str = "rss_critical") -> SpoolEntry:
    """A report about one pid of the watch, as the spool lists it."""
    return SpoolEntry(id=f"r{pid}", state="pending", created_at=at,  # type: ignore[arg-type]
                      title=f"agents pid {pid}: RSS crossed critical", watch="agents", kind=kind)


def sources() -> PageSources:
    """Three live trees (one critical) and ten ended ones; reports for one live, one ended."""
    live = [process(1, 250 * MiB, state="ok", create_time=NOW - 600),
            process(2, 300 * MiB, state="critical", create_time=NOW - 600),
            process(3, 280 * MiB, state="ok", create_time=NOW - 600)]
    snap = base([WatchStatus("agents", tuple(live), rss_warning_bytes=270 * MiB,
                             rss_critical_bytes=int(6.5 * GiB))], now=NOW, interval=2.0)
    trees = [history(1, 250, NOW - 600, NOW), history(2, 240, NOW - 600, NOW),
             history(3, 280, NOW - 600, NOW)]
    trees += [history(100 + n, 100 + n, NOW - 3000, NOW - 2000) for n in range(10)]
    return PageSources(
        snapshot=lambda: snap, running=lambda: True,
        history=lambda since, until, step: trees,
        reports=lambda: [report(2, NOW - 100), report(105, NOW - 2100)],
        costs=lambda since, until: {"aider": [(NOW - 3600, 1.0)],
                                    "claude-code": [(NOW - 3600, 2.0)]},
        event_url=lambda _id: None, earliest=lambda since: NOW - 3000, clock=lambda: NOW,
        daemon_hours=lambda since: [DaemonHour(NOW - 7200, 3600, 0.002, 0.01, 40 * MiB),
                                    DaemonHour(NOW - 3600, 3600, 0.003, 0.02, 42 * MiB)],
    )


def figures(html: str) -> dict[int, str]:
    """Each live tree's figure by pid, in page order."""
    found = re.findall(r'(<figure class="chart-box live" id="tree-agents-(\d+)-.*?</figure>)',
                       html, flags=re.S)
    return {int(pid): figure for figure, pid in found}


def test_live_trees_come_first_most_pressing_first_and_only_they_get_charts() -> None:
    """The critical tree leads; ended trees have no chart of their own."""
    html = render_page(sources(), "range=1h").body.decode()
    assert list(figures(html)) == [2, 3, 1]
    assert html.count("<figure class=\"chart-box live\"") == 3
    assert html.index('id="tree-charts"') < html.index('id="ended"')


def test_ended_trees_fold_into_one_details_line_per_watch() -> None:
    """Ten ended trees: one <details>, with count, peak and how they ended."""
    html = render_page(sources(), "range=1h").body.decode()
    [details] = re.findall(r'<details class="ended".*?</details>', html, flags=re.S)
    summary = re.search(r"<summary>(.*?)</summary>", details, flags=re.S)
    assert summary is not None
    text = re.sub(r"<[^>]+>", "", summary.group(1))
    assert text.startswith("agents: 10 ended, peak")
    assert "1 after rss_critical report" in text and "9 exited, no report" in text
    assert details.count("<tr>") == 11  # header + ten trees, hidden until opened


def test_each_chart_scales_to_its_own_data_and_shows_far_levels_as_arrows() -> None:
    """A ~300 MiB tree under a 6.5 GiB critical level: the axis fits the data, not the level."""
    html = render_page(sources(), "range=1h").body.decode()
    for pid, figure in figures(html).items():
        top = float(re.search(r'data-top="(\d+)"', figure).group(1))  # type: ignore[union-attr]
        assert 250 * MiB < top < 1.5 * 1.1 * 340 * MiB, (pid, top)
        assert "beyond level-critical" in figure and "6.5 GiB" in figure
        assert 'class="level-warning"' in figure  # 270 MiB is within reach


def test_report_marks_are_on_their_own_tree_only() -> None:
    """The report about pid 2 marks pid 2's chart and no other of the same watch."""
    html = render_page(sources(), "range=1h").body.decode()
    marks = {pid: figure.count('class="marker"') for pid, figure in figures(html).items()}
    assert marks == {2: 1, 3: 0, 1: 0}


def test_charts_have_legends_units_local_time_and_costs_stack() -> None:
    """Every chart has a legend and a local-time caption; costs are stacked areas per agent."""
    html = render_page(sources(), "range=1h").body.decode()
    charts = re.findall(r"<svg class=\"chart\".*?</svg>", html, flags=re.S)
    assert len(charts) == 3 + 1 + 2  # trees, cost, daemon tick and RSS
    assert all('class="legend"' in c and "local time" in c for c in charts)
    cost = re.search(r'<figure class="chart-box" id="cost-chart".*?</figure>', html, re.S)
    assert cost is not None
    assert cost.group(0).count("<polygon") == 2
    assert 'data-top="3"' in cost.group(0)  # $1 + $2 stacked
    assert ">aider<" in cost.group(0) and ">claude-code<" in cost.group(0)
    daemon = html[html.index('id="daemon-tab"'):]
    assert 'id="daemon-tick"' in daemon and 'id="daemon-rss"' in daemon and "ms" in daemon
    assert '<a href="#daemon-tab">' in html and "https://" not in html.split("<footer>")[0]


def test_sessions_tab_lists_sessions_and_shows_a_chosen_ones_steps() -> None:
    """One row a session with its figures and linked tree; ?session= adds its last steps."""
    sessions = [SessionSummary("claude-code", "s-1", "2.1.0", ("claude-opus",), NOW - 1800,
                               NOW - 10, 2, 4, 5000, 0.5, 3, 1),
                SessionSummary("codex", "s-2", "0.9", ("gpt",), NOW - 900, NOW - 60, None, 2,
                               100, None, 1, 0)]
    steps = [SessionStep(NOW - 10, "tool_call", "Bash", False, "failed", 12.0)]
    src = replace(sources(), sessions=lambda until: sessions,
                  session_steps=lambda agent, sid: steps if (agent, sid) == ("claude-code",
                                                                             "s-1") else [])
    html = render_page(src, "range=1h").body.decode()
    table = html[html.index('id="sessions-table"'):html.index("</table>",
                                                             html.index('id="sessions-table"'))]
    rows = re.findall(r"<tr id=\"session-.*?</tr>", table, flags=re.S)
    assert len(rows) == 2
    first = re.sub(r"<[^>]+>", "|", rows[0])
    for part in ("claude-code", "2.1.0", "claude-opus", "5,000", "$0.5000", "$1.01/h",
                 "agents pid 2: 300.0 MiB"):
        assert part in first, (part, first)
    assert "session-steps" not in html
    chosen = render_page(src, "range=1h&session=claude-code%2Fs-1").body.decode()
    assert 'class="selected"' in chosen and "Last steps of claude-code/s-1" in chosen
    assert "Bash" in chosen and "failed" in chosen and "12 ms" in chosen


def test_only_the_most_pressing_live_trees_get_a_chart() -> None:
    """Thirty live trees: the 24 most pressing are charted, the table lists all thirty."""
    procs = tuple(process(500 + n, (100 + n) * MiB, state="critical" if n == 29 else "ok")
                  for n in range(30))
    snap = base([WatchStatus("agents", procs, rss_warning_bytes=GiB, rss_critical_bytes=2 * GiB)],
                now=NOW, interval=2.0)
    asked: list[set[tuple[str, int]]] = []

    def history_of(since: float, until: float, step: float,
                   only: object) -> list[TreeHistory]:
        asked.append(set(only))  # type: ignore[call-overload]
        return []
    src = replace(sources(), snapshot=lambda: snap, history_of=history_of)
    html = render_page(src, "range=1h").body.decode()
    pids = list(figures(html))
    assert len(pids) == 24 and pids[0] == 529 and "6 more live trees" in html
    assert asked == [{("agents", pid) for pid in pids}]  # only the charted trees' points read
    assert html.count("<tr><td>agents</td>") == 30


def test_api_history_marks_a_report_on_its_own_tree_only() -> None:
    """/api/history: the report about pid 2 is on pid 2, not on its watch's other trees."""
    doc = json.loads(api_history(sources(), "range=1h").body)
    marks = {t["pid"]: len(t["reports"]) for t in doc["trees"]}
    assert marks[2] == 1 and marks[1] == marks[3] == 0
    assert marks[105] == 1 and sum(marks.values()) == 2


def test_a_process_under_two_watches_is_listed_and_charted_once() -> None:
    """A wrapped process matched by two watches: one table row, one chart."""
    twice = process(7, 90 * MiB, state="ok")
    snap = base([WatchStatus("agents", (twice,)), WatchStatus("wrapped", (twice,))], now=NOW)
    html = render_page(replace(sources(), snapshot=lambda: snap), "range=1h").body.decode()
    assert html.count("<td class=\"num\">7</td>") == 1
    assert len(re.findall(r'<figure class="chart-box live" id="tree-[a-z]+-7-', html)) == 1

"""The status page and its JSON API on a real daemon watching a real leak, in real Chromium."""

from __future__ import annotations

import json
import re
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_agent_telemetry import otlp_port, send_claude_code_telemetry
from tests.support.cdp import Browser
from tests.support.views import (
    WatchedLeak,
    artifact_dir,
    get,
    keep_for_docs,
    watched_leak,
)
from tests.support.waiting import wait_for

# One worker builds the module's scene once; spread over two, each built its own.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("status-page")]


@pytest.fixture(scope="module")
def leak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchedLeak]:
    """A daemon whose agent grew past warning and critical (one report), with agent cost."""
    tmp = tmp_path_factory.mktemp("page")
    with watched_leak(tmp) as running:
        send_claude_code_telemetry(otlp_port(running.config), running.agent.pid)
        def points() -> int:
            trees = api(running, "/api/history?range=15m")["trees"]
            return len(trees[0]["points"]) if trees else 0

        def rss() -> int:
            return sum(t["rss_bytes"] for t in api(running, "/api/status")["trees"])

        # A baseline of a few seconds first, then a leak in steps each seen by a tick.
        wait_for(lambda: points() >= 3, timeout=60, message="baseline history")
        for _ in range(4):
            before = rss()
            running.agent.command("grow 20")
            wait_for(lambda before=before: rss() > before, timeout=60, message="RSS grew")
        running.daemon.wait_event("report.written", pid=running.agent.pid)
        wait_for(lambda: api(running, "/api/status")["agents"] or None, timeout=60,
                 message="agent figures published")
        yield running


def api(leak: WatchedLeak, path: str) -> dict:
    """GET a JSON document from the daemon's listener."""
    return json.loads(get(leak.base_url + path))  # type: ignore[no-any-return]


def test_api_status_lists_the_tree_its_report_events_and_agents(leak: WatchedLeak) -> None:
    """/api/status: the leaking tree at critical, its report pending, events, agent cost."""
    doc = api(leak, "/api/status")
    assert doc["daemon"]["running"] is True
    [tree] = [t for t in doc["trees"] if t["pid"] == leak.agent.pid]
    assert tree["watch"] == "leaky" and tree["state"] == "critical"
    assert tree["rss_critical_bytes"] > tree["rss_warning_bytes"] > 0
    [report] = doc["reports"]
    assert report["kind"] == "rss_critical" and report["state"] == "pending"
    assert report["url"] is None  # only a delivered report links to Sentry
    kinds = [e["kind"] for e in doc["events"]]
    assert {"critical", "report_written"} <= set(kinds)  # a fast leak may skip warning
    [agent] = doc["agents"]
    assert agent["agent"] == "claude-code" and agent["cost_today_usd"] == pytest.approx(0.0912)


def test_api_history_has_points_levels_and_the_report_marker(leak: WatchedLeak) -> None:
    """/api/history: RSS points rising, the levels, the report where it was written, cost."""
    doc = api(leak, "/api/history?range=15m")
    assert doc["range"] == "15m"
    [tree] = [t for t in doc["trees"] if t["pid"] == leak.agent.pid]
    rss = [p[1] for p in tree["points"]]
    assert len(rss) >= 2 and max(rss) > rss[0]
    assert max(rss) >= tree["rss_critical_bytes"]
    [marker] = tree["reports"]
    assert tree["points"][0][0] - doc["step_seconds"] <= marker["at"]
    assert [a["agent"] for a in doc["agents"]] == ["claude-code"]
    assert api(leak, "/api/history?range=bogus")["range"] == "1h"


def test_page_without_javascript_lists_the_watches(leak: WatchedLeak, tmp_path: Path) -> None:
    """Chromium with scripts off: the table lists the watch, the server-drawn chart is there."""
    with Browser(tmp_path / "profile") as browser:
        browser.open(leak.base_url + "/", scripts=False)
        rows = browser.evaluate(
            "[...document.querySelectorAll('#watches tbody tr')].map(r => r.innerText)")
        drawn = browser.evaluate(
            "[...document.querySelectorAll('#tree-charts figure')].map(f => f.dataset.drawn)")
        browser.screenshot(artifact_dir(tmp_path) / "status-page-no-js.png")
    assert any("leaky" in row and str(leak.agent.pid) in row and "critical" in row
               for row in rows), rows
    assert drawn and set(drawn) == {"server"}
    html = get(leak.base_url + "/").decode()
    assert re.search(r'<polyline class="line"[^>]*points="[\d., ]+"', html)
    assert "https://" not in html.split("<footer>")[0]  # nothing loaded from the network


def test_page_draws_its_charts_from_the_api_in_chromium(leak: WatchedLeak,
                                                        tmp_path: Path) -> None:
    """With scripts on, the charts are redrawn from /api/history: line, levels, report mark."""
    with Browser(tmp_path / "profile") as browser:
        browser.open(leak.base_url + "/")
        browser.wait_true("document.querySelector('#charts[data-drawn=js]') !== null")
        figure = f"figure[id^='tree-leaky-{leak.agent.pid}-'][data-drawn=js]"
        points = browser.evaluate(
            f"document.querySelector(\"{figure} polyline\").getAttribute('points')")
        levels = browser.evaluate(
            f"document.querySelectorAll(\"{figure} line[class^=level-]\").length")
        marks = browser.evaluate(f"document.querySelectorAll(\"{figure} line.marker\").length")
        cost = browser.evaluate("document.querySelector('#cost-chart').dataset.drawn")
        error = browser.evaluate("document.body.dataset.error || ''")
        shot = browser.screenshot(artifact_dir(tmp_path) / "status-page.png")
    assert len(points.split()) >= 2
    assert levels == 2 and marks == 1 and cost == "js" and error == ""
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep_for_docs(shot)


def test_unknown_paths_and_metrics_still_answer(leak: WatchedLeak) -> None:
    """/metrics is unchanged next to the page; other paths are not the page."""
    assert b"telemetryd_watch_rss_bytes" in get(leak.base_url + "/metrics")
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(leak.base_url + "/api/nope")
    assert refused.value.code == 404

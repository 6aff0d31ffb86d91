"""The look of the page and of `top` on a busy scene: a live daemon watching 5 live trees
after 100 ended ones, one past critical with its report, two agents' captured sessions.

Chromium (headless) reads the page; tmux at 80x24 and 200x50 runs `top`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text

from tests.e2e.test_top_tmux import SVG_FORMAT, Terminal, top_command
from tests.support.cdp import Browser
from tests.support.look_scene import ENDED, WATCH, Scene, look_scene
from tests.support.views import artifact_dir, keep_for_docs

# One worker builds the module's scene once; spread over two, each built its own.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("look")]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """The busy scene, shared by the tests of this module."""
    with look_scene(tmp_path_factory.mktemp("look")) as running:
        yield running


FIGURES = """[...document.querySelectorAll('#tree-charts figure.live')].map(f => ({
  id: f.id, state: f.dataset.state, top: +f.querySelector('svg').dataset.top,
  marks: f.querySelectorAll('line.marker').length,
  legend: f.querySelectorAll('g.legend text').length,
  caption: f.querySelector('svg').textContent.includes('local time')}))"""


def test_page_leads_with_now_in_chromium(scene: Scene, tmp_path: Path) -> None:
    """Live trees first (critical leading), each axis fits its data, the report on its own
    tree, 100 ended trees folded in one closed line; shots of the tabs for the docs."""
    pids = {p.pid for p in scene.live} | {scene.leaker.pid}
    with Browser(tmp_path / "profile", width=1280, height=1000) as browser:
        browser.open(scene.base_url + "/?range=15m", scripts=False)
        figures = browser.evaluate(FIGURES)
        ended = browser.evaluate(
            "[...document.querySelectorAll('details.ended')].map(d => "
            "({summary: d.querySelector('summary').innerText, open: d.open, "
            "rows: d.querySelectorAll('tbody tr').length, "
            "shown: d.getBoundingClientRect().height}))")
        first_row = browser.evaluate("document.querySelector('#watches tbody tr').innerText")
        now = browser.screenshot(artifact_dir(tmp_path) / "look-page-now.png")
        history = scene.api("/api/history?range=15m")
        browser.open(scene.base_url + "/?range=1h#sessions", scripts=False)
        sessions = browser.evaluate(
            "[...document.querySelectorAll('#sessions-table tbody tr')].map(r => r.innerText)")
        visible = browser.evaluate(
            "getComputedStyle(document.getElementById('sessions')).display")
        hidden_now = browser.evaluate("getComputedStyle(document.getElementById('now')).display")
        claude = browser.evaluate("[...document.querySelectorAll('#sessions-table a')]"
                                  ".find(a => a.textContent === 'claude-code').href")
        browser.open(claude, scripts=False)
        steps = browser.evaluate(
            "[...document.querySelectorAll('#sessions tr.step-tool_call, #sessions "
            "tr.step-request')].map(r => r.innerText)")
        shot_sessions = browser.screenshot(artifact_dir(tmp_path) / "look-page-sessions.png")
        browser.open(scene.base_url + "/?range=6h#daemon-tab", scripts=False)
        daemon_charts = browser.evaluate(
            "document.querySelectorAll('#daemon-tab svg.chart').length")
        shot_daemon = browser.screenshot(artifact_dir(tmp_path) / "look-page-daemon.png")
    # live trees come first, the critical one leading; only live trees get a chart
    assert {int(f["id"].split("-")[-2]) for f in figures} == pids
    assert figures[0]["id"].startswith(f"tree-{WATCH}-{scene.leaker.pid}-")
    assert figures[0]["state"] == "critical" and str(scene.leaker.pid) in first_row
    # each chart's axis fits its own data (not the 200 MiB critical level)
    peaks = {t["pid"]: max(p[1] for p in t["points"]) for t in history["trees"]
             if t["pid"] in pids}
    for figure in figures:
        peak = peaks[int(figure["id"].split("-")[-2])]
        assert peak * 0.9 <= figure["top"] <= peak * 1.5 * 1.1 * 1.1, (figure, peak)
        assert figure["legend"] >= 1 and figure["caption"]
    # the report is marked on its own tree only
    assert [f["marks"] for f in figures] == [1, 0, 0, 0, 0]
    # ended trees are collapsed: one closed line for the watch
    [line] = ended
    assert f"{WATCH}: {ENDED} ended" in line["summary"] and not line["open"]
    assert line["rows"] == ENDED and line["shown"] < 60  # one line tall until opened
    # the sessions tab lists both agents' sessions with their figures
    assert visible == "block" and hidden_now == "none"
    agents = {row.split("\t")[0]: row for row in sessions}
    assert {"claude-code", "codex"} <= set(agents), sessions
    for row in agents.values():
        cells = row.split("\t")
        assert int(cells[5]) > 0 and int(cells[6].replace(",", "")) > 0  # requests, tokens
    # choosing a session shows its last requests and tool calls: names, outcomes, durations
    tools = [row.split("\t") for row in steps if "tool call" in row]
    assert {(t[2], t[3]) for t in tools} == {("Bash", "ok"), ("Read", "failed")}, steps
    assert all(t[4].endswith(" ms") for t in tools)
    assert any("request" in row and "claude-opus-4-8" in row for row in steps)
    assert daemon_charts == 2
    for shot in (now, shot_sessions, shot_daemon):
        keep_for_docs(shot)


def test_page_with_scripts_keeps_its_tabs_and_folds(scene: Scene, tmp_path: Path) -> None:
    """With scripts on, the page refreshes itself and an opened fold stays open."""
    with Browser(tmp_path / "profile", width=1280, height=1000) as browser:
        browser.open(scene.base_url + "/?range=15m")
        browser.evaluate("document.querySelector('details.ended').open = true")
        browser.wait_true("document.querySelector('#charts[data-drawn=js]') !== null")
        still_open = browser.evaluate("document.querySelector('details.ended').open")
        error = browser.evaluate("document.body.dataset.error || ''")
    assert still_open is True and error == ""


def sized_terminal(tmp: Path, width: int, height: int) -> Terminal:
    """A tmux terminal resized to ``width`` x ``height``."""
    term = Terminal(tmp)
    term.tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))
    assert term.tmux("display-message", "-p", "-t", "t",
                     "#{window_width}x#{window_height}").strip() == f"{width}x{height}"
    return term


def save_shot(term: Terminal, folder: Path, name: str, width: int, height: int) -> Path:
    """The pane with its colours as PNG (rich's SVG of the captured ANSI, drawn by Chromium)."""
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=width, force_terminal=True,
                          color_system="truecolor", file=sink)
        console.print(Text.from_ansi(term.screen(ansi=True).rstrip("\n")))
        svg = folder / f"{Path(name).stem}.svg"
        console.save_svg(str(svg), title="telemetryd top", code_format=SVG_FORMAT)
    with Browser(folder / "profile", width=width * 12 + 40, height=height * 22 + 80) as browser:
        browser.open(svg.as_uri())
        return browser.screenshot(folder / name)


def event_lines(screen: str) -> list[str]:
    """The lines of the events panel (between its title and the keys line)."""
    lines = screen.rstrip("\n").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Recent events"))
    return [line for line in lines[start + 1:] if re.match(r"\d\d:\d\d:\d\d ", line)]


def test_top_at_200_by_50_shows_whole_names_and_many_events(scene: Scene,
                                                            tmp_path: Path) -> None:
    """At 200x50: names whole, each process once, 20+ events, keys shown; sessions panel."""
    term = sized_terminal(tmp_path, 200, 50)
    try:
        term.type(top_command(scene.config))
        pids = [str(p.pid) for p in [*scene.live, scene.leaker]]
        screen = term.wait_screen(lambda s: all(f" {pid} " in s for pid in pids)
                                  and "Recent events" in s, "five trees on screen")
        rows = [line for line in screen.splitlines() if any(f" {pid} " in line for pid in pids)]
        assert len(rows) == 5  # each process once
        assert all(line.startswith(WATCH) and "…" not in line for line in rows), rows
        assert len(event_lines(screen)) >= 20, screen
        assert len(screen.splitlines()) <= 50
        keys = screen.rstrip("\n").splitlines()[-1]
        assert "1 trees" in keys and "2 sessions" in keys and "3 events" in keys
        keep_for_docs(save_shot(term, artifact_dir(tmp_path), "look-top-200x50.png", 200, 50))
        term.key("2")
        sessions = term.wait_screen(lambda s: "Agent sessions" in s and "codex" in s
                                    and "claude-code" in s, "sessions panel")
        assert "Last steps of" in sessions
        keep_for_docs(save_shot(term, artifact_dir(tmp_path), "look-top-sessions-200x50.png", 200,
                                50))
        term.key("q")
        term.wait_screen(lambda s: "q quit" not in s, "shell back")
        assert not term.alternate_screen()
    finally:
        term.close()


def test_top_at_80_by_24_fits_and_switches_panels(scene: Scene, tmp_path: Path) -> None:
    """At 80x24 every line fits; the events panel takes the whole screen on `3`."""
    term = sized_terminal(tmp_path, 80, 24)
    try:
        term.type(top_command(scene.config))
        screen = term.wait_screen(lambda s: str(scene.leaker.pid) in s and "q quit" in s,
                                  "top drawn")
        assert all(len(line) <= 80 for line in screen.splitlines())
        assert len(event_lines(screen)) >= 4
        keep_for_docs(save_shot(term, artifact_dir(tmp_path), "look-top-80x24.png", 80, 24))
        term.key("3")
        events = term.wait_screen(lambda s: "3 events*" in s, "events panel")
        lines = events.rstrip("\n").splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("Recent events"))
        assert sum(bool(re.match(r"\d\d:\d\d:\d\d ", line)) for line in lines[start:]) >= 18
        term.key("q")
        term.wait_screen(lambda s: "q quit" not in s, "shell back")
        assert not term.alternate_screen()
    finally:
        term.close()

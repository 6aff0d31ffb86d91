"""`telemetryd top` uses the terminal it has: wide names, tall events, panels, one row a pid."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from daemon.agents.store.session_list import SessionStep, SessionSummary
from daemon.cli.top.view import Panel, TopState, frame, on_key
from daemon.status.recent_events import EventKind, RecentEvent
from daemon.status.snapshot import WatchStatus
from daemon.status.view import StatusView, status_view
from tests.support.snapshots import NOW, process, snapshot

LONG_WATCH = "claude-code-sessions-on-this-host"
LONG_NAME = "claude-code-node-worker-with-a-long-name"
DEFAULT = TopState()


def view(trees: int = 5, events: int = 50) -> StatusView:
    """``trees`` live trees with long names, one pid also under a second watch, events."""
    procs = tuple(process(100 + p, (p + 1) << 28, name=LONG_NAME) for p in range(trees))
    snap = replace(snapshot([WatchStatus(LONG_WATCH, procs),
                             WatchStatus("wrapped", (process(100, 1 << 28, name=LONG_NAME),))],
                            now=NOW),
                   events=tuple(RecentEvent(NOW - n, EventKind.WARNING, f"event number {n}")
                                for n in range(events)))
    return status_view(snap, True, NOW)


def screen(v: StatusView, width: int, height: int, state: TopState = DEFAULT,
           sessions: tuple[SessionSummary, ...] = (),
           steps: tuple[SessionStep, ...] = ()) -> list[str]:
    """One frame's plain lines on a terminal ``width`` x ``height``."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, height=height, force_terminal=False,
                      color_system=None)
    console.print(frame(v, {}, state, NOW, height, None, width, sessions, steps))
    return buffer.getvalue().rstrip("\n").split("\n")


def test_names_are_not_cut_at_200_columns_and_fit_at_80() -> None:
    """Watch and process names are whole at 200 columns; at 80 every line still fits."""
    wide = screen(view(), 200, 50)
    rows = [line for line in wide if " 101 " in line]
    assert rows and LONG_WATCH in rows[0] and LONG_NAME in rows[0], rows
    assert all("…" not in line for line in wide if " 10" in line)
    narrow = screen(view(), 80, 24)
    assert len(narrow) <= 24 and max(len(line) for line in narrow) <= 80


def test_the_events_panel_grows_with_the_height() -> None:
    """At 50 rows at least 20 events show on the main screen; at 24 rows a few still do."""
    tall = screen(view(), 200, 50)
    assert len(tall) <= 50
    assert sum("event number" in line for line in tall) >= 20
    short = screen(view(), 80, 24)
    assert 4 <= sum("event number" in line for line in short) < 20


def test_a_process_listed_under_two_watches_appears_once() -> None:
    """pid 100 is in both watches' lists: one row."""
    lines = screen(view(), 200, 50)
    assert sum(" 100 " in line for line in lines) == 1


def test_keys_switch_panels_and_are_shown() -> None:
    """1/2/3 and Tab switch trees, sessions and events; the keys line names them."""
    state = on_key(TopState(), "3", [])
    assert state.panel is Panel.EVENTS
    events = screen(view(), 80, 24, state)
    assert sum("event number" in line for line in events) >= 18
    assert "1 trees" in events[-1] and "2 sessions" in events[-1] and "3 events*" in events[-1]
    sessions = (SessionSummary("claude-code", "sess-a", "2.1.0", ("claude-opus",), NOW - 600,
                               NOW - 5, 101, 3, 1000, 0.25, 4, 1),
                SessionSummary("codex", "sess-b", "0.9", ("gpt",), NOW - 900, NOW - 60, None, 1,
                               10, None, 0, 0))
    steps = (SessionStep(NOW - 5, "tool_call", "Bash", False, "failed", 12.0),
             SessionStep(NOW - 6, "request", "claude-opus", True, "ok", 800.0))
    lines = screen(view(), 200, 50, on_key(state, "2", []), sessions, steps)
    text = "\n".join(lines)
    assert "claude-code" in text and "2.1.0" in text and "$0.2500" in text and "$1.5" in text
    assert "codex" in text and "Last steps of claude-code/sess-a" in text
    assert any("tool call Bash failed 12 ms" in line for line in lines)
    assert any("512.0 MiB" in line for line in lines if "claude-code" in line)  # pid 101
    assert on_key(on_key(TopState(), "\t", []), "\t", []).panel is Panel.EVENTS

"""`telemetryd top`'s screen: fits 80x24, honours NO_COLOR, says when the daemon is down."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from daemon.agents.store.today import AgentToday
from daemon.cli.top.command import read_published
from daemon.cli.top.view import SortKey, TopState, frame, on_key, sort_rows
from daemon.runtime.paths import StatePaths
from daemon.status.recent_events import EventKind, RecentEvent
from daemon.status.snapshot import WatchStatus
from daemon.status.status_file import write_snapshot
from daemon.status.view import status_view
from tests.support.snapshots import NOW, process, snapshot, watch

COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7]|38;)[0-9;]*m")


def busy_view():  # type: ignore[no-untyped-def]
    """Thirty trees in three watches, three agents and many events."""
    watches = [WatchStatus(f"watch-with-a-long-name-{w}",
                           tuple(process(w * 100 + p, (p + 1) << 28, 10.0 * p,
                                         state=("ok", "warning", "critical", "orphaned")[p % 4],
                                         rate=float(p << 20), eta=600.0 * (p + 1))
                                 for p in range(10)), rss_warning_bytes=1 << 30,
                           rss_critical_bytes=2 << 30) for w in range(3)]
    snap = replace(snapshot([*watches, watch("idle")], now=NOW),
                   agents=tuple(AgentToday(f"agent-{a}", 10**6 * a, 12.5 * a, 1.5, a, 95.0)
                                for a in range(3)),
                   events=tuple(RecentEvent(NOW - n, EventKind.CRITICAL, "x" * 120)
                                for n in range(10)))
    return status_view(snap, True, NOW)


DEFAULT = TopState()


def render(view, state=DEFAULT, colour=True, problem=None) -> str:  # type: ignore[no-untyped-def]
    """One frame as an 80x24 terminal would get it."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, height=24, force_terminal=True,
                      color_system="truecolor", no_color=not colour)
    console.print(frame(view, {}, state, NOW, 24, problem))
    return buffer.getvalue()


def test_a_busy_screen_fits_80_by_24() -> None:
    """Thirty trees, three agents and long events still fit 80 columns and 24 lines."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", render(busy_view()))
    lines = plain.rstrip("\n").split("\n")
    assert len(lines) <= 24, len(lines)
    assert max(len(line) for line in lines) <= 80
    assert "q quit" in lines[-1]


def test_no_color_leaves_out_colours() -> None:
    """NO_COLOR (rich's no_color) drops every colour code; with colour there are some."""
    assert COLOUR.search(render(busy_view()))
    assert not COLOUR.search(render(busy_view(), colour=False))


def test_keys_sort_and_filter_the_rows() -> None:
    """`s` cycles the order; `f` keeps one watch; `q` asks to quit."""
    view = busy_view()
    by_eta = sort_rows(view.trees, SortKey.ETA)
    assert [r.eta_seconds for r in by_eta][:2] == [600.0, 600.0]
    state = on_key(TopState(), "f", ["watch-with-a-long-name-1", "idle"])
    assert state.watch == "idle"
    state = on_key(state, "f", ["idle", "watch-with-a-long-name-1"])
    assert state.watch == "watch-with-a-long-name-1"
    screen = render(view, state)
    assert " 109 " in screen and " 209 " not in screen and " 9 " not in screen


def test_a_missing_or_stopped_daemon_is_said_plainly(tmp_path: Path) -> None:
    """No status file, or a snapshot whose daemon is gone: `not running` and why."""
    paths = StatePaths(tmp_path)
    published = read_published(paths, NOW)
    assert not published.view.daemon.running and "no status file" in (published.problem or "")
    write_snapshot(paths.status, replace(snapshot([watch("w", process(1))], now=NOW), pid=1,
                                         stopped=True))
    published = read_published(paths, NOW)
    assert published.problem == "telemetryd is not running"
    screen = render(published.view, problem=published.problem)
    assert "telemetryd is not running" in screen

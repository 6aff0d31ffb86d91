"""The page's "daemon" tab: the daemon's own tick time and RSS per hour, from the stats file.

The hourly rows are the ones ``telemetryd stats`` reads (``daemon_hour``); read-only, one
connection per look.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

from crash_reports.common.humanize import format_bytes
from daemon.stats.history import connect
from daemon.web.page_trees import local_clock, time_caption
from daemon.web.svg import Axes, Series, line_chart

HOUR_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class DaemonHour:
    """One hour of the daemon's own figures."""

    hour: float
    ticks: int
    tick_mean_seconds: float
    tick_max_seconds: float
    rss_max_bytes: int


DaemonHours = Callable[[float], list[DaemonHour]]


def daemon_hours_from_file(path: Path) -> DaemonHours:
    """The hours since a time from the stats database (empty when it has none yet)."""

    def read(since: float) -> list[DaemonHour]:
        if not path.exists():
            return []
        try:
            with contextlib.closing(connect(path, read_only=True)) as conn:
                rows = conn.execute(
                    "SELECT hour, ticks, tick_sum_seconds, tick_max_seconds, own_rss_max_bytes "
                    "FROM daemon_hour WHERE hour >= ? ORDER BY hour",
                    (int(since // HOUR_SECONDS * HOUR_SECONDS),)).fetchall()
        except sqlite3.OperationalError:
            return []
        return [DaemonHour(float(h), int(n), float(s) / n if n else 0.0, float(m), int(r))
                for h, n, s, m, r in rows]

    return read


def _steps(hours: list[DaemonHour], value: Callable[[DaemonHour], float],
           until: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for h in hours:
        out += [(h.hour, value(h)), (min(h.hour + HOUR_SECONDS, until), value(h))]
    return out


def daemon_tab(hours: list[DaemonHour], since: float, until: float,
               last_tick_seconds: float | None) -> str:
    """Two charts: tick time (mean and max per hour, ms) and the daemon's peak RSS per hour."""
    now = ("" if last_tick_seconds is None
           else f"<p>Last tick took {last_tick_seconds * 1000:.1f} ms.</p>")
    if not hours:
        return now + '<p class="muted">No hourly figures of the daemon yet.</p>'
    start = min(since, hours[0].hour)
    tick = line_chart(
        [Series("mean tick", _steps(hours, lambda h: h.tick_mean_seconds * 1000, until)),
         Series("slowest tick", _steps(hours, lambda h: h.tick_max_seconds * 1000, until),
                "line s3")],
        (start, until), Axes(lambda v: f"{v:.1f} ms", local_clock, "tick time (ms)",
                             time_caption()), title="telemetryd tick time per hour")
    rss = line_chart(
        [Series("peak RSS of telemetryd", _steps(hours, lambda h: h.rss_max_bytes, until),
                "line s2")],
        (start, until), Axes(format_bytes, local_clock, "RSS", time_caption()),
        title="telemetryd RSS per hour")
    return (f'{now}<div class="charts"><figure class="chart-box" id="daemon-tick">{tick}'
            f"<figcaption>{escape('Tick time per hour: mean and slowest')}</figcaption>"
            f'</figure><figure class="chart-box" id="daemon-rss">{rss}'
            "<figcaption>The daemon's own peak RSS per hour</figcaption></figure></div>")

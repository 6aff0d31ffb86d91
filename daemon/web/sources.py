"""What the status page and its API read, passed in as callables, and what a handler returns.

The daemon builds one ``PageSources`` from its own objects (``daemon_sources``); tests and
benchmarks build one from files. Handlers take it plus the query and return a ``Reply``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from crash_reports.spool.records import SpoolEntry
from daemon.agents.store.session_list import SessionStep, SessionSummary
from daemon.stats.history import (
    TreeHistory,
    TreeSpan,
    connect,
    earliest,
    read_history,
    tree_spans,
)
from daemon.status.snapshot import StatusSnapshot
from daemon.status.view import EventUrl
from daemon.web.page_daemon import DaemonHour

RANGES_SECONDS: dict[str, float] = {"15m": 900.0, "1h": 3600.0, "6h": 21600.0, "24h": 86400.0}
DEFAULT_RANGE = "1h"
CHART_POINTS = 320
Costs = Mapping[str, list[tuple[float, float]]]
HistoryOf = Callable[[float, float, float, Collection[tuple[str, int]]], list[TreeHistory]]
Spans = Callable[[float, float, Collection[tuple[str, int]]], list[TreeSpan]]


class Reply(NamedTuple):
    """An HTTP answer: status, headers, body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class PageSources:
    """Where the views read from (each call reads fresh data)."""

    snapshot: Callable[[], StatusSnapshot | None]
    running: Callable[[], bool]
    history: Callable[[float, float, float], list[TreeHistory]]
    reports: Callable[[], Sequence[SpoolEntry]]
    costs: Callable[[float, float], Costs]
    event_url: EventUrl
    earliest: Callable[[float], float | None] = lambda _since: None
    daemon_hours: Callable[[float], list[DaemonHour]] = lambda _since: []
    sessions: Callable[[float], list[SessionSummary]] = lambda _until: []
    session_steps: Callable[[str, str], list[SessionStep]] = lambda _agent, _session: []
    # The page's fast paths (None: derived from ``history``): the points of some trees only,
    # and the other trees' spans (first, last, peak) without their points.
    history_of: HistoryOf | None = None
    spans: Spans | None = None
    clock: Callable[[], float] = time.time


def live_histories(sources: PageSources, since: float, until: float, step: float,
                   live: Collection[tuple[str, int]]) -> list[TreeHistory]:
    """The points of the ``live`` trees only."""
    if sources.history_of is not None:
        return sources.history_of(since, until, step, live)
    return [h for h in sources.history(since, until, step) if (h.key.watch, h.key.pid) in live]


def other_spans(sources: PageSources, since: float, until: float, step: float,
                live: Collection[tuple[str, int]]) -> list[TreeSpan]:
    """First, last and peak of every tree but the ``live`` ones."""
    if sources.spans is not None:
        return sources.spans(since, until, live)
    return [TreeSpan(h.key, h.points[0].at, h.points[-1].at, max(p.rss_bytes for p in h.points))
            for h in sources.history(since, until, step)
            if h.points and (h.key.watch, h.key.pid) not in live]


@dataclass(frozen=True, slots=True)
class Window:
    """The time range a chart covers and the spacing of its points."""

    name: str
    since: float
    until: float
    step_seconds: float


def window(query: str, now: float, interval_seconds: float,
           oldest: float | None = None) -> Window:
    """The chart window a query asks for (``range=15m|1h|6h|24h``; 1h when absent or unknown).

    A window reaching back before the ``oldest`` point starts there instead, so a young
    history fills the chart at a finer step.

    >>> w = window("range=24h", 86400.0, 2.0); (w.name, w.since, w.step_seconds)
    ('24h', 0.0, 270.0)
    >>> w = window("range=x", 1000.0, 2.0, oldest=900.0); (w.name, w.since, w.step_seconds)
    ('1h', 900.0, 2.0)
    """
    asked = (parse_qs(query).get("range") or [DEFAULT_RANGE])[0]
    name = asked if asked in RANGES_SECONDS else DEFAULT_RANGE
    since = now - RANGES_SECONDS[name]
    if oldest is not None and oldest > since:
        since = min(oldest, now - 60.0)
    span = now - since
    return Window(name, since, now, max(interval_seconds, 1.0, span / CHART_POINTS))


def history_from_file(path: Path) -> Callable[[float, float, float], list[TreeHistory]]:
    """Read history from the stats database, read-only, one connection per call."""

    def read(since: float, until: float, step: float) -> list[TreeHistory]:
        if not path.exists():
            return []
        with contextlib.closing(connect(path, read_only=True)) as conn:
            return read_history(conn, since, until, step)

    return read


def history_of_file(path: Path) -> HistoryOf:
    """Some trees' points from the stats database, read-only."""

    def read(since: float, until: float, step: float,
             only: Collection[tuple[str, int]]) -> list[TreeHistory]:
        if not path.exists() or not only:
            return []
        with contextlib.closing(connect(path, read_only=True)) as conn:
            return read_history(conn, since, until, step, only=only)

    return read


def spans_from_file(path: Path) -> Spans:
    """The other trees' spans from the stats database, read-only."""

    def read(since: float, until: float,
             skip: Collection[tuple[str, int]]) -> list[TreeSpan]:
        if not path.exists():
            return []
        with contextlib.closing(connect(path, read_only=True)) as conn:
            return tree_spans(conn, since, until, skip)

    return read


def earliest_from_file(path: Path) -> Callable[[float], float | None]:
    """The oldest history point after a time, read-only from the stats database."""

    def read(since: float) -> float | None:
        if not path.exists():
            return None
        with contextlib.closing(connect(path, read_only=True)) as conn:
            return earliest(conn, since)

    return read


def json_reply(document: Any, status: int = 200) -> Reply:
    """A JSON body with the headers every API answer carries."""
    import json

    body = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    return Reply(status, (("Content-Type", "application/json"), ("Cache-Control", "no-store")),
                 body)

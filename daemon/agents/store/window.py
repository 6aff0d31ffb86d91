"""Aggregate rows for a time range, to the minute where it matters (edge of the database).

The hourly table answers whole hours. A range that starts or ends inside an hour (``stats
--since 5m``) takes that hour's part from the raw events instead, when the hour holds events
outside the range; an hour whose events all fall inside the range is read from the hourly
table as it is. Raw events are kept for the retention age (a day at least, as configured), so
ranges within it are exact to the event; older ranges fall back to the hours they overlap.
Within a partly covered hour an agent's per-call events, where it sends them, give the
figures rather than its metrics (which are stamped at export, not per call).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from typing import Any

from daemon.agents.measures import split_measure
from daemon.agents.store.choose import FAMILIES, Row
from daemon.agents.store.rows import event_rows

HOUR = 3600
# One stored row: (session, agent, model, tool, measure, dim, value, count).
AggregateRow = tuple[str, str, str, str, str, str, float, int]
_HOURLY = (
    "SELECT '', agent, model, tool, measure, dim, "
    "CASE WHEN measure IN ('context_max', 'context_window') THEN max(value) "
    "ELSE sum(value) END, sum(count) "
    "FROM hourly WHERE hour BETWEEN ? AND ? {agents}GROUP BY agent, model, tool, measure, dim"
)
# Only the agents of a JSON array (the bounded agents view, today.py).
_OF_AGENTS = "AND agent IN (SELECT value FROM json_each(?)) "
_HOURLY_ALL, _HOURLY_OF = _HOURLY.format(agents=""), _HOURLY.format(agents=_OF_AGENTS)
_EVENTS_ALL = "SELECT kind, agent, data FROM events WHERE ts >= ? AND ts <= ? "
_EVENTS_OF = _EVENTS_ALL + _OF_AGENTS


def range_rows(db: sqlite3.Connection, since: float, until: float,
               agents: Collection[str] | None = None) -> list[Any]:
    """Rows for [since, until]: whole hours from ``hourly`` (maxima kept as maxima, never
    summed across hours), partly covered hours from the events they hold; only of
    ``agents`` when given (filtered in SQLite)."""
    hourly = _HOURLY_ALL if agents is None else _HOURLY_OF
    only: tuple[str, ...] = () if agents is None else (json.dumps(sorted(agents)),)
    first, last = int(since // HOUR), int(until // HOUR)
    hours = list(range(first, last + 1)) if last - first < 2 else [first, last]
    exact: list[tuple[int, float, float]] = []  # (hour, from, to) read from raw events
    for hour in hours:
        start, end = hour * HOUR, (hour + 1) * HOUR
        lo, hi = max(since, start), min(until, end)
        if lo > start or hi < end:
            outside = db.execute(
                "SELECT 1 FROM events WHERE ((ts >= ? AND ts < ?) OR (ts > ? AND ts < ?)) "
                "AND kind != 'event' LIMIT 1", (start, lo, hi, end)).fetchone()
            if outside is not None:
                exact.append((hour, lo, hi))
    if not exact:
        return db.execute(hourly, (first, last, *only)).fetchall()
    skip = {hour for hour, _, _ in exact}
    found: list[Any] = []
    for lo_hour, hi_hour in _runs([h for h in range(first, last + 1) if h not in skip]):
        found.extend(db.execute(hourly, (lo_hour, hi_hour, *only)).fetchall())
    for _, lo, hi in exact:
        found.extend(_exact_rows(db, lo, hi, only))
    return found


def _exact_rows(db: sqlite3.Connection, lo: float, hi: float,
                only: tuple[str, ...] = ()) -> list[AggregateRow]:
    """Rows from the raw events in [lo, hi]. A metric point is stamped when it was exported
    and may hold calls from before ``lo``; where the agent's events give the same family of
    figures, those events (one per call, stamped when it happened) are the figures."""
    rows: list[Row] = []
    for kind, agent, raw in db.execute(
            _EVENTS_OF if only else _EVENTS_ALL, (lo, hi, *only)):
        rows.extend(event_rows(kind, agent, json.loads(raw)))
    by_events = {(row.group[0], FAMILIES.get(split_measure(row.measure)[0]))
                 for row in rows if split_measure(row.measure)[1] == "event"}
    return [("", row.group[0], row.group[1], row.group[2], row.measure, row.dim, row.value,
             row.count) for row in rows
            if split_measure(row.measure)[1] != "metric"
            or (row.group[0], FAMILIES.get(split_measure(row.measure)[0])) not in by_events]


def _runs(hours: list[int]) -> list[tuple[int, int]]:
    """Consecutive hours as (first, last) pairs.

    >>> _runs([3, 4, 5, 8, 10, 11])
    [(3, 5), (8, 8), (10, 11)]
    """
    runs: list[tuple[int, int]] = []
    for hour in hours:
        if runs and runs[-1][1] == hour - 1:
            runs[-1] = (runs[-1][0], hour)
        else:
            runs.append((hour, hour))
    return runs

"""All-time totals per agent/model/tool, kept beside the hourly aggregates for ``/metrics``.

Prometheus counters must never go down, so they cannot be sums over the hourly rows that
retention deletes. The ``totals`` table has no time column: it only grows, retention leaves it
alone, and its size is bounded by the caps on agents, (agent, model) and (agent, tool) pairs
(``daemon.agents.decoding.cardinality``), not by time.
It also holds duration bucket counts, which the hourly rows do not keep.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crash_reports.common import sqlite
from daemon.agents.budget.costs import gather, group_cost
from daemon.agents.decoding.records import Record
from daemon.agents.store.buckets import DURATION_BUCKETS_SECONDS, OVERFLOW_BUCKET, duration_bucket
from daemon.agents.store.choose import MAX_MEASURES, Row, choose
from daemon.agents.store.rows import figures

__all__ = ["DURATION_BUCKETS_SECONDS", "OVERFLOW_BUCKET", "duration_bucket"]
# How long the store and its readers wait for a lock held by another connection.
BUSY_TIMEOUT_SECONDS = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS totals (
    agent TEXT NOT NULL,
    model TEXT NOT NULL,
    tool TEXT NOT NULL,
    measure TEXT NOT NULL,
    dim TEXT NOT NULL,
    value REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (agent, model, tool, measure, dim)
) WITHOUT ROWID;
"""
# Sums, except the context-window figures, which keep their maximum.
UPSERT = """
INSERT INTO totals (agent, model, tool, measure, dim, value, count) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (agent, model, tool, measure, dim)
DO UPDATE SET count = min(count + excluded.count, 9223372036854775807), value = CASE
    WHEN totals.measure IN ('context_max', 'context_window') THEN max(totals.value, excluded.value)
    ELSE min(max(totals.value + excluded.value, -1e300), 1e300) END
"""
# (kind, agent, name): every agent, (agent, model) and (agent, tool) the totals hold.
IDENTITIES = """
SELECT DISTINCT 'agent', agent, '' FROM totals
UNION ALL SELECT DISTINCT 'model', agent, model FROM totals WHERE model != ''
UNION ALL SELECT DISTINCT 'tool', agent, tool FROM totals WHERE tool != ''
"""

# (agent, model, tool, measure, dim)
TotalKey = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class TotalRow:
    """One all-time total: ``value`` is the summed amount, ``count`` the summed occurrences."""

    agent: str
    model: str
    tool: str
    measure: str
    dim: str
    value: float
    count: int


def total_increments(records: Sequence[Record]) -> dict[TotalKey, list[float]]:
    """What a batch adds to the totals (duration buckets included); sources stay apart in
    the measure names and readers choose one (choose.py).

    >>> from daemon.agents.decoding.records import Agent, CostUsage
    >>> out = total_increments([CostUsage(0, Agent("bot", None, None, None), None, "m", 0.5)])
    >>> out[("bot", "m", "", "cost_reported", "")]
    [0.5, 0]
    """
    out: dict[TotalKey, list[float]] = {}
    for record in records:
        for model, tool, measure, dim, value, count in figures(record, buckets=True):
            if measure in ("series", "events"):
                continue
            slot = out.setdefault((record.agent.name, model, tool, measure, dim), [0.0, 0])
            slot[0] = max(slot[0], value) if measure in MAX_MEASURES else slot[0] + value
            slot[1] += count
    return out


def upsert_rows(increments: dict[TotalKey, list[float]]) -> list[tuple[object, ...]]:
    """Parameters for ``UPSERT``, one tuple per key."""
    return [(*key, value, int(count)) for key, (value, count) in increments.items()]


def read_totals(path: Path) -> list[TotalRow]:
    """Every total in the store at ``path`` (read-only; empty when the store is not there)."""
    if not path.exists():
        return []
    db = sqlite.connect(path, busy_timeout_seconds=BUSY_TIMEOUT_SECONDS, read_only=True)
    try:
        found: Iterable[tuple[str, str, str, str, str, float, int]] = db.execute(
            "SELECT agent, model, tool, measure, dim, value, count FROM totals"
        ).fetchall()
    except sqlite3.OperationalError as exc:
        # A store written by a build older than the totals table: nothing to export yet.
        if "no such table" in str(exc):
            return []
        raise
    finally:
        db.close()
    return [TotalRow(*row) for row in found]


def chosen_totals(rows: Sequence[TotalRow]) -> list[TotalRow]:
    """Totals with one source per agent, model and tool (choose.py), and the measure ``cost``:
    per agent and model, the cost the source that counted the most counted (costs.py).

    >>> rows = [TotalRow("a", "m", "", "tokens", "input", 10, 0),
    ...         TotalRow("a", "m", "", "tokens@event", "input", 10, 1),
    ...         TotalRow("a", "m", "", "cost_reported@event", "", 0.5, 0),
    ...         TotalRow("a", "m", "", "cost_counted@event", "", 0.5, 0)]
    >>> [(r.measure, r.value) for r in chosen_totals(rows)]
    [('tokens', 10), ('cost_reported', 0.5), ('cost_counted', 0.5), ('cost', 0.5)]
    """
    chosen = choose(
        Row((r.agent, r.model, r.tool), r.measure, r.dim, r.value, r.count) for r in rows
    )
    out = [TotalRow(row.group[0], row.group[1], row.group[2], row.measure, row.dim, row.value,
                    row.count) for row in chosen]
    groups = gather(((r.agent, r.model), r.measure, r.value) for r in rows)
    for key in sorted(groups):
        usd = group_cost(groups[key])[0]
        if usd is not None:
            out.append(TotalRow(key[0], key[1], "", "cost", "", usd, 0))
    return out

"""All-time totals per agent/model/tool, kept beside the hourly aggregates for ``/metrics``.

Prometheus counters must never go down, so they cannot be sums over the hourly rows that
retention deletes. The ``totals`` table has no time column: it only grows, retention leaves it
alone, and its size is bounded by the number of agent/model/tool combinations, not by time.
It also holds duration bucket counts, which the hourly rows do not keep.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crash_reports.stats.histogram import bound_label, bucket_index
from crash_reports.storage import sqlite
from daemon.agents.records import ApiRequest, CostUsage, Record, SessionStart, TokenUsage, ToolCall

# Upper bounds in seconds; reaching 120 s covers long generations and slow tools.
DURATION_BUCKETS_SECONDS: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
)
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
UPSERT = """
INSERT INTO totals (agent, model, tool, measure, dim, value, count) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (agent, model, tool, measure, dim)
DO UPDATE SET value = min(max(value + excluded.value, -1e300), 1e300),
              count = min(count + excluded.count, 9223372036854775807)
"""
REPORTED_COST_PAIRS = "SELECT agent, model FROM totals WHERE measure = 'cost_reported'"

# (agent, model, tool, measure, dim)
TotalKey = tuple[str, str, str, str, str]
CostPair = tuple[str, str]


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


def duration_bucket(seconds: float) -> str:
    """The bucket (its upper bound as text) a duration falls in.

    >>> duration_bucket(0.3), duration_bucket(120.0), duration_bucket(121.0)
    ('0.5', '120.0', '+Inf')
    """
    return bound_label(DURATION_BUCKETS_SECONDS, bucket_index(DURATION_BUCKETS_SECONDS, seconds))


def total_increments(
    records: Sequence[Record], reported: frozenset[CostPair] | set[CostPair]
) -> tuple[dict[TotalKey, list[float]], set[CostPair]]:
    """What a batch adds to the totals, and the (agent, model) pairs that now report cost.

    Cost follows the store's rule "reported cost wins": once an agent has reported its own
    cost for a model, cost computed from that model's tokens is no longer added. Reports are
    marked before tokens are counted so a batch carrying both never counts both.
    Aggregated points (``count`` > 1) put every call in the bucket of their mean duration.

    >>> from daemon.agents.records import Agent
    >>> a = Agent("bot", None, None, None)
    >>> out, marked = total_increments([CostUsage(0, a, None, "m", 0.5),
    ...     TokenUsage(0, a, None, "m", "input", 10, "x", cost_usd=0.1, cost_status="computed")],
    ...     set())
    >>> out[("bot", "m", "", "cost", "")], sorted(marked)
    ([0.5, 0], [('bot', 'm')])
    """
    marked = {(r.agent.name, r.model) for r in records if isinstance(r, CostUsage)}
    reports_cost = set(reported) | marked
    out: dict[TotalKey, list[float]] = {}

    def add(key: TotalKey, value: float, count: int) -> None:
        slot = out.setdefault(key, [0.0, 0])
        slot[0] += value
        slot[1] += count

    for record in records:
        agent = record.agent.name
        if isinstance(record, TokenUsage):
            model, kind = record.model, record.token_type
            add((agent, model, "", "tokens", kind), float(record.tokens), record.requests)
            if record.cost_status == "computed" and record.cost_usd is not None:
                if (agent, model) not in reports_cost:
                    add((agent, model, "", "cost", ""), record.cost_usd, 0)
            elif record.cost_status == "unknown":
                add((agent, model, "", "tokens_unpriced", kind), float(record.tokens), 0)
        elif isinstance(record, CostUsage):
            add((agent, record.model, "", "cost", ""), record.usd, 0)
            add((agent, record.model, "", "cost_reported", ""), record.usd, 0)
        elif isinstance(record, ApiRequest):
            outcome = "ok" if record.error_class is None else "error"
            add((agent, record.model, "", "requests", outcome), record.duration_ms, record.count)
            if record.error_class is not None:
                add((agent, record.model, "", "errors", record.error_class), 0.0, record.count)
            if record.count > 0:
                mean = record.duration_ms / 1000.0 / record.count
                add((agent, record.model, "", "request_le", duration_bucket(mean)), 0.0,
                    record.count)
        elif isinstance(record, ToolCall):
            outcome = "ok" if record.success else "error"
            add((agent, "", record.tool, "tool_calls", outcome), record.duration_ms, record.count)
            if record.count > 0:
                mean = record.duration_ms / 1000.0 / record.count
                add((agent, "", record.tool, "tool_le", duration_bucket(mean)), 0.0, record.count)
        elif isinstance(record, SessionStart):
            add((agent, "", "", "sessions", ""), float(record.count), record.count)
    return out, marked


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

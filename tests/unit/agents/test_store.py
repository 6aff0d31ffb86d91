"""The SQLite event store: sequences, WAL, hourly aggregates, retention by age and size."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daemon.agents.decoding.records import Agent, ApiRequest, CostUsage, GenericPoint, TokenUsage
from daemon.agents.store.event_store import EventStore
from daemon.agents.store.queries import StoreReader

NOW = 1_800_000_000.0
DAY = 86400.0
BOT = Agent("bot", "i-1", None, 99)


def test_sequences_continue_after_reopen_and_wal_is_on(tmp_path: Path) -> None:
    """Per-stream sequences survive a restart; the database runs in WAL mode."""
    path = tmp_path / "s.sqlite3"
    store = EventStore(path, 30.0, 1 << 30)
    store.append([ApiRequest(NOW, BOT, None, "m", 1, 10.0)] * 2)
    store.close()
    store = EventStore(path, 30.0, 1 << 30)
    store.append([ApiRequest(NOW, BOT, None, "m", 1, 10.0)])
    store.close()
    assert [e.seq for e in StoreReader(path).events("bot/i-1")] == [1, 2, 3]
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_hourly_aggregates_sum_across_batches(tmp_path: Path) -> None:
    """Two batches in the same hour add up; another hour stays apart in a narrower query."""
    path = tmp_path / "s.sqlite3"
    store = EventStore(path, 30.0, 1 << 30)
    computed = TokenUsage(
        NOW, BOT, None, "gpt-4o", "input", 100, "metric", cost_usd=0.5, cost_status="computed"
    )
    store.append([computed, ApiRequest(NOW, BOT, None, "gpt-4o", 2, 300.0, "network")])
    store.append([computed, ApiRequest(NOW - 7200, BOT, None, "gpt-4o", 1, 50.0)])
    reader = StoreReader(path)
    (row,) = reader.stats(NOW - 60, NOW, "agent")
    assert row.tokens == {"input": 200}
    assert (row.cost_usd, row.cost_status) == (1.0, "computed")
    assert (row.requests, row.request_errors, row.errors) == (2, 2, {"network": 2})
    (wide,) = reader.stats(NOW - 3 * 3600, NOW, "agent")
    assert wide.requests == 3


def test_reported_cost_replaces_computed_only_in_its_own_group(tmp_path: Path) -> None:
    """Reported cost wins for its agent/model; other models keep their computed cost."""
    path = tmp_path / "s.sqlite3"
    store = EventStore(path, 30.0, 1 << 30)
    store.append(
        [
            TokenUsage(NOW, BOT, None, "a", "input", 1, cost_usd=2.4, cost_status="covered"),
            CostUsage(NOW, BOT, None, "a", 2.0),
            TokenUsage(NOW, BOT, None, "b", "input", 1, cost_usd=0.25, cost_status="computed"),
        ]
    )
    (row,) = StoreReader(path).stats(NOW - 60, NOW, "agent")
    assert (row.cost_usd, row.cost_status) == (2.25, "mixed")


def test_retention_by_age_drops_old_events_and_hours(tmp_path: Path) -> None:
    """Events and hourly rows older than retention_days go; recent ones stay."""
    path = tmp_path / "s.sqlite3"
    store = EventStore(path, retention_days=7.0, retention_bytes=1 << 30)
    store.append(
        [
            ApiRequest(NOW - 10 * DAY, BOT, None, "m", 1, 1.0),
            ApiRequest(NOW - 1 * DAY, BOT, None, "m", 1, 1.0),
        ]
    )
    result = store.enforce_retention(NOW)
    assert (result.deleted_events, result.deleted_hourly_rows) == (1, 1)
    reader = StoreReader(path)
    assert [e.ts for e in reader.events("bot/i-1")] == [NOW - DAY]
    (row,) = reader.stats(NOW - 30 * DAY, NOW, "agent")
    assert row.requests == 1


def test_retention_by_size_drops_oldest_first_and_shrinks_the_file(tmp_path: Path) -> None:
    """Over retention_bytes the oldest events go until the store fits, and the file shrinks."""
    path = tmp_path / "s.sqlite3"
    store = EventStore(path, retention_days=365.0, retention_bytes=400_000)
    attrs = tuple((f"k{i}", "v" * 40) for i in range(10))
    for batch in range(20):
        store.append(
            [
                GenericPoint(
                    NOW - DAY + batch * 60 + i / 1000, BOT, None, "big", "sum", 1.0, 0, attrs
                )
                for i in range(200)
            ]
        )
    wal = path.with_name(path.name + "-wal")
    before = path.stat().st_size + wal.stat().st_size
    assert store.used_bytes() > 400_000
    result = store.enforce_retention(NOW)
    assert result.deleted_events > 0
    assert result.used_bytes <= 400_000
    assert sqlite3.connect(path).execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    assert path.stat().st_size + wal.stat().st_size < before / 2
    kept = StoreReader(path).events("bot/i-1", limit=10_000)
    assert kept and kept[-1].seq == 4000  # the newest survive
    assert min(e.seq for e in kept) > 1

"""The agent event store: SQLite in WAL mode, raw events per stream plus hourly aggregates.

Opened through ``crash_reports.common.sqlite``; a file that is not a usable database raises
there (``CorruptDatabaseError`` or ``sqlite3.DatabaseError``) and ``daemon.runtime.agent_link``
moves it aside.

One ``EventStore`` belongs to one writer thread (the ingest writer); readers use
``daemon.agents.store.queries.StoreReader``, which opens its own connections.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from crash_reports.common import sqlite
from crash_reports.common.reserve import DiskReserve
from daemon.agents.decoding.cardinality import Evicted, IdentityCaps, IdentityLimits, LruDict
from daemon.agents.decoding.counters import OtlpCounter, OtlpCounters
from daemon.agents.decoding.records import Record
from daemon.agents.store.choose import MAX_MEASURES
from daemon.agents.store.legacy_costs import fill_counted
from daemon.agents.store.rows import HourlyKey, data_json, figures, hourly_increments, kind_of
from daemon.agents.store.totals import (
    BUSY_TIMEOUT_SECONDS,
    IDENTITIES,
    UPSERT,
    total_increments,
    upsert_rows,
)
from daemon.agents.store.totals import SCHEMA as TOTALS_SCHEMA
from daemon.config.schema import OtlpSettings

log = structlog.get_logger(component="agents.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    stream TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    agent TEXT NOT NULL,
    instance_id TEXT,
    session_id TEXT,
    pid INTEGER,
    data TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_pid ON events (pid, ts) WHERE pid IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_session ON events (session_id, ts) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_instance ON events (instance_id, ts)
    WHERE instance_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS hourly (
    hour INTEGER NOT NULL,
    agent TEXT NOT NULL,
    model TEXT NOT NULL,
    tool TEXT NOT NULL,
    measure TEXT NOT NULL,
    dim TEXT NOT NULL,
    value REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (hour, agent, model, tool, measure, dim)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_totals (
    agent TEXT NOT NULL,
    session_id TEXT NOT NULL,
    model TEXT NOT NULL,
    tool TEXT NOT NULL,
    measure TEXT NOT NULL,
    dim TEXT NOT NULL,
    value REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (agent, session_id, model, tool, measure, dim)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_seen (
    agent TEXT NOT NULL,
    session_id TEXT NOT NULL,
    host TEXT,
    service TEXT,
    version TEXT,
    pid INTEGER,
    first_ts REAL NOT NULL,
    last_ts REAL NOT NULL,
    PRIMARY KEY (agent, session_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_seen_last ON session_seen (agent, last_ts);
"""
_UPSERT_HOURLY = """
INSERT INTO hourly (hour, agent, model, tool, measure, dim, value, count)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (hour, agent, model, tool, measure, dim)
DO UPDATE SET count = min(count + excluded.count, 9223372036854775807), value = CASE
    WHEN hourly.measure IN ('context_max', 'context_window') THEN max(hourly.value, excluded.value)
    ELSE min(max(hourly.value + excluded.value, -1e300), 1e300) END
"""
_UPSERT_SESSION = """
INSERT INTO session_totals (agent, session_id, model, tool, measure, dim, value, count)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (agent, session_id, model, tool, measure, dim)
DO UPDATE SET count = min(count + excluded.count, 9223372036854775807), value = CASE
    WHEN session_totals.measure IN ('context_max', 'context_window')
    THEN max(session_totals.value, excluded.value)
    ELSE min(max(session_totals.value + excluded.value, -1e300), 1e300) END
"""
_UPSERT_SEEN = """
INSERT INTO session_seen (agent, session_id, host, service, version, pid, first_ts, last_ts)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (agent, session_id) DO UPDATE SET
    host = coalesce(excluded.host, host), service = coalesce(excluded.service, service),
    version = coalesce(excluded.version, version), pid = coalesce(excluded.pid, pid),
    first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)
"""


def _accumulate(
    into: dict[tuple[str, ...], list[float]], key: tuple[str, ...], measure: str, value: float,
    count: int,
) -> None:
    slot = into.setdefault(key, [0.0, 0])
    slot[0] = max(slot[0], value) if measure in MAX_MEASURES else slot[0] + value
    slot[1] += count


_MAX_TRIM_ROUNDS = 20


def _incremental_vacuum_mode(db: sqlite3.Connection, path: Path) -> None:
    """Make the file give deleted space back: ``auto_vacuum = INCREMENTAL`` is set before a
    new file's first page; a file made without it is rewritten once with VACUUM (logged)."""
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
        return
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    if db.execute("PRAGMA page_count").fetchone()[0] == 0:
        return  # a new file: the pragma alone is enough
    started = time.monotonic()
    size = path.stat().st_size
    db.execute("VACUUM")
    if size > 4096:  # a real conversion, not an empty file a pragma already wrote a page to
        log.info("agents.store.vacuumed", path=str(path), bytes_before=size,
                 bytes_after=path.stat().st_size, seconds=round(time.monotonic() - started, 3))


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one retention pass removed."""

    deleted_events: int
    deleted_hourly_rows: int
    used_bytes: int


class EventStore:
    """Append records, keep hourly aggregates, and enforce retention by age and size.

    Memory does not grow with what clients send: stream sequence numbers are cached for at
    most ``limits.sessions`` streams (the rest are read back from the ``streams`` table), and
    the all-time totals keep at most ``limits.agents`` agents and ``limits.models`` /
    ``limits.tools`` pairs, least recently used evicted first (the ``EVICTED`` counter).
    """

    def __init__(self, path: Path, retention_days: float, retention_bytes: int, *,
                 limits: IdentityLimits | None = None, counters: OtlpCounters | None = None,
                 reserve: DiskReserve | None = None) -> None:
        self.path = path
        self.reserve = reserve  # room kept for reports: appends stop short of it
        self.retention_days = retention_days
        self.retention_bytes = retention_bytes
        self.counters = counters or OtlpCounters()
        limits = limits or IdentityLimits.of(OtlpSettings())
        self._caps = IdentityCaps(limits)
        self._last_seq: LruDict[str, int] = LruDict(limits.sessions)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The connection moves to the writer thread after construction; one thread at a time.
        self._db = sqlite.connect(path, busy_timeout_seconds=BUSY_TIMEOUT_SECONDS)
        try:
            # No quick_check: it reads every page, and this file may hold hundreds of MiB.
            sqlite.check(self._db, (0,), integrity=False)
            _incremental_vacuum_mode(self._db, path)
            sqlite.use_wal(self._db)
            self._db.executescript(SCHEMA + TOTALS_SCHEMA)
            filled = fill_counted(self._db)
            if filled:
                log.info("agents.store.counted_cost_filled", groups=filled)
            found = self._db.execute(IDENTITIES).fetchall()
            evicted = self._caps.load(
                (agent for kind, agent, _ in found if kind == "agent"),
                ((agent, name) for kind, agent, name in found if kind == "model"),
                ((agent, name) for kind, agent, name in found if kind == "tool"))
            if evicted.agents or evicted.models or evicted.tools:
                self._db.execute("BEGIN IMMEDIATE")
                self._forget(evicted)
                self._db.execute("COMMIT")
                for kind, count in evicted.counts().items():
                    self.counters.count(OtlpCounter.EVICTED, (kind,), count)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def append(self, records: Sequence[Record]) -> int:
        """Store records in one transaction, each with the next sequence of its stream."""
        if not records:
            return 0
        event_rows = []
        touched: dict[str, str] = {}
        hourly: dict[HourlyKey, list[float]] = {}
        sessions: dict[tuple[str, ...], list[float]] = {}
        seen: dict[tuple[str, str], list[object]] = {}
        last_seq: dict[str, int] = {}
        for record in records:
            agent = record.agent
            stream = agent.stream
            if stream not in last_seq:
                last_seq[stream] = self._stream_seq(stream)
            seq = last_seq[stream] + 1
            last_seq[stream] = seq
            touched[stream] = agent.name
            event_rows.append(
                (
                    stream,
                    seq,
                    record.ts,
                    kind_of(record),
                    agent.name,
                    agent.instance_id,
                    record.session_id,
                    agent.pid,
                    data_json(record),
                )
            )
            for key, value, count in hourly_increments(record):
                _accumulate(hourly, key, key[4], value, count)  # type: ignore[arg-type]
            if record.session_id:
                self._note_session(record, sessions, seen)
        if self.reserve is not None and not self.reserve.allows(
                "events", sum(2 * len(row[8]) + 512 for row in event_rows)):  # + WAL, indexes
            self.counters.count(OtlpCounter.POINTS_DROPPED, ("disk_reserve",), len(event_rows))
            return 0
        evicted = self._caps.touch(records)
        totals = total_increments([r for r in records if self._caps.kept(r)])
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._forget(evicted)
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", event_rows)
            db.executemany(
                "INSERT INTO streams (stream, agent, last_seq) VALUES (?, ?, ?) "
                "ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq",
                [(stream, name, last_seq[stream]) for stream, name in touched.items()],
            )
            db.executemany(
                _UPSERT_HOURLY,
                [(*key, value, int(count)) for key, (value, count) in hourly.items()],
            )
            db.executemany(UPSERT, upsert_rows(totals))
            db.executemany(
                _UPSERT_SESSION,
                [(*key, value, int(count)) for key, (value, count) in sessions.items()],
            )
            db.executemany(_UPSERT_SEEN, [(*key, *facts) for key, facts in seen.items()])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        evicted_streams = 0
        for stream, seq in last_seq.items():
            evicted_streams += len(self._last_seq.put(stream, seq))
        self.counters.count(OtlpCounter.EVICTED, ("sessions",), evicted_streams)
        for kind, count in evicted.counts().items():
            self.counters.count(OtlpCounter.EVICTED, (kind,), count)
        return len(event_rows)

    def _stream_seq(self, stream: str) -> int:
        """The last sequence number of a stream: cached, else from the ``streams`` table."""
        cached = self._last_seq.get(stream)
        if cached is not None:
            return cached
        row = self._db.execute("SELECT last_seq FROM streams WHERE stream = ?",
                               (stream,)).fetchone()
        return int(row[0]) if row else 0

    def _forget(self, evicted: Evicted) -> None:
        """Delete the totals of evicted identities (inside the caller's transaction)."""
        db = self._db
        db.executemany("DELETE FROM totals WHERE agent = ?", [(a,) for a in evicted.agents])
        db.executemany("DELETE FROM totals WHERE agent = ? AND model = ?", evicted.models)
        db.executemany("DELETE FROM totals WHERE agent = ? AND tool = ?", evicted.tools)

    @staticmethod
    def _note_session(
        record: Record, sessions: dict[tuple[str, ...], list[float]],
        seen: dict[tuple[str, str], list[object]],
    ) -> None:
        agent, session = record.agent, str(record.session_id)
        for model, tool, measure, dim, value, count in figures(record):
            if measure not in ("series", "events"):
                key = (agent.name, session, model, tool, measure, dim)
                _accumulate(sessions, key, measure, value, count)
        facts = seen.get((agent.name, session))
        if facts is None:
            seen[(agent.name, session)] = [agent.host, agent.service, agent.version, agent.pid,
                                           record.ts, record.ts]
        else:
            facts[4] = min(float(facts[4]), record.ts)  # type: ignore[arg-type]
            facts[5] = max(float(facts[5]), record.ts)  # type: ignore[arg-type]

    def used_bytes(self) -> int:
        """Bytes of the database in use (free pages not counted)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        size = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def enforce_retention(self, now: float, *, by_age: bool = True) -> RetentionResult:
        """Drop events, hourly rows and sessions older than the retention age (unless
        ``by_age`` is False), then oldest first down to ``retention_bytes``, and give the
        freed pages back to the filesystem so the file on disk shrinks with them."""
        db = self._db
        deleted_events = deleted_hours = 0
        if by_age:
            horizon = now - self.retention_days * 86400.0
            deleted_events = db.execute("DELETE FROM events WHERE ts < ?", (horizon,)).rowcount
            deleted_hours = db.execute(
                "DELETE FROM hourly WHERE hour < ?", (int(horizon // 3600),)
            ).rowcount
            db.execute(
                "DELETE FROM session_totals WHERE (agent, session_id) IN "
                "(SELECT agent, session_id FROM session_seen WHERE last_ts < ?)", (horizon,)
            )
            db.execute("DELETE FROM session_seen WHERE last_ts < ?", (horizon,))
        for _ in range(_MAX_TRIM_ROUNDS):
            used = self.used_bytes()
            if used <= self.retention_bytes:
                break
            total = db.execute("SELECT count(*) FROM events").fetchone()[0]
            if total:
                # Events are most of the file: drop the overshare plus a margin, oldest first.
                share = min(1.0, max(0.1, (used - self.retention_bytes) / used + 0.05))
                cut = db.execute(
                    "SELECT ts FROM events ORDER BY ts LIMIT 1 OFFSET ?",
                    (min(total - 1, int(total * share)),),
                ).fetchone()[0]
                deleted_events += db.execute("DELETE FROM events WHERE ts <= ?", (cut,)).rowcount
            else:
                oldest = db.execute("SELECT min(hour) FROM hourly").fetchone()[0]
                if oldest is None:
                    break
                deleted_hours += db.execute(
                    "DELETE FROM hourly WHERE hour <= ?", (oldest,)
                ).rowcount
        if by_age and deleted_events:
            # Streams with no event left (a session flood leaves many): a returning stream's
            # sequence starts again at 1, or after the number still cached in memory.
            db.execute("DELETE FROM streams WHERE stream NOT IN (SELECT stream FROM events)")
        if deleted_events or deleted_hours or db.execute("PRAGMA freelist_count").fetchone()[0]:
            # Freed pages back to the filesystem. The pragma frees one page per step and
            # execute() steps it once; executescript runs it to the end (no transaction is
            # open: the connection is in autocommit mode).
            db.executescript("PRAGMA incremental_vacuum;")
        if deleted_events or deleted_hours or by_age:
            # The WAL folded into the file and truncated: on disk, the store is what it uses.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return RetentionResult(deleted_events, deleted_hours, self.used_bytes())

    def over_size(self) -> bool:
        """Whether the data in use has passed ``retention_bytes`` (cheap: three pragmas)."""
        return self.used_bytes() > self.retention_bytes

"""RSS/CPU history per watched process tree, downsampled, bounded, kept across restarts.

Two tiers in the stats database: ``FINE`` holds one point per second at most (one per tick at
the usual intervals) for the last ``fine_seconds`` (an hour), ``MINUTE`` one point per minute
for the last ``minute_seconds`` (a day). A minute keeps the highest RSS seen in it (a leak's
peak is what a chart must not hide) and the mean CPU. At most ``max_trees`` trees are kept;
the ones seen longest ago go first. So the file never holds more than
``max_trees * (fine_seconds + minute_seconds / 60)`` points, whatever the interval.

Writes are buffered and committed once per tick (``commit``); pruning runs at most once a
minute. Readers (the status page, ``telemetryd top``) open the file read-only and ask for a
time range at a resolution; SQLite groups the points, so a day of 20 trees comes back as a
few hundred points per tree.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Collection
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import structlog

from crash_reports.common import sqlite as storage
from crash_reports.common.reserve import DiskReserve

log = structlog.get_logger(component="stats.history")

MINUTE_SECONDS = 60


class Tier(IntEnum):
    """Resolution of a stored point."""

    FINE = 0
    MINUTE = 1


@dataclass(frozen=True, slots=True)
class TreeKey:
    """One watched process tree: its watch, root pid and the root's start time."""

    watch: str
    pid: int
    started_at: float


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """RSS and CPU of a tree at ``at`` (for a grouped point: the peak RSS, the mean CPU)."""

    at: float
    rss_bytes: int
    cpu_percent: float


@dataclass(frozen=True, slots=True)
class TreeHistory:
    """The points of one tree, oldest first."""

    key: TreeKey
    points: tuple[HistoryPoint, ...]


@dataclass(frozen=True, slots=True)
class HistoryLimits:
    """How much history is kept."""

    fine_seconds: float = 3600.0
    minute_seconds: float = 86400.0
    max_trees: int = 200
    prune_every_seconds: float = 60.0


def minute_of(at: float) -> float:
    """Start of the minute holding ``at``.

    >>> minute_of(125.9)
    120.0
    """
    return float(math.floor(at / MINUTE_SECONDS) * MINUTE_SECONDS)


def fine_slot(at: float) -> float:
    """The one-second slot a fine point lands in (a faster interval keeps the peak).

    >>> fine_slot(10.7)
    10.0
    """
    return float(math.floor(at))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS history_tree (
    id INTEGER PRIMARY KEY,
    watch TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    last_at REAL NOT NULL,
    UNIQUE (watch, pid, started_at)
);
CREATE TABLE IF NOT EXISTS history_point (
    tree INTEGER NOT NULL,
    tier INTEGER NOT NULL,
    at REAL NOT NULL,
    rss_bytes INTEGER NOT NULL,
    cpu_sum REAL NOT NULL,
    samples INTEGER NOT NULL,
    PRIMARY KEY (tree, tier, at)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_point_at ON history_point (tier, at);
"""

_UPSERT = """
INSERT INTO history_point (tree, tier, at, rss_bytes, cpu_sum, samples)
VALUES (?, ?, ?, ?, ?, 1)
ON CONFLICT (tree, tier, at) DO UPDATE SET
    rss_bytes = max(rss_bytes, excluded.rss_bytes),
    cpu_sum = cpu_sum + excluded.cpu_sum,
    samples = samples + 1
"""


def connect(path: Path, read_only: bool = False,
            busy_timeout_seconds: float = 2.0) -> sqlite3.Connection:
    """A connection to the stats database for history (autocommit; explicit transactions).

    The stats store opened the file first (and moved a corrupt one aside); this only adds
    the history tables to it.
    """
    conn = storage.connect(path, busy_timeout_seconds=busy_timeout_seconds,
                           read_only=read_only)
    if not read_only:
        storage.use_wal(conn)
        conn.executescript(_SCHEMA)
    return conn


class HistoryWriter:
    """The daemon's side: buffer each tick's tree samples, commit them, prune old points."""

    def __init__(self, conn: sqlite3.Connection, limits: HistoryLimits | None = None) -> None:
        self.conn = conn
        self.limits = limits or HistoryLimits()
        self._buffer: list[tuple[TreeKey, float, int, float]] = []
        self._tree_ids: dict[TreeKey, int] = {}
        self._last_at: dict[int, float] = {}  # last_at as last written, by tree id
        self._next_prune = 0.0
        self._lock = threading.Lock()
        self.reserve: DiskReserve | None = None  # room kept for reports: samples dropped

    @classmethod
    def open(cls, path: Path, limits: HistoryLimits | None = None) -> HistoryWriter:
        """Open (and create the tables in) the stats database at ``path``."""
        return cls(connect(path), limits)

    def record(self, key: TreeKey, at: float, rss_bytes: int, cpu_percent: float) -> None:
        """Remember one sample of a tree until the next ``commit``."""
        with self._lock:
            self._buffer.append((key, at, rss_bytes, cpu_percent))

    def commit(self, now: float) -> bool:
        """Write the buffered samples in one transaction (and prune when due).

        A failure (a locked or full disk) is logged and the samples dropped: history is a
        picture, never a reason to slow the tick down or grow without bound.
        """
        with self._lock:
            buffered, self._buffer = self._buffer, []
            if self.reserve is not None and not self.reserve.allows("history"):
                return False
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                rows = []
                for key, at, rss, cpu in buffered:
                    tree = self._tree_id(key, at)
                    rows.append((tree, int(Tier.FINE), fine_slot(at), rss, cpu))
                    rows.append((tree, int(Tier.MINUTE), minute_of(at), rss, cpu))
                # One statement for the tick's points: a Python-level execute per point
                # cost a tenth of an idle tick at 50 trees.
                self.conn.executemany(_UPSERT, rows)
                if now >= self._next_prune:
                    self._prune(now)
                    self._next_prune = now + self.limits.prune_every_seconds
                self.conn.execute("COMMIT")
                return True
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                self._tree_ids.clear()
                self._last_at.clear()
                log.warning("history.write_failed", error=str(exc), dropped=len(buffered))
                return False

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self.conn.close()

    def _tree_id(self, key: TreeKey, at: float) -> int:
        known = self._tree_ids.get(key)
        if known is not None:
            # last_at is only needed for pruning: refresh it at most once a minute per tree
            # (the time it was last written is remembered, so a tick does not ask SQLite).
            if at - self._last_at.get(known, at) >= MINUTE_SECONDS:
                self.conn.execute("UPDATE history_tree SET last_at = ? WHERE id = ?",
                                  (at, known))
                self._last_at[known] = at
            return known
        row = self.conn.execute(
            "INSERT INTO history_tree (watch, pid, started_at, last_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (watch, pid, started_at) DO UPDATE SET last_at = excluded.last_at "
            "RETURNING id", (key.watch, key.pid, key.started_at, at)).fetchone()
        self._tree_ids[key] = int(row[0])
        self._last_at[int(row[0])] = at
        return int(row[0])

    def _prune(self, now: float) -> None:
        limits = self.limits
        self.conn.execute("DELETE FROM history_point WHERE tier = ? AND at < ?",
                          (int(Tier.FINE), now - limits.fine_seconds))
        self.conn.execute("DELETE FROM history_point WHERE tier = ? AND at < ?",
                          (int(Tier.MINUTE), now - limits.minute_seconds))
        stale = [r[0] for r in self.conn.execute(
            "SELECT id FROM history_tree WHERE last_at < ? OR id NOT IN "
            "(SELECT id FROM history_tree ORDER BY last_at DESC LIMIT ?)",
            (now - limits.minute_seconds, limits.max_trees))]
        for tree in stale:
            self.conn.execute("DELETE FROM history_point WHERE tree = ?", (tree,))
            self.conn.execute("DELETE FROM history_tree WHERE id = ?", (tree,))
        if stale:
            self._tree_ids = {k: v for k, v in self._tree_ids.items() if v not in stale}
            self._last_at = {k: v for k, v in self._last_at.items() if k not in stale}


def read_history(conn: sqlite3.Connection, since: float, until: float, step_seconds: float,
                 watch: str | None = None,
                 limits: HistoryLimits | None = None,
                 only: Collection[tuple[str, int]] | None = None) -> list[TreeHistory]:
    """Each tree's points in [since, until], grouped ``step_seconds`` apart (peak RSS, mean CPU).

    The last ``fine_seconds`` come from the fine tier, anything older from the minute tier;
    at a step of a minute or more, everything comes from the minute tier. ``only`` limits
    the read to these (watch, pid) trees (a viewer showing a few of many).
    """
    limits = limits or HistoryLimits()
    step = max(1.0, step_seconds)
    # The minute tier is written every tick too: at a step of a minute or more it alone
    # answers, and a day reads 1440 points a tree instead of adding the hour's fine points.
    fine_from = until + 1.0 if step >= MINUTE_SECONDS else max(since, until - limits.fine_seconds)
    # Per tree and tier, one contiguous range of the primary key (tree, tier, at): no index
    # lookups and the groups come out in order. The tree rows are joined in Python.
    sql = """
        SELECT tree, CAST(at / ? AS INTEGER) AS slot, min(at), max(rss_bytes),
               sum(cpu_sum) / sum(samples)
        FROM history_point
        WHERE tree = ? AND tier = ? AND at >= ? AND at < ?
        GROUP BY slot
    """
    try:
        names = {int(row[0]): TreeKey(str(row[1]), int(row[2]), float(row[3])) for row in
                 conn.execute("SELECT id, watch, pid, started_at FROM history_tree "
                              "WHERE (? IS NULL OR watch = ?)", (watch, watch))
                 if only is None or (str(row[1]), int(row[2])) in only}
        rows = []
        for tree in names:
            rows += conn.execute(sql, (step, tree, int(Tier.MINUTE), since, fine_from)).fetchall()
            rows += conn.execute(sql, (step, tree, int(Tier.FINE), fine_from,
                                       until + 1e-6)).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # a daemon that never wrote history yet
        raise
    trees: dict[TreeKey, list[HistoryPoint]] = {}
    for tree, _slot, at, rss, cpu in rows:
        key = names.get(int(tree))
        if key is not None:
            trees.setdefault(key, []).append(HistoryPoint(float(at), int(rss), float(cpu or 0.0)))
    for points in trees.values():
        points.sort(key=lambda p: p.at)
    ordered = sorted(trees.items(), key=lambda item: (item[0].watch, item[0].pid,
                                                      item[0].started_at))
    return [TreeHistory(key, tuple(points)) for key, points in ordered]


def earliest(conn: sqlite3.Connection, since: float) -> float | None:
    """Time of the oldest point at or after ``since`` (None when there is none)."""
    try:
        row = conn.execute("SELECT min(at) FROM history_point WHERE tier IN (0, 1) AND at >= ?",
                           (since,)).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return None if row is None or row[0] is None else float(row[0])


@dataclass(frozen=True, slots=True)
class TreeSpan:
    """A tree in a window without its points: first and last point, peak RSS."""

    key: TreeKey
    first_at: float
    last_at: float
    peak_rss_bytes: int


def tree_spans(conn: sqlite3.Connection, since: float, until: float,
               skip: Collection[tuple[str, int]] = ()) -> list[TreeSpan]:
    """Every tree with points in [since, until] (but the ``skip`` ones), from the minute tier
    (each minute keeps its peak): one short primary-key range per tree, no point read back."""
    try:
        names = [(int(row[0]), TreeKey(str(row[1]), int(row[2]), float(row[3]))) for row in
                 conn.execute("SELECT id, watch, pid, started_at FROM history_tree "
                              "WHERE last_at >= ? AND started_at <= ?",
                              (since - MINUTE_SECONDS, until))]
        out = []
        for tree, key in names:
            if (key.watch, key.pid) in skip:
                continue
            first, last, peak = conn.execute(
                "SELECT min(at), max(at), max(rss_bytes) FROM history_point "
                "WHERE tree = ? AND tier = ? AND at >= ? AND at <= ?",
                (tree, int(Tier.MINUTE), minute_of(since), until)).fetchone()
            if first is not None:
                out.append(TreeSpan(key, float(first), float(last), int(peak)))
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    return sorted(out, key=lambda s: (s.key.watch, s.key.pid, s.key.started_at))

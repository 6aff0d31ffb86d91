"""The stats database on disk: schema, SQL, and the commit of pending figures in one transaction.

``StatsDb`` owns the connection and what waits in memory for the next commit; a file that
goes corrupt under it is moved aside (``crash_reports.common.sqlite``) and writing goes on
in a fresh one. ``ShippingLedger`` and ``StatsStore`` build on it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from crash_reports.common import sqlite
from crash_reports.common.reserve import DiskReserve
from daemon.stats.figures import (
    DAEMON_MAXES,
    DAEMON_SUMS,
    WATCH_MAXES,
    WATCH_SUMS,
    Acc,
    PeriodKey,
    hour_start,
)

log = structlog.get_logger(component="stats")

SCHEMA_VERSION = 1

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS watch_hour (
    watch TEXT NOT NULL, hour INTEGER NOT NULL,
    {", ".join(f"{c} NUMERIC NOT NULL DEFAULT 0" for c in (*WATCH_SUMS, *WATCH_MAXES))},
    PRIMARY KEY (watch, hour)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS daemon_hour (
    hour INTEGER NOT NULL PRIMARY KEY,
    {", ".join(f"{c} NUMERIC NOT NULL DEFAULT 0" for c in (*DAEMON_SUMS, *DAEMON_MAXES))});
CREATE TABLE IF NOT EXISTS tick_hist (
    hour INTEGER NOT NULL, bucket INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (hour, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shipped (
    kind TEXT NOT NULL, watch TEXT NOT NULL, hour INTEGER NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'rejected')),
    queued_at REAL, done_at REAL,
    PRIMARY KEY (kind, watch, hour));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA user_version = {SCHEMA_VERSION};
"""
KNOWN_VERSIONS = (0, SCHEMA_VERSION)


def _upsert_sql(table: str, keys: Sequence[str], sums: Sequence[str], maxes: Sequence[str]) -> str:
    columns = (*keys, *sums, *maxes)
    updates = [f"{c} = {c} + excluded.{c}" for c in sums]
    updates += [f"{c} = max({c}, excluded.{c})" for c in maxes]
    # Column names are module constants, never input: building the text is safe.
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "  # noqa: S608
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}"
    )


_WATCH_UPSERT = _upsert_sql("watch_hour", ("watch", "hour"), WATCH_SUMS, WATCH_MAXES)
_DAEMON_UPSERT = _upsert_sql("daemon_hour", ("hour",), DAEMON_SUMS, DAEMON_MAXES)
_HIST_UPSERT = (
    "INSERT INTO tick_hist (hour, bucket, count) VALUES (?, ?, ?) "
    "ON CONFLICT (hour, bucket) DO UPDATE SET count = count + excluded.count"
)
_SHIP_UPSERT = (
    "INSERT INTO shipped (kind, watch, hour, event_id, state, queued_at, done_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, watch, hour) DO UPDATE SET "
    "event_id = excluded.event_id, state = excluded.state, "
    "queued_at = coalesce(shipped.queued_at, excluded.queued_at), done_at = excluded.done_at"
)
WATCH_AGG = ", ".join([f"sum({c})" for c in WATCH_SUMS] + [f"max({c})" for c in WATCH_MAXES])
DAEMON_AGG = ", ".join([f"sum({c})" for c in DAEMON_SUMS] + [f"max({c})" for c in DAEMON_MAXES])


def acc_from_row(row: Sequence[object], sums: Sequence[str], maxes: Sequence[str]) -> Acc:
    """An accumulator from an aggregate row: the sums' columns, then the maxima's."""
    acc = Acc()
    for name, value in zip(sums, row[: len(sums)], strict=True):
        if isinstance(value, int | float):
            acc.sums[name] = value
    for name, value in zip(maxes, row[len(sums) :], strict=True):
        if isinstance(value, int | float):
            acc.maxes[name] = value
    return acc


def _row_values(acc: Acc, sums: Sequence[str], maxes: Sequence[str]) -> list[float]:
    return [acc.sums.get(c, 0) for c in sums] + [acc.maxes.get(c, 0) for c in maxes]


def prepare(conn: sqlite3.Connection) -> bool:
    """Check the file and create the schema; False when another writer holds the lock.

    Raises ``CorruptDatabaseError`` for a file that is not a usable stats database.
    """
    sqlite.check(conn, KNOWN_VERSIONS)
    try:
        sqlite.use_wal(conn)
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
    except sqlite3.DatabaseError as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        if sqlite.is_busy(exc):
            return False
        if sqlite.is_corrupt(exc):
            raise sqlite.CorruptDatabaseError(str(exc)) from exc
        raise
    return True


@dataclass
class ShipRow:
    """A pending change to the shipping ledger."""

    key: PeriodKey
    state: str | None  # None: forget the row so the period ships again
    queued_at: float | None
    done_at: float | None


class StatsDb:
    """The connection, the figures waiting in memory, and their commit."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        *,
        ready: bool,
        busy_timeout_seconds: float,
        commit_interval_seconds: float,
        read_only: bool,
    ) -> None:
        self.path = path
        self._conn = conn
        self._ready = ready
        self._busy_timeout_seconds = busy_timeout_seconds
        self._commit_interval_seconds = commit_interval_seconds
        self._read_only = read_only
        self._lock = threading.RLock()
        self._watch: dict[tuple[str, int], Acc] = {}
        self._daemon: dict[int, Acc] = {}
        self._ship: dict[str, ShipRow] = {}
        self._meta: dict[str, str] = {}
        # When this run started, if it has: figures of its first (partial) hour are kept
        # apart from the previous run's, so those can ship at once (see period_start).
        self._run_start: int | None = None
        self._failed_commits = 0
        self.reserve: DiskReserve | None = None  # room kept for reports: commits wait for it

    def close(self) -> None:
        """Commit what is pending and close the file."""
        with self._lock:
            if not self._read_only:
                self.commit()
            self._conn.close()

    def period_start(self, now: float) -> int:
        """The period figures recorded at ``now`` belong to: the clock hour, except in the
        hour this run started, whose period starts with the run. So the previous run's last
        partial hour is a closed period as soon as this run starts (it ships at once), and
        this run's part of that hour is another period, shipped when the hour closes: the
        same figures never ship twice.

        >>> db = StatsDb.__new__(StatsDb); db._run_start = 7300
        >>> db.period_start(7400), db.period_start(11000), db.period_start(3700)
        (7300, 10800, 3600)
        """
        hour = hour_start(now)
        run = self._run_start
        return run if run is not None and hour_start(run) == hour and run <= now else hour

    @property
    def pending(self) -> int:
        """How many hour rows and shipping marks wait in memory for a commit."""
        with self._lock:
            return len(self._watch) + len(self._daemon) + len(self._ship) + len(self._meta)

    # --- commit -------------------------------------------------------------------------

    def commit(self) -> bool:
        """Write everything pending in one transaction; False (data kept) if it failed."""
        with self._lock:
            if self._read_only or not (self._watch or self._daemon or self._ship or self._meta):
                return True
            if self.reserve is not None and not self.reserve.allows("stats"):
                return False  # figures kept in memory until there is room again
            for attempt in (1, 2):
                try:
                    if not self._ready:
                        self._ready = prepare(self._conn)
                        if not self._ready:
                            raise sqlite3.OperationalError("database is locked")
                    self._write_pending()
                except (sqlite3.Error, sqlite.CorruptDatabaseError) as exc:
                    if attempt == 1 and sqlite.is_corrupt(exc):
                        self._recover(exc)
                        continue
                    self._commit_failed(exc)
                    return False
                break
            if self._failed_commits:
                log.info("stats.unlocked", path=str(self.path), failed_commits=self._failed_commits)
                self._failed_commits = 0
            self._watch.clear()
            self._daemon.clear()
            self._ship.clear()
            self._meta.clear()
            return True

    def _write_pending(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                _WATCH_UPSERT,
                [
                    (w, h, *_row_values(a, WATCH_SUMS, WATCH_MAXES))
                    for (w, h), a in self._watch.items()
                ],
            )
            conn.executemany(
                _DAEMON_UPSERT,
                [(h, *_row_values(a, DAEMON_SUMS, DAEMON_MAXES)) for h, a in self._daemon.items()],
            )
            conn.executemany(
                _HIST_UPSERT,
                [(h, b, c) for h, a in self._daemon.items() for b, c in a.hist.items()],
            )
            for event_id, row in self._ship.items():
                k = row.key
                if row.state is None:
                    conn.execute("DELETE FROM shipped WHERE event_id = ?", (event_id,))
                else:
                    conn.execute(
                        _SHIP_UPSERT,
                        (
                            k.kind,
                            k.watch or "",
                            k.hour_start,
                            event_id,
                            row.state,
                            row.queued_at,
                            row.done_at,
                        ),
                    )
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(self._meta.items()),
            )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _commit_failed(self, exc: Exception) -> None:
        self._failed_commits += 1
        # One line per episode: the daemon commits every tick and must not flood the log.
        if self._failed_commits == 1:
            log.warning(
                "stats.locked" if sqlite.is_busy(exc) else "stats.write_failed",
                path=str(self.path),
                error=str(exc),
                busy_timeout_seconds=self._busy_timeout_seconds,
                pending_rows=len(self._watch) + len(self._daemon),
            )

    def _recover(self, exc: Exception) -> None:
        """Move a file that went corrupt under us aside and continue on a fresh one."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        sqlite.move_aside_logged(self.path, exc, event="stats.corrupt")
        self._conn = sqlite.connect(self.path, busy_timeout_seconds=self._busy_timeout_seconds)
        self._ready = prepare(self._conn)

    # --- reading ----------------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run a read; a failing read logs and yields no rows (figures in memory still count)."""
        if not self._ready:
            return []
        try:
            return list(self._conn.execute(sql, params))
        except sqlite3.Error as exc:
            if sqlite.is_corrupt(exc) and not self._read_only:
                self._recover(exc)
            else:
                log.warning("stats.read_failed", path=str(self.path), error=str(exc))
            return []

    def _meta_value(self, key: str) -> str | None:
        if key in self._meta:
            return self._meta[key]
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def _daemon_hour(self, hour: int) -> Acc:
        rows = self._query(
            f"SELECT {DAEMON_AGG} FROM daemon_hour WHERE hour = ?",  # noqa: S608
            (hour,),
        )
        acc = acc_from_row(rows[0], DAEMON_SUMS, DAEMON_MAXES) if rows else Acc()
        for bucket, count in self._query(
            "SELECT bucket, count FROM tick_hist WHERE hour = ?", (hour,)
        ):
            acc.hist[int(str(bucket))] = int(str(count))
        return acc

    def _delete_before(self, cutoff_hour: int) -> int:
        """Delete hours before ``cutoff_hour``; returns the rows deleted (0 on failure)."""
        with self._lock:
            if self._read_only or not self._ready:
                return 0
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                deleted = 0
                for table in ("watch_hour", "daemon_hour", "tick_hist", "shipped"):
                    cursor = self._conn.execute(
                        f"DELETE FROM {table} WHERE hour < ?",  # noqa: S608
                        (cutoff_hour,),
                    )
                    deleted += cursor.rowcount
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                log.warning("stats.prune_failed", path=str(self.path), error=str(exc))
                return 0
            return deleted

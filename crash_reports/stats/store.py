"""Persisted stats: per watch and per hour figures, and the daemon's own, in SQLite (WAL).

Writes are cheap: every ``record_*``/``incr`` call only updates an in-memory
accumulator; ``record_tick`` commits them in one transaction once
``commit_interval_seconds`` have passed (default: every tick). The database runs in WAL
mode with ``synchronous=NORMAL``: a ``kill -9`` loses at most what was recorded
since the last commit (one commit interval) and never corrupts the file; a power cut may
also lose the last few commits, still without corruption.

Tick durations go into a fixed log-scale histogram per hour (at most
``TICK_HISTOGRAM_BUCKETS`` rows an hour, eight buckets per doubling from 10 µs), so p50
and p99 come from bucket counts, not from every sample: the reported quantile is never
below the true nearest-rank value and at most 9.1 % above it (and never above the max).

A corrupt file is moved aside to ``<name>.corrupt-<UTC timestamp>`` and a fresh database
started; a database locked by another process makes a commit wait ``busy_timeout`` and
then give up with one ``stats.locked`` log line, keeping the figures in memory for the
next commit.

Shipping closed hours, at startup and on each flush (the daemon's side):
``closed_unshipped_periods(now)`` -> for each, build the event
(``crash_reports.stats.events.stats_event``), capture it into the spool, then
``mark_queued(period.key, event_id, now)`` so it is never queued twice; when the flusher
confirms a 2xx for an event id in ``queued_event_ids()``, ``mark_delivered(event_id, now)``
(``mark_rejected`` on quarantine, ``requeue`` if the spool dropped it). A crash between
capture and ``mark_queued`` re-queues the same deterministic event id, which the server
stores once.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

import structlog

from crash_reports.storage.atomic import fsync_dir

log = structlog.get_logger(__name__)

HOUR_SECONDS = 3600
SCHEMA_VERSION = 1
DEFAULT_MAX_AGE_SECONDS = 7 * 24 * HOUR_SECONDS

Figures = dict[str, int | float | None]


def hour_start(now: float) -> int:
    """Start of the UTC hour holding ``now``, in epoch seconds.

    >>> hour_start(7201.5)
    7200
    """
    return int(now // HOUR_SECONDS) * HOUR_SECONDS


class Counter(StrEnum):
    """Per watch, per hour event counters (``incr``); the value is the column name."""

    WARNINGS = "warnings"
    CRITICALS = "criticals"
    REPORTS_WRITTEN = "reports_written"
    REPORTS_DELIVERED = "reports_delivered"
    REPORTS_QUARANTINED = "reports_quarantined"
    REPORTS_DROPPED = "reports_dropped"
    PROCESSES_SEEN = "processes_seen"
    PROCESSES_EXITED = "processes_exited"


# --- tick duration histogram (pure) -------------------------------------------------------

TICK_HISTOGRAM_BASE_SECONDS = 1e-5
TICK_HISTOGRAM_STEPS_PER_DOUBLING = 8
TICK_HISTOGRAM_BUCKETS = 200


def tick_bucket(duration_seconds: float) -> int:
    """Histogram bucket of a tick duration: bucket ``i`` holds (upper(i-1), upper(i)].

    >>> tick_bucket(0.0), tick_bucket(1e-5), tick_bucket(2e-5), tick_bucket(1e9)
    (0, 0, 8, 199)
    """
    if math.isnan(duration_seconds) or duration_seconds <= TICK_HISTOGRAM_BASE_SECONDS:
        return 0
    if math.isinf(duration_seconds):
        return TICK_HISTOGRAM_BUCKETS - 1
    steps = math.log2(duration_seconds / TICK_HISTOGRAM_BASE_SECONDS)
    index = math.ceil(steps * TICK_HISTOGRAM_STEPS_PER_DOUBLING - 1e-9)
    return min(index, TICK_HISTOGRAM_BUCKETS - 1)


def bucket_upper_seconds(bucket: int) -> float:
    """Upper bound of a bucket; the last one is open-ended.

    >>> bucket_upper_seconds(8)
    2e-05
    """
    if bucket >= TICK_HISTOGRAM_BUCKETS - 1:
        return math.inf
    return TICK_HISTOGRAM_BASE_SECONDS * 2 ** (bucket / TICK_HISTOGRAM_STEPS_PER_DOUBLING)


def histogram_quantile(hist: Mapping[int, int], q: float, max_seconds: float) -> float | None:
    """Nearest-rank quantile ``q`` of a histogram, as its bucket's upper bound capped at max.

    >>> histogram_quantile({tick_bucket(0.001): 99, tick_bucket(0.5): 1}, 0.5, 0.5) < 0.0011
    True
    >>> histogram_quantile({}, 0.5, 0.0) is None
    True
    """
    total = sum(hist.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return min(bucket_upper_seconds(bucket), max_seconds)
    return max_seconds


# --- figures: what an hour (or a span of hours) adds up to ---------------------------------

WATCH_SUMS = ("samples", "rss_sum_bytes", "cpu_sum_percent", *(c.value for c in Counter))
WATCH_MAXES = ("rss_max_bytes", "cpu_max_percent")
DAEMON_SUMS = ("ticks", "tick_sum_seconds", "own_cpu_sum_percent", "starts", "unclean_starts")
DAEMON_MAXES = ("tick_max_seconds", "own_rss_max_bytes", "uptime_max_seconds")


@dataclass
class _Acc:
    """Sums, maxima and a tick histogram that merge the same way in memory and in SQL."""

    sums: dict[str, float] = field(default_factory=dict)
    maxes: dict[str, float] = field(default_factory=dict)
    hist: dict[int, int] = field(default_factory=dict)

    def add(self, name: str, amount: float) -> None:
        self.sums[name] = self.sums.get(name, 0) + amount

    def high(self, name: str, value: float) -> None:
        current = self.maxes.get(name)
        if current is None or value > current:
            self.maxes[name] = value

    def absorb(self, other: _Acc) -> None:
        for name, amount in other.sums.items():
            self.add(name, amount)
        for name, value in other.maxes.items():
            self.high(name, value)
        for bucket, count in other.hist.items():
            self.hist[bucket] = self.hist.get(bucket, 0) + count


def _mean(total: float, count: float) -> float | None:
    return total / count if count else None


def watch_figures(acc: _Acc) -> Figures:
    """The public view of a watch's accumulated figures (means from sums, None when empty)."""
    samples = int(acc.sums.get("samples", 0))
    figures: Figures = {
        "samples": samples,
        "rss_max_bytes": int(acc.maxes.get("rss_max_bytes", 0)) if samples else None,
        "rss_mean_bytes": _mean(acc.sums.get("rss_sum_bytes", 0), samples),
        "cpu_max_percent": float(acc.maxes.get("cpu_max_percent", 0)) if samples else None,
        "cpu_mean_percent": _mean(acc.sums.get("cpu_sum_percent", 0), samples),
    }
    for counter in Counter:
        figures[counter.value] = int(acc.sums.get(counter.value, 0))
    return figures


def daemon_figures(acc: _Acc) -> Figures:
    """The public view of the daemon's own accumulated figures."""
    ticks = int(acc.sums.get("ticks", 0))
    tick_max = float(acc.maxes.get("tick_max_seconds", 0))
    return {
        "ticks": ticks,
        "tick_p50_seconds": histogram_quantile(acc.hist, 0.50, tick_max),
        "tick_p99_seconds": histogram_quantile(acc.hist, 0.99, tick_max),
        "tick_mean_seconds": _mean(acc.sums.get("tick_sum_seconds", 0), ticks),
        "tick_max_seconds": tick_max if ticks else None,
        "own_rss_max_bytes": int(acc.maxes.get("own_rss_max_bytes", 0)) if ticks else None,
        "own_cpu_mean_percent": _mean(acc.sums.get("own_cpu_sum_percent", 0), ticks),
        "uptime_max_seconds": acc.maxes.get("uptime_max_seconds"),
        "starts": int(acc.sums.get("starts", 0)),
        "unclean_starts": int(acc.sums.get("unclean_starts", 0)),
    }


class PeriodKey(NamedTuple):
    """One closed hour of one watch; ``watch`` None means the daemon's own figures."""

    watch: str | None
    hour_start: int

    @property
    def kind(self) -> str:
        """``daemon`` or ``watch``: the shipped table's key column."""
        return "daemon" if self.watch is None else "watch"


@dataclass(frozen=True)
class Period:
    """A closed hour's figures, ready to become a stats event."""

    key: PeriodKey
    figures: Mapping[str, int | float | None]

    @property
    def start(self) -> int:
        """Start of the hour, epoch seconds."""
        return self.key.hour_start

    @property
    def end(self) -> int:
        """End of the hour (exclusive), epoch seconds."""
        return self.key.hour_start + HOUR_SECONDS


@dataclass(frozen=True)
class StatsSummary:
    """What ``telemetryd stats`` prints: figures since ``since`` up to ``until``."""

    since: float
    until: float
    watches: dict[str, Figures]
    daemon: Figures
    running_since: float | None
    uptime_seconds: float | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "since": self.since,
            "until": self.until,
            "running_since": self.running_since,
            "uptime_seconds": self.uptime_seconds,
            "daemon": self.daemon,
            "watches": self.watches,
        }


class StatsUnavailableError(Exception):
    """A read-only open found no usable database (missing, corrupt or unreadable)."""


# --- SQL --------------------------------------------------------------------------------

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
_WATCH_AGG = ", ".join([f"sum({c})" for c in WATCH_SUMS] + [f"max({c})" for c in WATCH_MAXES])
_DAEMON_AGG = ", ".join([f"sum({c})" for c in DAEMON_SUMS] + [f"max({c})" for c in DAEMON_MAXES])

_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def _code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", -1) or -1) & 0xFF


def _acc_from_row(row: Sequence[object], sums: Sequence[str], maxes: Sequence[str]) -> _Acc:
    acc = _Acc()
    for name, value in zip(sums, row[: len(sums)], strict=True):
        if isinstance(value, int | float):
            acc.sums[name] = value
    for name, value in zip(maxes, row[len(sums) :], strict=True):
        if isinstance(value, int | float):
            acc.maxes[name] = value
    return acc


def _row_values(acc: _Acc, sums: Sequence[str], maxes: Sequence[str]) -> list[float]:
    return [acc.sums.get(c, 0) for c in sums] + [acc.maxes.get(c, 0) for c in maxes]


class _CorruptError(Exception):
    """The file is not a usable stats database."""


def _connect(path: Path, busy_timeout_seconds: float, read_only: bool) -> sqlite3.Connection:
    target = f"file:{path}?mode=ro" if read_only else str(path)
    conn = sqlite3.connect(
        target, uri=read_only, isolation_level=None, check_same_thread=False, timeout=0
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
    return conn


def _check(conn: sqlite3.Connection) -> None:
    """Raise ``_CorruptError`` unless the file is a stats database this code can use."""
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        result = [r[0] for r in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        if _code(exc) in _BUSY:
            raise
        raise _CorruptError(str(exc)) from exc
    if result != ["ok"]:
        raise _CorruptError("; ".join(str(r) for r in result[:5]))
    if version not in (0, SCHEMA_VERSION):
        raise _CorruptError(f"unknown schema version {version}")


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 0
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    if path.exists():
        path.rename(aside)
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        # Kept next to the old file under the name SQLite expects, for forensics.
        wal.rename(aside.with_name(aside.name + "-wal"))
    with contextlib.suppress(FileNotFoundError):
        path.with_name(path.name + "-shm").unlink()
    fsync_dir(path.parent)
    return aside


@dataclass
class _ShipRow:
    key: PeriodKey
    state: str | None  # None: forget the row so the period ships again
    queued_at: float | None
    done_at: float | None


class StatsStore:
    """Per watch and per hour stats in one SQLite file; build with ``StatsStore.open``."""

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
        self._watch: dict[tuple[str, int], _Acc] = {}
        self._daemon: dict[int, _Acc] = {}
        self._ship: dict[str, _ShipRow] = {}
        self._meta: dict[str, str] = {}
        self._started_at: float | None = None
        self._last_commit: float | None = None
        self._failed_commits = 0

    # --- life cycle ---------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        busy_timeout_seconds: float = 0.25,
        commit_interval_seconds: float = 1.0,
        read_only: bool = False,
    ) -> StatsStore:
        """Open (or create) the stats database at ``path``; never raises for a bad file.

        A corrupt file is moved aside and a fresh one started; an unopenable path falls
        back to an in-memory database for this run. ``read_only`` (for the CLI) changes
        nothing on disk and raises ``StatsUnavailableError`` instead of repairing.
        """
        if read_only:
            return cls._open_read_only(path, busy_timeout_seconds)
        ready = True
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(path, busy_timeout_seconds, read_only=False)
            try:
                ready = cls._prepare(conn)
            except _CorruptError as exc:
                conn.close()
                aside = _move_aside(path)
                log.error("stats.corrupt", path=str(path), moved_to=str(aside), error=str(exc))
                conn = _connect(path, busy_timeout_seconds, read_only=False)
                ready = cls._prepare(conn)
        except (sqlite3.Error, OSError, _CorruptError) as exc:
            if isinstance(exc, sqlite3.Error) and _code(exc) in _BUSY:
                log.warning("stats.locked", path=str(path), during="open", error=str(exc))
                ready = False
            else:
                log.error("stats.unavailable", path=str(path), error=str(exc), fallback="memory")
                conn = _connect(Path(":memory:"), busy_timeout_seconds, read_only=False)
                ready = cls._prepare(conn)
        log.info("stats.opened", path=str(path), ready=ready)
        return cls(
            path,
            conn,
            ready=ready,
            busy_timeout_seconds=busy_timeout_seconds,
            commit_interval_seconds=commit_interval_seconds,
            read_only=False,
        )

    @classmethod
    def _open_read_only(cls, path: Path, busy_timeout_seconds: float) -> StatsStore:
        if not path.exists():
            raise StatsUnavailableError(f"no stats database at {path}")
        try:
            conn = _connect(path, busy_timeout_seconds, read_only=True)
        except sqlite3.Error as exc:
            raise StatsUnavailableError(f"stats database {path} is unusable: {exc}") from exc
        try:
            _check(conn)
        except (_CorruptError, sqlite3.Error) as exc:
            conn.close()
            raise StatsUnavailableError(f"stats database {path} is unusable: {exc}") from exc
        return cls(
            path,
            conn,
            ready=True,
            busy_timeout_seconds=busy_timeout_seconds,
            commit_interval_seconds=math.inf,
            read_only=True,
        )

    @staticmethod
    def _prepare(conn: sqlite3.Connection) -> bool:
        """Check the file and create the schema; False when another writer holds the lock."""
        _check(conn)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a commit survives kill -9 (it is in the OS), and no fsync per tick.
            conn.execute("PRAGMA synchronous = NORMAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if _code(exc) in _BUSY:
                return False
            if _code(exc) in _CORRUPT:
                raise _CorruptError(str(exc)) from exc
            raise
        return True

    def close(self) -> None:
        """Commit what is pending and close the file."""
        with self._lock:
            if not self._read_only:
                self.commit()
            self._conn.close()

    # --- recording (in memory; cheap) -----------------------------------------------------

    def record_start(self, now: float) -> None:
        """Record a daemon start; a start after one without ``record_stop`` counts unclean."""
        with self._lock:
            self._started_at = now
            acc = self._daemon.setdefault(hour_start(now), _Acc())
            acc.add("starts", 1)
            if self._meta_value("running") == "1":
                acc.add("unclean_starts", 1)
            self._meta.update(running="1", last_start=repr(now))
            self.commit()

    def record_stop(self, now: float) -> None:
        """Record a clean shutdown and commit everything."""
        with self._lock:
            self._meta.update(running="0", last_stop=repr(now))
            self.commit()

    def record_sample(self, watch: str, now: float, rss_bytes: int, cpu_percent: float) -> None:
        """Add one sample of a watch (its tree's RSS and CPU) to the current hour."""
        with self._lock:
            acc = self._watch.get((watch, hour_start(now)))
            if acc is None:
                acc = self._watch[(watch, hour_start(now))] = _Acc()
            acc.add("samples", 1)
            acc.add("rss_sum_bytes", rss_bytes)
            acc.add("cpu_sum_percent", cpu_percent)
            acc.high("rss_max_bytes", rss_bytes)
            acc.high("cpu_max_percent", cpu_percent)

    def incr(self, watch: str, counter: Counter, now: float, n: int = 1) -> None:
        """Add ``n`` to one of a watch's counters for the current hour."""
        name = Counter(counter).value  # a stray string fails here, not at commit time
        with self._lock:
            self._watch.setdefault((watch, hour_start(now)), _Acc()).add(name, n)

    def record_tick(
        self, now: float, duration_seconds: float, own_rss_bytes: int, own_cpu_percent: float
    ) -> None:
        """Record one daemon tick; commits pending figures when the interval has passed."""
        if not math.isfinite(duration_seconds) or duration_seconds < 0:
            duration_seconds = 0.0  # a clock quirk must not poison an hour's sums with NaN
        with self._lock:
            acc = self._daemon.setdefault(hour_start(now), _Acc())
            acc.add("ticks", 1)
            acc.add("tick_sum_seconds", duration_seconds)
            acc.add("own_cpu_sum_percent", own_cpu_percent)
            acc.high("tick_max_seconds", duration_seconds)
            acc.high("own_rss_max_bytes", own_rss_bytes)
            if self._started_at is not None:
                acc.high("uptime_max_seconds", max(0.0, now - self._started_at))
            bucket = tick_bucket(duration_seconds)
            acc.hist[bucket] = acc.hist.get(bucket, 0) + 1
            last = self._last_commit
            # abs(): a wall clock stepped backwards must not stop commits.
            if last is None or abs(now - last) >= self._commit_interval_seconds:
                self._last_commit = now
                self.commit()

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
            for attempt in (1, 2):
                try:
                    if not self._ready:
                        self._ready = self._prepare(self._conn)
                        if not self._ready:
                            raise sqlite3.OperationalError("database is locked")
                    self._write_pending()
                except (sqlite3.Error, _CorruptError) as exc:
                    if attempt == 1 and self._is_corrupt(exc):
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

    @staticmethod
    def _is_corrupt(exc: Exception) -> bool:
        return isinstance(exc, _CorruptError) or (
            isinstance(exc, sqlite3.Error) and _code(exc) in _CORRUPT
        )

    def _commit_failed(self, exc: Exception) -> None:
        self._failed_commits += 1
        busy = isinstance(exc, sqlite3.Error) and _code(exc) in _BUSY
        # One line per episode: the daemon commits every tick and must not flood the log.
        if self._failed_commits == 1:
            log.warning(
                "stats.locked" if busy else "stats.write_failed",
                path=str(self.path),
                error=str(exc),
                busy_timeout_seconds=self._busy_timeout_seconds,
                pending_rows=len(self._watch) + len(self._daemon),
            )

    def _recover(self, exc: Exception) -> None:
        """Move a file that went corrupt under us aside and continue on a fresh one."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        aside = _move_aside(self.path)
        log.error("stats.corrupt", path=str(self.path), moved_to=str(aside), error=str(exc))
        self._conn = _connect(self.path, self._busy_timeout_seconds, read_only=False)
        self._ready = self._prepare(self._conn)

    # --- reading (database plus what is still in memory) -----------------------------------

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run a read; a failing read logs and yields no rows (figures in memory still count)."""
        if not self._ready:
            return []
        try:
            return list(self._conn.execute(sql, params))
        except sqlite3.Error as exc:
            if self._is_corrupt(exc) and not self._read_only:
                self._recover(exc)
            else:
                log.warning("stats.read_failed", path=str(self.path), error=str(exc))
            return []

    def _meta_value(self, key: str) -> str | None:
        if key in self._meta:
            return self._meta[key]
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def _watch_totals(self, since_hour: int, watch: str | None = None) -> dict[str, _Acc]:
        sql = f"SELECT watch, {_WATCH_AGG} FROM watch_hour WHERE hour >= ?"  # noqa: S608
        params: list[object] = [since_hour]
        if watch is not None:
            sql += " AND watch = ?"
            params.append(watch)
        totals = {
            str(row[0]): _acc_from_row(row[1:], WATCH_SUMS, WATCH_MAXES)
            for row in self._query(sql + " GROUP BY watch", params)
        }
        for (w, h), acc in self._watch.items():
            if h >= since_hour and (watch is None or w == watch):
                totals.setdefault(w, _Acc()).absorb(acc)
        return totals

    def _daemon_total(self, since_hour: int) -> _Acc:
        rows = self._query(
            f"SELECT {_DAEMON_AGG} FROM daemon_hour WHERE hour >= ?",  # noqa: S608
            (since_hour,),
        )
        total = _acc_from_row(rows[0], DAEMON_SUMS, DAEMON_MAXES) if rows else _Acc()
        for bucket, count in self._query(
            "SELECT bucket, sum(count) FROM tick_hist WHERE hour >= ? GROUP BY bucket",
            (since_hour,),
        ):
            total.hist[int(str(bucket))] = int(str(count))
        for h, acc in self._daemon.items():
            if h >= since_hour:
                total.absorb(acc)
        return total

    def recent(self, watch: str, now: float, hours: int = 24) -> Figures:
        """A watch's figures over the last ``hours`` hours including the current one."""
        since_hour = hour_start(now) - (hours - 1) * HOUR_SECONDS
        with self._lock:
            acc = self._watch_totals(since_hour, watch).get(watch, _Acc())
        figures = watch_figures(acc)
        figures["since"] = since_hour
        figures["hours"] = hours
        return figures

    def summary(self, now: float, since_seconds: float) -> StatsSummary:
        """Every watch's figures and the daemon's own, over hours overlapping the window."""
        since_hour = hour_start(now - since_seconds)
        with self._lock:
            watches = {
                w: watch_figures(a) for w, a in sorted(self._watch_totals(since_hour).items())
            }
            daemon = daemon_figures(self._daemon_total(since_hour))
            running = self._meta_value("running") == "1"
            last_start = self._meta_value("last_start")
        running_since = float(last_start) if running and last_start else None
        return StatsSummary(
            since=since_hour,
            until=now,
            watches=watches,
            daemon=daemon,
            running_since=running_since,
            uptime_seconds=None if running_since is None else max(0.0, now - running_since),
        )

    # --- shipping closed periods ----------------------------------------------------------

    def closed_unshipped_periods(
        self, now: float, *, max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS, limit: int = 200
    ) -> list[Period]:
        """Closed hours (oldest first) never queued for shipping, with their figures.

        Hours that still have figures only in memory (a commit failed) are left for a
        later call, so a period is never shipped without its last seconds. Hours older
        than ``max_age_seconds`` are not offered: they stay in the database but turning
        on a DSN after months must not flood Sentry.
        """
        closed_before = hour_start(now)
        oldest = hour_start(now - max_age_seconds)
        with self._lock:
            self.commit()
            held_watch = {(w, h) for (w, h) in self._watch}
            held_daemon = set(self._daemon)
            periods: list[Period] = []
            for row in self._query(
                f"SELECT w.watch, w.hour, {_WATCH_AGG} FROM watch_hour w "  # noqa: S608
                "LEFT JOIN shipped s ON s.kind = 'watch' AND s.watch = w.watch "
                "AND s.hour = w.hour WHERE s.event_id IS NULL AND w.hour < ? AND w.hour >= ? "
                "GROUP BY w.watch, w.hour ORDER BY w.hour LIMIT ?",
                (closed_before, oldest, limit),
            ):
                key = PeriodKey(str(row[0]), int(str(row[1])))
                if (key.watch, key.hour_start) not in held_watch and not self._shipping(key):
                    acc = _acc_from_row(row[2:], WATCH_SUMS, WATCH_MAXES)
                    periods.append(Period(key, watch_figures(acc)))
            for (hour,) in self._query(
                "SELECT d.hour FROM daemon_hour d LEFT JOIN shipped s ON s.kind = 'daemon' "
                "AND s.hour = d.hour WHERE s.event_id IS NULL AND d.hour < ? AND d.hour >= ? "
                "ORDER BY d.hour LIMIT ?",
                (closed_before, oldest, limit),
            ):
                h = int(str(hour))
                key = PeriodKey(None, h)
                if h not in held_daemon and not self._shipping(key):
                    acc = self._daemon_hour(h)
                    periods.append(Period(key, daemon_figures(acc)))
        periods.sort(key=lambda p: (p.start, p.key.watch is not None, p.key.watch or ""))
        return periods[:limit]

    def _daemon_hour(self, hour: int) -> _Acc:
        rows = self._query(
            f"SELECT {_DAEMON_AGG} FROM daemon_hour WHERE hour = ?",  # noqa: S608
            (hour,),
        )
        acc = _acc_from_row(rows[0], DAEMON_SUMS, DAEMON_MAXES) if rows else _Acc()
        for bucket, count in self._query(
            "SELECT bucket, count FROM tick_hist WHERE hour = ?", (hour,)
        ):
            acc.hist[int(str(bucket))] = int(str(count))
        return acc

    def _shipping(self, key: PeriodKey) -> bool:
        return any(r.key == key and r.state is not None for r in self._ship.values())

    def _find_ship_key(self, event_id: str) -> PeriodKey | None:
        if event_id in self._ship:
            return self._ship[event_id].key
        rows = self._query("SELECT kind, watch, hour FROM shipped WHERE event_id = ?", (event_id,))
        if not rows:
            return None
        kind, watch, hour = rows[0]
        return PeriodKey(None if kind == "daemon" else str(watch), int(str(hour)))

    def mark_queued(self, key: PeriodKey, event_id: str, now: float) -> None:
        """Record that the period's event is in the spool, so it is not queued again."""
        with self._lock:
            self._ship[event_id] = _ShipRow(key, "queued", now, None)
            self.commit()

    def queued_event_ids(self) -> frozenset[str]:
        """Event ids of stats events in the spool awaiting delivery."""
        with self._lock:
            ids = {
                str(r[0])
                for r in self._query("SELECT event_id FROM shipped WHERE state = 'queued'")
            }
            for event_id, row in self._ship.items():
                if row.state == "queued":
                    ids.add(event_id)
                else:
                    ids.discard(event_id)
            return frozenset(ids)

    def _settle(self, event_id: str, state: str | None, now: float) -> bool:
        with self._lock:
            key = self._find_ship_key(event_id)
            if key is None:
                return False
            held = self._ship.get(event_id)
            self._ship[event_id] = _ShipRow(key, state, held.queued_at if held else None, now)
            self.commit()
            return True

    def mark_delivered(self, event_id: str, now: float) -> bool:
        """Record a confirmed delivery (a 2xx); False if ``event_id`` is no stats event."""
        return self._settle(event_id, "delivered", now)

    def mark_rejected(self, event_id: str, now: float) -> bool:
        """Record that the server refused the event (quarantined); it is not queued again."""
        return self._settle(event_id, "rejected", now)

    def requeue(self, event_id: str, now: float) -> bool:
        """Forget a queued event the spool lost (dropped by retention) so it ships again."""
        return self._settle(event_id, None, now)

    def prune(self, now: float, keep_seconds: float) -> int:
        """Delete hours older than ``keep_seconds``; returns the rows deleted (0 on failure)."""
        cutoff = hour_start(now - keep_seconds)
        with self._lock:
            if self._read_only or not self._ready:
                return 0
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                deleted = 0
                for table in ("watch_hour", "daemon_hour", "tick_hist", "shipped"):
                    cursor = self._conn.execute(
                        f"DELETE FROM {table} WHERE hour < ?",  # noqa: S608
                        (cutoff,),
                    )
                    deleted += cursor.rowcount
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                log.warning("stats.prune_failed", path=str(self.path), error=str(exc))
                return 0
            return deleted

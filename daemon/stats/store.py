"""Persisted stats: per watch and per hour figures, and the daemon's own, in SQLite (WAL).

Writes are cheap: every ``record_*``/``incr`` call only updates an in-memory
accumulator; ``record_tick`` commits them in one transaction once
``commit_interval_seconds`` have passed (default: every tick). The database runs in WAL
mode with ``synchronous=NORMAL``: a ``kill -9`` loses at most what was recorded
since the last commit (one commit interval) and never corrupts the file; a power cut may
also lose the last few commits, still without corruption.

Tick durations go into a fixed log-scale histogram per hour
(``daemon.stats.histogram``), so p50 and p99 come from bucket counts, not from
every sample.

A corrupt file is moved aside to ``<name>.corrupt-<UTC timestamp>`` and a fresh database
started (``crash_reports.common.sqlite``); a database locked by another process makes a
commit wait ``busy_timeout`` and then give up with one ``stats.locked`` log line, keeping
the figures in memory for the next commit.

The modules, bottom up: ``histogram`` (bucket maths), ``figures`` (accumulator, figures,
periods), ``database`` (schema, commit, recovery), ``ledger`` (shipping closed hours as
stats events), and this one (opening, recording, reading).
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import structlog

from crash_reports.common import sqlite
from daemon.stats.database import (
    DAEMON_AGG,
    KNOWN_VERSIONS,
    WATCH_AGG,
    acc_from_row,
    prepare,
)
from daemon.stats.figures import (
    DAEMON_MAXES,
    DAEMON_SUMS,
    HOUR_SECONDS,
    WATCH_MAXES,
    WATCH_SUMS,
    Acc,
    Counter,
    Figures,
    StatsSummary,
    daemon_figures,
    hour_start,
    watch_figures,
)
from daemon.stats.histogram import tick_bucket
from daemon.stats.ledger import ShippingLedger

log = structlog.get_logger(component="stats")


class StatsUnavailableError(Exception):
    """A read-only open found no usable database (missing, corrupt or unreadable)."""


class StatsStore(ShippingLedger):
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
        super().__init__(
            path,
            conn,
            ready=ready,
            busy_timeout_seconds=busy_timeout_seconds,
            commit_interval_seconds=commit_interval_seconds,
            read_only=read_only,
        )
        self._started_at: float | None = None
        self._last_commit: float | None = None

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
            try:
                conn = sqlite.connect(path, busy_timeout_seconds=busy_timeout_seconds)
                try:
                    ready = prepare(conn)
                except sqlite.CorruptDatabaseError:
                    conn.close()
                    raise
            except (sqlite.CorruptDatabaseError, sqlite.PlantedFileError) as exc:
                # Damaged, or a FIFO/symlink planted under its name: kept aside, never opened.
                sqlite.move_aside_logged(path, exc, event="stats.corrupt")
                conn = sqlite.connect(path, busy_timeout_seconds=busy_timeout_seconds)
                ready = prepare(conn)
        except (sqlite3.Error, OSError, sqlite.CorruptDatabaseError) as exc:
            if sqlite.is_busy(exc):
                log.warning("stats.locked", path=str(path), during="open", error=str(exc))
                ready = False
            else:
                log.error("stats.unavailable", path=str(path), error=str(exc), fallback="memory")
                conn = sqlite.connect(Path(":memory:"), busy_timeout_seconds=busy_timeout_seconds)
                ready = prepare(conn)
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
            conn = sqlite.connect(path, busy_timeout_seconds=busy_timeout_seconds, read_only=True)
        except sqlite3.Error as exc:
            raise StatsUnavailableError(f"stats database {path} is unusable: {exc}") from exc
        try:
            sqlite.check(conn, KNOWN_VERSIONS)
        except (sqlite.CorruptDatabaseError, sqlite3.Error) as exc:
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

    # --- recording (in memory; cheap) -----------------------------------------------------

    def record_start(self, now: float) -> None:
        """Record a daemon start; a start after one without ``record_stop`` counts unclean."""
        with self._lock:
            self._started_at = now
            self._run_start = int(now)
            acc = self._daemon.setdefault(self.period_start(now), Acc())
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
            period = self.period_start(now)
            acc = self._watch.get((watch, period))
            if acc is None:
                acc = self._watch[(watch, period)] = Acc()
            acc.add("samples", 1)
            acc.add("rss_sum_bytes", rss_bytes)
            acc.add("cpu_sum_percent", cpu_percent)
            acc.high("rss_max_bytes", rss_bytes)
            acc.high("cpu_max_percent", cpu_percent)

    def incr(self, watch: str, counter: Counter, now: float, n: int = 1) -> None:
        """Add ``n`` to one of a watch's counters for the current hour."""
        name = Counter(counter).value  # a stray string fails here, not at commit time
        with self._lock:
            self._watch.setdefault((watch, self.period_start(now)), Acc()).add(name, n)

    def record_tick(
        self, now: float, duration_seconds: float, own_rss_bytes: int, own_cpu_percent: float
    ) -> None:
        """Record one daemon tick; commits pending figures when the interval has passed."""
        if not math.isfinite(duration_seconds) or duration_seconds < 0:
            duration_seconds = 0.0  # a clock quirk must not poison an hour's sums with NaN
        with self._lock:
            acc = self._daemon.setdefault(self.period_start(now), Acc())
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

    # --- reading (database plus what is still in memory) -----------------------------------

    def _watch_totals(self, since_hour: int, watch: str | None = None) -> dict[str, Acc]:
        sql = f"SELECT watch, {WATCH_AGG} FROM watch_hour WHERE hour >= ?"  # noqa: S608
        params: list[object] = [since_hour]
        if watch is not None:
            sql += " AND watch = ?"
            params.append(watch)
        totals = {
            str(row[0]): acc_from_row(row[1:], WATCH_SUMS, WATCH_MAXES)
            for row in self._query(sql + " GROUP BY watch", params)
        }
        for (w, h), acc in self._watch.items():
            if h >= since_hour and (watch is None or w == watch):
                totals.setdefault(w, Acc()).absorb(acc)
        return totals

    def _daemon_total(self, since_hour: int) -> Acc:
        rows = self._query(
            f"SELECT {DAEMON_AGG} FROM daemon_hour WHERE hour >= ?",  # noqa: S608
            (since_hour,),
        )
        total = acc_from_row(rows[0], DAEMON_SUMS, DAEMON_MAXES) if rows else Acc()
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
            acc = self._watch_totals(since_hour, watch).get(watch, Acc())
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

    def prune(self, now: float, keep_seconds: float) -> int:
        """Delete hours older than ``keep_seconds``; returns the rows deleted (0 on failure)."""
        return self._delete_before(hour_start(now - keep_seconds))

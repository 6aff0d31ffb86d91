"""The shipping ledger: which closed hours went into the spool as stats events, and how they ended.

At startup and on each flush the daemon asks ``closed_unshipped_periods(now)``, builds and
spools an event for each, then ``mark_queued(period.key, event_id, now)`` so it is never
queued twice; the flusher's outcome settles it (``mark_delivered``, ``mark_rejected``, or
``requeue`` when the spool dropped it). A crash between spooling and ``mark_queued``
re-queues the same deterministic event id, which the server stores once.
"""

from __future__ import annotations

from daemon.stats.database import (
    WATCH_AGG,
    ShipRow,
    StatsDb,
    acc_from_row,
)
from daemon.stats.figures import (
    HOUR_SECONDS,
    WATCH_MAXES,
    WATCH_SUMS,
    Period,
    PeriodKey,
    daemon_figures,
    hour_start,
    watch_figures,
)

DEFAULT_MAX_AGE_SECONDS = 7 * 24 * HOUR_SECONDS


class ShippingLedger(StatsDb):
    """Shipping marks of closed periods, kept in the ``shipped`` table."""

    def closed_unshipped_periods(
        self, now: float, *, max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS, limit: int = 200
    ) -> list[Period]:
        """Closed periods (oldest first) never queued for shipping, with their figures: every
        hour before the current period, including the previous run's last partial hour once
        this run has started (``period_start``).

        Hours that still have figures only in memory (a commit failed) are left for a
        later call, so a period is never shipped without its last seconds. Hours older
        than ``max_age_seconds`` are not offered: they stay in the database but turning
        on a DSN after months must not flood Sentry.
        """
        closed_before = self.period_start(now)
        oldest = hour_start(now - max_age_seconds)
        with self._lock:
            self.commit()
            held_watch = {(w, h) for (w, h) in self._watch}
            held_daemon = set(self._daemon)
            periods: list[Period] = []
            for row in self._query(
                f"SELECT w.watch, w.hour, {WATCH_AGG} FROM watch_hour w "  # noqa: S608
                "LEFT JOIN shipped s ON s.kind = 'watch' AND s.watch = w.watch "
                "AND s.hour = w.hour WHERE s.event_id IS NULL AND w.hour < ? AND w.hour >= ? "
                "GROUP BY w.watch, w.hour ORDER BY w.hour LIMIT ?",
                (closed_before, oldest, limit),
            ):
                key = PeriodKey(str(row[0]), int(str(row[1])))
                if (key.watch, key.hour_start) not in held_watch and not self._shipping(key):
                    acc = acc_from_row(row[2:], WATCH_SUMS, WATCH_MAXES)
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
            self._ship[event_id] = ShipRow(key, "queued", now, None)
            self.commit()

    def mark_empty(self, key: PeriodKey, now: float) -> None:
        """Settle a period that holds nothing worth an event, so it is never offered again
        (recorded as delivered: there is nothing left to deliver)."""
        with self._lock:
            self._ship[f"empty:{key.watch or ''}:{key.hour_start}"] = ShipRow(
                key, "delivered", now, now)
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
            self._ship[event_id] = ShipRow(key, state, held.queued_at if held else None, now)
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

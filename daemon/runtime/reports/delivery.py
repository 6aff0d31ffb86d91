"""Delivery wiring: the spool and the flusher from config (shared by the daemon and the CLI),
and the daemon's flush thread, which a reload with a new [sentry] table replaces."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from crash_reports.delivery.flusher import Flusher, FlushResult
from crash_reports.delivery.upload import Uploader
from crash_reports.delivery.worker import FlushWorker
from crash_reports.spool.store import Dropped, Spool, SpoolLimits
from daemon import __version__
from daemon.config.schema import Config
from daemon.runtime.paths import StatePaths
from daemon.status.snapshot import FlushStatus

log = structlog.get_logger(component="delivery")

FLUSH_FAILURE_STATUSES = frozenset({"retrying", "rate_limited", "error"})


def is_flush_failure(status: str) -> bool:
    """Whether a flush that ended with this status counts in ``telemetryd_flush_failures_total``.

    >>> is_flush_failure("retrying"), is_flush_failure("ok"), is_flush_failure("waiting")
    (True, False, False)
    """
    return status in FLUSH_FAILURE_STATUSES


def spool_limits(config: Config) -> SpoolLimits:
    """The [spool] table as the spool's bounds."""
    return SpoolLimits(
        max_reports=config.spool.max_reports,
        max_bytes=config.spool.max_bytes,
        max_age_seconds=config.spool.max_age_days * 86400,
        disk_reserve_bytes=config.spool.disk_reserve_bytes,
    )


def open_spool(config: Config, on_drop: Callable[[Dropped], None] | None = None) -> Spool:
    """The spool of the configured state dir."""
    return Spool(StatePaths(config.daemon.state_dir).spool, spool_limits(config), on_drop=on_drop)


def make_flusher(config: Config, spool: Spool) -> Flusher:
    """A flusher for the configured DSN (one that sends nothing without a DSN)."""
    sender = (
        Uploader(config.sentry.dsn, __version__, config.sentry.timeout_seconds)
        if config.sentry.dsn
        else None
    )
    return Flusher(spool, sender)


class Delivery:
    """The daemon's flush thread for one [sentry] table, and what it has done."""

    def __init__(self, spool: Spool, on_result: Callable[[FlushResult], None],
                 dsn: str | None = None) -> None:
        self.spool = spool
        self.dsn = dsn  # the target's DSN (the page links delivered reports through it)
        self.on_result = on_result
        self.failures = 0
        self.flusher: Flusher | None = None
        self.worker: FlushWorker | None = None

    def start(self, config: Config, state_dir_spool: str) -> None:
        """Start flushing to the configured target (at once, then every flush_interval)."""
        self.dsn = config.sentry.dsn
        self.flusher = make_flusher(config, self.spool)
        self.worker = FlushWorker(self.flusher, config.sentry.flush_interval_seconds,
                                  on_result=self._on_result)
        self.worker.start()
        if not config.sentry.dsn:
            log.info("flush.disabled", reason="no Sentry DSN configured; reports stay local",
                     spool=state_dir_spool)

    def restart(self, config: Config, state_dir_spool: str) -> None:
        """A new [sentry] table: stop the flush thread and start one for the new target."""
        self.stop()
        self.start(config, state_dir_spool)
        assert self.flusher is not None
        log.info("flush.configured", target=self.flusher.state().target,
                 flush_interval=config.sentry.flush_interval_seconds)

    def trigger(self) -> None:
        """Flush soon (a report was just spooled)."""
        if self.worker is not None:
            self.worker.trigger()

    def stop(self) -> None:
        """Stop the flush thread between uploads."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def status(self) -> FlushStatus | None:
        """Delivery as status shows it (None before the first start)."""
        if self.flusher is None:
            return None
        state = self.flusher.state()
        if not state.enabled:
            return FlushStatus(enabled=False)
        last = state.last_result
        return FlushStatus(
            enabled=True, failures_total=self.failures, target=state.target,
            last_flush_at=state.last_flush_at, last_result=last.status if last else None,
            backoff_until=state.backoff_until, rate_limits=state.rate_limits or None,
            last_error=state.last_error, delivered_total=state.delivered_total,
            quarantined_total=state.quarantined_total,
        )

    def _on_result(self, result: FlushResult) -> None:
        # Called on the flush thread.
        if is_flush_failure(result.status):
            self.failures += 1
        self.on_result(result)

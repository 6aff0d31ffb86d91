"""Opening the spool and building the flusher from config: shared by the daemon and the CLI."""

from __future__ import annotations

from collections.abc import Callable

from crash_reports.delivery.flusher import Flusher
from crash_reports.delivery.upload import Uploader
from crash_reports.spool.store import Dropped, Spool, SpoolLimits
from daemon import __version__
from daemon.config.schema import Config
from daemon.runtime.paths import StatePaths


def spool_limits(config: Config) -> SpoolLimits:
    """The [spool] table as the spool's bounds."""
    return SpoolLimits(
        max_reports=config.spool.max_reports,
        max_bytes=config.spool.max_bytes,
        max_age_seconds=config.spool.max_age_days * 86400,
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

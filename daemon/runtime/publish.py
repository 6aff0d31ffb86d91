"""Publishing status: the typed snapshot built from what the daemon holds, written each tick."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from daemon import __version__
from daemon.config.render import describe
from daemon.config.schema import Config
from daemon.runtime.running import Running
from daemon.runtime.tick import Ticker
from daemon.status.snapshot import ReportCounts, StatusSnapshot
from daemon.status.status_file import write_snapshot
from daemon.status.watch_statuses import watch_statuses
from daemon.watch.proc.announcements import DEFAULT_WATCH
from daemon.watch.proc.sampler import TickSample

log = structlog.get_logger(component="status")


@dataclass(frozen=True, slots=True)
class StatusInputs:
    """What a snapshot is built from: the config, the ticker and what startup opened."""

    config: Config
    started_at: float
    ticker: Ticker
    running: Running
    sample: TickSample | None
    stopped: bool
    now: float


class StatusPublisher:
    """Builds the status snapshot and writes it to status.json."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._described: tuple[Config, dict[str, Any]] | None = None

    def publish(self, inputs: StatusInputs) -> StatusSnapshot:
        """Build the snapshot and write it; a failed write is logged, never raised."""
        snapshot = self.snapshot(inputs)
        try:
            write_snapshot(self.path, snapshot)
        except OSError as exc:
            log.error("status.write_failed", path=str(self.path), error=str(exc))
        return snapshot

    def snapshot(self, inputs: StatusInputs) -> StatusSnapshot:
        """The status ``telemetryd status`` shows, from what the daemon holds now."""
        config, ticker, running, sample = (inputs.config, inputs.ticker, inputs.running,
                                           inputs.sample)
        monitor = ticker.monitor
        spool = running.spool
        server = running.metrics_server
        waiting = spool.waiting()
        return StatusSnapshot(
            pid=os.getpid(),
            telemetryd_version=__version__,
            started_at=inputs.started_at,
            stopped=inputs.stopped,
            config_source=config.source,
            config=self._described_config(config),
            state_dir=str(config.daemon.state_dir),
            interval=config.daemon.interval_seconds,
            last_tick=ticker.last,
            watches=watch_statuses(watch_names(config, ticker), monitor.tracked.values(),
                                   sample.by_watch if sample is not None else {},
                                   monitor.orphans.values(),
                                   sample.at if sample is not None else inputs.now,
                                   {rule.name: (rule.rss_warning_bytes, rule.rss_critical_bytes)
                                    for rule in monitor.rules.values()}),
            reports=ReportCounts(
                pending=waiting.reports, quarantined=spool.quarantined_count(),
                written_since_start=ticker.reports_written,
                held_in_memory=running.transport.held_count,
                dropped_total=running.tally.dropped,
                oldest_pending_at=waiting.oldest_report_at,
                stats_waiting=waiting.stats, other_waiting=waiting.other),
            flush=running.delivery.status(),
            otlp=None if inputs.stopped else running.agents.status(),
            metrics_listen=f"{config.metrics.host}:{server.port}" if server else None,
            degraded="disk full" if running.transport.disk_full else None,
            budgets=running.agents.budget_use(),
            agents=() if inputs.stopped else tuple(running.agents.today(inputs.now)),
            events=tuple(running.tally.recent.items()),
        )

    def _described_config(self, config: Config) -> dict[str, Any]:
        # The config changes only on reload: describe it once per config, not every tick.
        if self._described is None or self._described[0] is not config:
            self._described = (config, describe(config))
        return self._described[1]


def watch_names(config: Config, ticker: Ticker) -> list[str]:
    """The watches status lists: the config's, and `telemetryd wrap`'s while it has children."""
    names = [rule.name for rule in config.watches]
    if DEFAULT_WATCH not in names and any(
            watch == DEFAULT_WATCH for watch, _key in ticker.monitor.tracked):
        names.append(DEFAULT_WATCH)
    return names

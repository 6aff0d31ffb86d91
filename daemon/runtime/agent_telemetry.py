"""Wiring for the daemon: store, ingest writer and OTLP receiver started and stopped together."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import structlog

from crash_reports.common.atomic import write_atomic
from crash_reports.common.files import read_regular
from crash_reports.common.reserve import DiskReserve
from daemon.agents.decoding.cardinality import IdentityLimits
from daemon.agents.decoding.counters import OtlpCounters, OtlpStats
from daemon.agents.linking.sub_threads import SubThreads
from daemon.agents.store.event_store import EventStore
from daemon.agents.store.ingest import Ingestor
from daemon.agents.store.queries import StoreReader
from daemon.agents.trust.admission import Admission
from daemon.agents.trust.sender_token import load_key
from daemon.config.schema import OtlpSettings
from daemon.runtime.paths import StatePaths, series_sidecar
from daemon.web.otlp_receiver import OtlpReceiver

log = structlog.get_logger(component="agents")


class AgentTelemetry:
    """The agent-telemetry part of the daemon; ``db_path`` is ``StatePaths.events_db``."""

    def __init__(self, settings: OtlpSettings, db_path: Path,
                 reserve: DiskReserve | None = None) -> None:
        self.settings = settings
        self.admission = Admission(settings.trust, _token_key(StatePaths(db_path.parent)))
        counters = OtlpCounters()
        self.store = EventStore(db_path, settings.retention_days, settings.retention_bytes,
                                limits=IdentityLimits.of(settings), counters=counters,
                                reserve=reserve)
        self.reader = StoreReader(db_path)
        self.ingestor = Ingestor(self.store, settings.queue_size, counters,
                                 retention_interval_seconds=settings.retention_check_seconds,
                                 max_queued_records=settings.max_queued_records,
                                 max_queued_bytes=settings.max_queued_bytes,
                                 sessions=SubThreads().apply)
        self.receiver = OtlpReceiver(settings, self.ingestor, admission=self.admission)
        self.series_path = series_sidecar(db_path)

    def start(self) -> None:
        """Start the writer, then the receiver (when enabled)."""
        self._restore_series()
        self.ingestor.start()
        if self.settings.listen.enabled:
            self.receiver.start()

    def stop(self) -> None:
        """Stop receiving, write what is queued, keep the series state, close the store."""
        self.receiver.stop()
        self.ingestor.stop()
        self._save_series()
        self.store.close()

    def _save_series(self) -> None:
        # Written only once everything received is stored, so the saved values match
        # the totals exactly; cumulative exporters then continue where they left off.
        items = self.receiver.tracker.export_cumulative()
        try:
            write_atomic(self.series_path, json.dumps(items).encode())
        except OSError as exc:
            log.warning("agents.series_not_saved", error=str(exc))

    def _restore_series(self) -> None:
        try:
            items = json.loads(read_regular(self.series_path, 64 * 1024 * 1024))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("agents.series_unreadable", path=str(self.series_path), error=str(exc))
            items = []
        # Used once: after a crash (no clean stop) an old file would count twice what
        # arrived between it and the crash, so it must not be read again.
        with contextlib.suppress(OSError):
            self.series_path.unlink()
        if isinstance(items, list):
            restored = self.receiver.tracker.import_cumulative(items, time.time())
            log.info("agents.series_restored", series=restored)

    def stats(self) -> OtlpStats:
        """Receiver and queue counters for ``status``."""
        return self.receiver.stats()


def _token_key(paths: StatePaths) -> bytes | None:
    """The key ``wrap``'s tokens are checked with (made if missing); None if unusable."""
    try:
        return load_key(paths.otlp_key)
    except OSError as exc:
        log.error("otlp.token_key_unusable", path=str(paths.otlp_key), error=str(exc),
                  effect="tokens are not verified; senders are checked by process")
        return None

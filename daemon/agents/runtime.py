"""Wiring for the daemon: store, ingest writer and OTLP receiver started and stopped together."""

from __future__ import annotations

from pathlib import Path

from daemon.agents.ingest import Ingestor
from daemon.agents.queries import StoreReader
from daemon.agents.receiver import OtlpReceiver
from daemon.agents.settings import AgentTelemetrySettings
from daemon.agents.store import EventStore

DB_FILENAME = "agents.sqlite3"


class AgentTelemetry:
    """The agent-telemetry part of the daemon; ``db_path`` is usually state_dir / DB_FILENAME."""

    def __init__(self, settings: AgentTelemetrySettings, db_path: Path) -> None:
        self.settings = settings
        self.store = EventStore(db_path, settings.retention_days, settings.retention_bytes)
        self.reader = StoreReader(db_path)
        self.ingestor = Ingestor(self.store, settings.queue_size)
        self.receiver = OtlpReceiver(settings, self.ingestor)

    def start(self) -> None:
        """Start the writer, then the receiver (when enabled)."""
        self.ingestor.start()
        if self.settings.enabled:
            self.receiver.start()

    def stop(self) -> None:
        """Stop receiving, write what is queued, close the store."""
        self.receiver.stop()
        self.ingestor.stop()
        self.store.close()

    def stats(self) -> dict[str, int]:
        """Receiver and queue counters for ``status``."""
        return self.receiver.stats()

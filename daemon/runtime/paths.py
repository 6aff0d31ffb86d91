"""The one place that knows the layout of the state dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from crash_reports.common.files import check_private_dir, open_regular


class StatePaths(NamedTuple):
    """Files and folders under the state dir.

    A NamedTuple rather than a dataclass: ``budget check`` reads it on every tool call of an
    agent, and importing ``dataclasses`` would cost it about 5 ms.
    """

    root: Path

    @property
    def spool(self) -> Path:
        """Crash reports waiting to be sent, quarantined or recently delivered."""
        return self.root / "spool"

    @property
    def status(self) -> Path:
        """The snapshot the daemon writes each tick and ``telemetryd status`` reads."""
        return self.root / "status.json"

    @property
    def lock(self) -> Path:
        """Held by the running daemon so a second one refuses to start."""
        return self.root / "telemetryd.lock"

    @property
    def stats_db(self) -> Path:
        """Persisted per-hour stats."""
        return self.root / "stats.db"

    @property
    def events_db(self) -> Path:
        """Agent telemetry events received over OTLP."""
        return self.root / "events.db"

    @property
    def events_series(self) -> Path:
        """The receiver's cumulative-series state, kept beside the event store."""
        return series_sidecar(self.events_db)

    @property
    def budgets(self) -> Path:
        """Which budget thresholds already fired this period."""
        return self.root / "budgets.json"

    @property
    def wrapped(self) -> Path:
        """One small JSON file per child ``telemetryd wrap`` runs, read by the daemon each tick."""
        return self.root / "wrapped"

    @property
    def trees(self) -> Path:
        """Which watched tree each running process came from, so orphans outlive a restart."""
        return self.root / "trees.json"

    @property
    def otlp_key(self) -> Path:
        """The secret ``wrap``'s per-agent OTLP tokens are made from (0600; sender_token.py)."""
        return self.root / "otlp-token.key"

    @property
    def heap_snapshots(self) -> Path:
        """Node heap snapshots taken as evidence (0700: they hold the agent's secrets)."""
        return self.root / "heap-snapshots"

    def ensure(self) -> None:
        """Create the state dir (0700), check it is ours alone and writable; raise OSError.

        ``UnsafeFileError`` (an OSError) when the directory is a symlink, belongs to
        another user, or is writable by group or others: whoever can write into it can
        plant a symlink or a FIFO where the daemon will create its files.
        """
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        check_private_dir(self.root)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PermissionError(13, "state dir is not writable", str(self.root))
        probe = self.root / f".write-probe.{os.getpid()}"
        os.close(open_regular(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()


def series_sidecar(events_db: Path) -> Path:
    """Where the cumulative-series state of the event store at ``events_db`` is kept."""
    return events_db.with_name(events_db.name + ".series.json")

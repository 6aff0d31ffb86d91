"""The durable spool: serialized Sentry envelopes on disk, bounded, never half-visible.

Layout under ``root`` (0700; files 0600)::

    pending/<created_ns>-<event_id>.env         an envelope still to send
    pending/<created_ns>-<event_id>.meta.json   its attempts and last error (optional)
    quarantine/<same names>                     refused by the server (4xx): status and reason
    delivered/<delivered_ns>-<event_id>.json    a small record of each recent 2xx (bounded)
    corrupt/<name>                              files that were not envelopes, kept aside
    flush.lock                                  the flusher's inter-process lock

Every state change is a single atomic step on the directory (write-then-rename, rename,
or unlink after a durable record), so ``kill -9`` at any point leaves each report either
where it was or where it was going, never nowhere.  A delivered record is written before
the pending file is removed; a pending file whose id has a delivered record is finished
off on the next listing instead of being sent again.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

__all__ = ["Dropped", "PurgeScope", "Spool", "SpoolLimits", "StoredReport", "Waiting"]

import structlog

from crash_reports.common.atomic import fsync_dir, write_atomic
from crash_reports.common.files import ensure_private_dir, read_regular
from crash_reports.common.reserve import DiskReserve
from crash_reports.spool.envelope import EnvelopeSummary, parse_envelope
from crash_reports.spool.listing import Listing
from crash_reports.spool.records import (
    ENVELOPE_NAME,
    META_SUFFIX,
    RECORD_NAME,
    EntryState,
    SpoolEntry,
    StoredReport,
    Waiting,
    created_at_of,
    dump,
    file_names,
    id_of,
    keep_newest_records,
    read_records,
    record_fields,
    remove_stale_temp,
    unlink,
)
from crash_reports.spool.retention import (
    Dropped,
    Group,
    SpoolLimits,
    Stored,
    choose_drops,
)

log = structlog.get_logger(component="spool")

PurgeScope = Literal["quarantined", "all"]

_STALE_TEMP_SECONDS = 300.0


class Spool:
    """Reports waiting to be sent, refused, or recently delivered; no network here."""

    def __init__(
        self,
        root: Path,
        limits: SpoolLimits | None = None,
        clock: Callable[[], float] = time.time,
        on_drop: Callable[[Dropped], None] | None = None,
    ) -> None:
        """Open (creating 0700 folders) the spool at ``root`` (``<state_dir>/spool``)."""
        self.root = Path(root)
        self.limits = limits or SpoolLimits()
        self._clock = clock
        self._on_drop = on_drop
        self._lock = threading.RLock()
        self._last_ns = 0
        # id -> (state, file name): a hint only, checked against the disk before use.
        self._where: dict[str, tuple[EntryState, str]] = {}
        self._sizes: dict[str, int] = {}
        self.pending_dir = self.root / "pending"
        self.quarantine_dir = self.root / "quarantine"
        self.delivered_dir = self.root / "delivered"
        self.corrupt_dir = self.root / "corrupt"
        self._listing = Listing(self.corrupt_dir)
        # What the other stores on this filesystem leave free for reports (limits reload).
        self.reserve = DiskReserve(self.root, lambda: self.limits.disk_reserve_bytes)
        self.root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Made 0700 through a descriptor that never follows a symlink: a planted link
        # is refused (UnsafeFileError), never chmodded through.
        for directory in (
            self.root,
            self.pending_dir,
            self.quarantine_dir,
            self.delivered_dir,
            self.corrupt_dir,
        ):
            ensure_private_dir(directory)

    @property
    def lock_path(self) -> Path:
        """The file the flusher locks so two processes never send at once."""
        return self.root / "flush.lock"

    # --- writing -----------------------------------------------------------------

    def put(self, envelope: bytes) -> str:
        """``store`` one envelope; return its report id."""
        return self.store(envelope).id

    def store(self, envelope: bytes) -> StoredReport:
        """Store one serialized envelope durably; return its id (its event_id) and path.

        ValueError if ``envelope`` is not a whole envelope; OSError (e.g. a full disk)
        leaves nothing visible.  An id already pending or quarantined is not stored twice.
        """
        summary = parse_envelope(envelope)
        report_id = summary.event_id or uuid.uuid4().hex
        with self._lock:
            known = self._locate(report_id)
            if known is not None:
                log.info("spool.duplicate", id=report_id)
                return StoredReport(report_id, dict(self._stored_folders())[known[0]] / known[1])
            now = self._clock()
            created_ns = max(int(now * 1e9), self._last_ns + 1)
            self._last_ns = created_ns
            name = f"{created_ns:020d}-{report_id}.env"
            write_atomic(self.pending_dir / name, envelope)
            self._listing.remember(self.pending_dir, name, summary)
            self._where[report_id] = ("pending", name)
            log.info("spool.stored", id=report_id, size_bytes=len(envelope), watch=summary.watch)
            self.enforce_limits(now)
        return StoredReport(report_id, self.pending_dir / name)

    def record_attempt(self, report_id: str, error: str, at: float | None = None) -> None:
        """Count one failed delivery attempt of a pending report and remember why."""
        with self._lock:
            located = self._locate(report_id)
            if located is None or located[0] != "pending":
                return
            meta_path = self.pending_dir / (located[1].removesuffix(".env") + META_SUFFIX)
            meta = self._listing.read_meta(meta_path)
            meta["attempts"] = int(meta.get("attempts", 0)) + 1
            meta["last_error"] = error
            meta["last_attempt_at"] = self._clock() if at is None else at
            write_atomic(meta_path, dump(meta))

    def mark_delivered(self, report_id: str, at: float | None = None, status: int = 200) -> None:
        """Record a 2xx for a pending report, then remove it from pending."""
        with self._lock:
            located = self._locate(report_id)
            delivered_at = self._clock() if at is None else at
            record: dict[str, Any] = {"id": report_id, "delivered_at": delivered_at}
            record["http_status"] = status
            if located is not None and located[0] == "pending":
                entry = self._listing.entry_for(self.pending_dir, located[1], "pending",
                                                self.limits.max_bytes)
                if entry is not None:
                    record.update(record_fields(entry))
            ns = max(int(delivered_at * 1e9), self._last_ns + 1)
            self._last_ns = ns
            # The record is durable before the envelope goes: a crash in between is
            # finished by the next listing, never re-sent and never lost.
            write_atomic(self.delivered_dir / f"{ns:020d}-{report_id}.json", dump(record))
            if located is not None and located[0] == "pending":
                # No directory fsync: if a power cut undoes this unlink, the durable
                # record above makes the next listing finish it.
                self._remove_pair(self.pending_dir, located[1], durable=False)
            keep_newest_records(self.delivered_dir, self.limits.max_delivered_records)
            log.info("spool.delivered", id=report_id, http_status=status)

    def quarantine(
        self, report_id: str, status: int | None, reason: str, at: float | None = None
    ) -> None:
        """Move a pending report aside as refused, keeping the status and the reason."""
        with self._lock:
            located = self._locate(report_id)
            if located is None or located[0] != "pending":
                return
            name = located[1]
            stem = name.removesuffix(".env")
            meta = self._listing.read_meta(self.pending_dir / (stem + META_SUFFIX))
            meta.update(
                http_status=status,
                reason=reason,
                quarantined_at=self._clock() if at is None else at,
            )
            write_atomic(self.quarantine_dir / (stem + META_SUFFIX), dump(meta))
            (self.pending_dir / name).replace(self.quarantine_dir / name)
            fsync_dir(self.quarantine_dir)
            unlink(self.pending_dir / (stem + META_SUFFIX))
            fsync_dir(self.pending_dir)
            log.warning("spool.quarantined", id=report_id, http_status=status, reason=reason)

    def requeue(self, report_id: str) -> bool:
        """Move a quarantined report back to pending (after fixing, say, a wrong DSN key).

        Its attempt history starts over; False if it is not quarantined.
        """
        with self._lock:
            located = self._locate(report_id)
            if located is None or located[0] != "quarantined":
                return False
            name = located[1]
            stem = name.removesuffix(".env")
            (self.quarantine_dir / name).replace(self.pending_dir / name)
            fsync_dir(self.pending_dir)
            unlink(self.quarantine_dir / (stem + META_SUFFIX))
            fsync_dir(self.quarantine_dir)
            self._where.pop(report_id, None)
            log.info("spool.requeued", id=report_id)
            return True

    def purge(self, scope: PurgeScope = "quarantined") -> int:
        """Delete quarantined reports (or every report and record); return how many."""
        with self._lock:
            folders = [self.quarantine_dir]
            if scope == "all":
                folders += [self.pending_dir, self.delivered_dir]
            removed = 0
            for folder in folders:
                for name in file_names(folder):
                    if name.endswith((".env", ".json")) and not name.endswith(META_SUFFIX):
                        removed += 1
                    unlink(folder / name)
                fsync_dir(folder)
            log.info("spool.purged", scope=scope, removed=removed)
            return removed

    def enforce_limits(self, now: float | None = None) -> list[Dropped]:
        """Drop reports beyond the count, byte and age bounds (see ``retention``)."""
        with self._lock:
            now = self._clock() if now is None else now
            self._clean_stale_temp(now)
            stored: list[Stored] = []
            for state, folder in self._stored_folders():
                for name in file_names(folder):
                    if not ENVELOPE_NAME.match(name):
                        continue
                    size = self._sizes.get(name)
                    if size is None:
                        try:
                            size = os.lstat(folder / name).st_size
                        except FileNotFoundError:
                            continue
                        # Envelope files are written once and never change: cache the size.
                        self._sizes[name] = size
                    stored.append(Stored(name, state, created_at_of(name), size,
                                         _group(self._listing.cached(name))))
            live = {item.name for item in stored}
            for stale in [name for name in self._sizes if name not in live]:
                del self._sizes[stale]
            if len(stored) > self.limits.max_reports or \
                    sum(item.size_bytes for item in stored) > self.limits.max_bytes:
                stored = [replace(item, group=self._group_of(item)) for item in stored]
            dropped: list[Dropped] = []
            for item, reason in choose_drops(stored, self.limits, now):
                folder = self.pending_dir if item.state == "pending" else self.quarantine_dir
                self._remove_pair(folder, item.name)
                gone = Dropped(id_of(item.name), item.state, reason, item.created_at,
                               item.size_bytes)
                dropped.append(gone)
                log.warning("spool.dropped", id=gone.id, reason=reason, state=item.state,
                            size_bytes=item.size_bytes, watch=item.group[0],
                            kind=item.group[1])
                if self._on_drop is not None:
                    self._on_drop(gone)
            return dropped

    def _group_of(self, item: Stored) -> Group:
        """The (watch, kind) of a stored report: the listing's parse of it, made once."""
        folder = self.pending_dir if item.state == "pending" else self.quarantine_dir
        return _group(self._listing.summary_of(folder, item.name, self.limits.max_bytes))

    # --- reading -----------------------------------------------------------------

    def pending(self) -> list[SpoolEntry]:
        """Reports still to send, oldest first; anything unreadable is moved aside."""
        with self._lock:
            return self._list(self.pending_dir, "pending")

    def quarantined(self) -> list[SpoolEntry]:
        """Reports the server refused, oldest first."""
        with self._lock:
            return self._list(self.quarantine_dir, "quarantined")

    def delivered(self) -> list[SpoolEntry]:
        """Recently delivered reports (a bounded record), oldest first."""
        return read_records(self.delivered_dir)

    def list_all(self) -> list[SpoolEntry]:
        """Pending, quarantined and recently delivered reports, oldest first."""
        with self._lock:
            entries = self.pending() + self.quarantined() + self.delivered()
        return sorted(entries, key=lambda entry: entry.created_at)

    def get(self, report_id: str) -> SpoolEntry | None:
        """The report with this id in any state, or None."""
        matches = [entry for entry in self.list_all() if entry.id == report_id]
        return matches[-1] if matches else None

    def read(self, report_id: str) -> bytes:
        """The envelope bytes of a pending or quarantined report; KeyError if not there.

        A file that turns out not to be an envelope is moved aside and reported missing.
        """
        with self._lock:
            located = self._locate(report_id)
            if located is None:
                raise KeyError(report_id)
            folder = self.pending_dir if located[0] == "pending" else self.quarantine_dir
            try:
                data = read_regular(folder / located[1], self.limits.max_bytes)
                if not self._listing.checked(folder, located[1], len(data)):
                    parse_envelope(data)  # not listed or written by this process yet
            except FileNotFoundError:
                raise KeyError(report_id) from None
            except (OSError, ValueError) as exc:
                self._listing.set_aside(folder, [located[1]], str(exc))
                raise KeyError(report_id) from None
            return data

    def pending_count(self) -> int:
        """How many envelope files wait in pending, whatever they are for (what a flush
        must still send; cheap: names only, no parsing). For what status calls "pending"
        (crash reports only), see ``waiting``."""
        return len(self._listing.envelope_names(self.pending_dir, self._lock))

    def waiting(self) -> Waiting:
        """What waits in pending, by purpose (crash reports, stats summaries, the rest) and
        when the oldest crash report was written (``Listing.waiting``)."""
        return self._listing.waiting(self.pending_dir, self._lock, self.limits.max_bytes)

    def oldest_pending_at(self) -> float | None:
        """When the oldest waiting crash report was written, or None."""
        return self.waiting().oldest_report_at

    def quarantined_count(self) -> int:
        """How many refused reports are set aside (cheap: names only, no parsing)."""
        return len(self._listing.envelope_names(self.quarantine_dir, self._lock))

    # --- internals ---------------------------------------------------------------

    def _list(self, folder: Path, state: EntryState) -> list[SpoolEntry]:
        """Parse a folder's envelopes, finishing interrupted moves and moving garbage aside
        (``listing``: in time proportional to the reports, junk set aside once)."""
        delivered_ids = {id_of(n) for n in file_names(self.delivered_dir) if RECORD_NAME.match(n)}
        entries, finished = self._listing.entries(folder, state, delivered_ids,
                                                  self.limits.max_bytes)
        for name in finished:
            self._remove_pair(folder, name)
            log.info("spool.delivery_completed", id=id_of(name))
        for entry in entries:
            self._where[entry.id] = (state, entry.name)
        return entries

    def _locate(self, report_id: str) -> tuple[EntryState, str] | None:
        """Where a report's envelope is: its state and file name."""
        known = self._where.get(report_id)
        if known is not None and (dict(self._stored_folders())[known[0]] / known[1]).exists():
            return known
        suffix = f"-{report_id}.env"
        for state, folder in self._stored_folders():
            for name in file_names(folder):
                if name.endswith(suffix) and ENVELOPE_NAME.match(name):
                    self._where[report_id] = (state, name)
                    return state, name
        self._where.pop(report_id, None)
        return None

    def _stored_folders(self) -> list[tuple[EntryState, Path]]:
        return [("pending", self.pending_dir), ("quarantined", self.quarantine_dir)]

    def _remove_pair(self, folder: Path, name: str, durable: bool = True) -> None:
        """Remove an envelope and its sidecar (durably unless a record already covers it)."""
        unlink(folder / name)
        unlink(folder / (name.removesuffix(".env") + META_SUFFIX))
        if durable:
            fsync_dir(folder)
        self._listing.forget(name)

    def _clean_stale_temp(self, now: float) -> None:  # a killed writer's, never a fresh one
        for folder in (self.pending_dir, self.quarantine_dir, self.delivered_dir):
            remove_stale_temp(folder, now - _STALE_TEMP_SECONDS)


def _group(summary: EnvelopeSummary | None) -> Group:
    """The (watch, kind) retention groups a report by; unknown for an unreadable file."""
    return (None, None) if summary is None else (summary.watch, summary.kind)

"""Reading a spool folder: envelope summaries cached per file, junk set aside in batches.

The cost of a listing follows the reports, not what else sits in the folder: a name that
cannot be a report is set aside without being opened, every file set aside in one batch per
reason (one fsync per folder, ``corrupt/`` trimmed once, one log line), and a file set
aside is never looked at again. Only well-named files are opened and parsed, once each:
their summaries are cached by (size, mtime).
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import structlog

from crash_reports.common.files import read_regular
from crash_reports.spool.envelope import EnvelopeSummary, Purpose, parse_envelope
from crash_reports.spool.records import (
    ENVELOPE_NAME,
    META_SUFFIX,
    EntryState,
    SpoolEntry,
    Waiting,
    created_at_of,
    entry_from_file,
    file_names,
    id_of,
    move_aside,
    not_regular,
    read_meta,
    unlink,
)

log = structlog.get_logger(component="spool")

MAX_CORRUPT_FILES = 100


class Listing:
    """Entries of a pending or quarantine folder; the caller holds the spool's lock."""

    def __init__(self, corrupt_dir: Path) -> None:
        self.corrupt_dir = corrupt_dir
        self._summaries: dict[str, tuple[int, int, EnvelopeSummary]] = {}
        self._unreadable: set[str] = set()

    def entries(self, folder: Path, state: EntryState, delivered_ids: set[str],
                max_bytes: int) -> tuple[list[SpoolEntry], list[str]]:
        """The folder's envelopes, oldest first, and the names whose id already has a
        delivered record (the caller finishes their removal). Sidecars left by a crash are
        removed; anything else that is not an envelope is set aside."""
        # A directory or FIFO named like a report must not stop delivery or hang it.
        self.set_aside(folder, not_regular(folder), "not a regular file")
        names = file_names(folder)
        stems = {n.removesuffix(".env") for n in names if ENVELOPE_NAME.match(n)}
        entries: list[SpoolEntry] = []
        finished: list[str] = []
        foreign: list[str] = []
        damaged: dict[str, list[str]] = {}
        for name in names:
            if name.endswith(META_SUFFIX):
                if name.removesuffix(META_SUFFIX) not in stems:
                    unlink(folder / name)  # left by a crash mid-move; its report moved on
                continue
            if not ENVELOPE_NAME.match(name):
                foreign.append(name)
            elif state == "pending" and id_of(name) in delivered_ids:
                finished.append(name)
            else:
                entry = self.entry_for(folder, name, state, max_bytes, damaged)
                if entry is not None:
                    entries.append(entry)
        self.set_aside(folder, foreign, "not a spool file name")
        for reason, bad in damaged.items():
            self.set_aside(folder, bad, reason)
        return entries, finished

    def envelope_names(self, folder: Path, lock: AbstractContextManager[object]) -> list[str]:
        """The envelope names in ``folder``, sorted (cheap: names only); files whose names
        cannot be reports are set aside on the way, under ``lock`` (taken only then), so
        the status published each tick never pays for them again."""
        names = file_names(folder)
        envelopes = [name for name in names if ENVELOPE_NAME.match(name)]
        if len(envelopes) < len(names):
            foreign = [n for n in names if not ENVELOPE_NAME.match(n) and
                       not n.endswith(META_SUFFIX)]
            with lock:
                self.set_aside(folder, foreign, "not a spool file name")
        return envelopes

    def remember(self, folder: Path, name: str, summary: EnvelopeSummary) -> None:
        """Cache the summary of an envelope this process just wrote (parsed by the write),
        so neither its listing nor its count parses it again."""
        info = os.lstat(folder / name)
        self._summaries[name] = (info.st_size, info.st_mtime_ns, summary)

    def checked(self, folder: Path, name: str, size_bytes: int) -> bool:
        """Whether this file was parsed whole already (by its write or a listing) and is
        unchanged since (same size and mtime): then a read need not parse it again."""
        cached = self._summaries.get(name)
        if cached is None or cached[0] != size_bytes:
            return False
        try:
            info = os.lstat(folder / name)
        except OSError:
            return False
        return cached[:2] == (info.st_size, info.st_mtime_ns)

    def cached(self, name: str) -> EnvelopeSummary | None:
        """The summary already parsed for a file (by its write, a listing or a count), or
        None; never reads the file."""
        found = self._summaries.get(name)
        return None if found is None else found[2]

    def waiting(self, folder: Path, lock: AbstractContextManager[object],
                max_bytes: int) -> Waiting:
        """What waits in ``folder``, by purpose, and when its oldest crash report was
        written. Each file is parsed once in this process's life (a write caches what it
        parsed); later calls read names only."""
        names = self.envelope_names(folder, lock)
        counts = dict.fromkeys(Purpose, 0)
        oldest: float | None = None
        with lock:
            self._keep_only(set(names))
            for name in names:
                summary = self.summary_of(folder, name, max_bytes)
                if summary is None:
                    continue
                counts[summary.purpose] += 1
                if summary.purpose is Purpose.REPORT and oldest is None:
                    oldest = created_at_of(name)  # names sort oldest first
        return Waiting(counts[Purpose.REPORT], counts[Purpose.STATS], counts[Purpose.OTHER],
                       oldest)

    def summary_of(self, folder: Path, name: str, max_bytes: int) -> EnvelopeSummary | None:
        """An envelope's summary for counting: cached by name (an envelope file never
        changes once written), else read and parsed once; None if it cannot be read (the
        next listing sets it aside; counting never moves files)."""
        cached = self._summaries.get(name)
        if cached is not None:
            return cached[2]
        if name in self._unreadable:
            return None
        path = folder / name
        try:
            info = os.lstat(path)
            summary = parse_envelope(read_regular(path, max_bytes))
        except FileNotFoundError:
            return None  # moved meanwhile (delivered, requeued): not unreadable
        except (OSError, ValueError):
            self._unreadable.add(name)
            return None
        self._summaries[name] = (info.st_size, info.st_mtime_ns, summary)
        return summary

    def _keep_only(self, names: set[str]) -> None:
        """Forget what was cached of files no longer listed (delivered, purged or moved by
        another process), so the caches hold at most what the folder holds."""
        for name in [n for n in self._summaries if n not in names]:
            del self._summaries[name]
        self._unreadable &= names

    def entry_for(self, folder: Path, name: str, state: EntryState, max_bytes: int,
                  damaged: dict[str, list[str]] | None = None) -> SpoolEntry | None:
        """The entry for one envelope file, or None if it vanished or is not an envelope
        (set aside at once, or added to ``damaged`` by reason for the caller's batch)."""
        path = folder / name
        try:
            info = os.lstat(path)
            cached = self._summaries.get(name)
            if cached is not None and cached[:2] == (info.st_size, info.st_mtime_ns):
                summary = cached[2]
            else:
                summary = parse_envelope(read_regular(path, max_bytes))
                self._summaries[name] = (info.st_size, info.st_mtime_ns, summary)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            if damaged is None:
                self.set_aside(folder, [name], str(exc))
            else:
                damaged.setdefault(str(exc), []).append(name)
            return None
        meta = self.read_meta(folder / (name.removesuffix(".env") + META_SUFFIX))
        return entry_from_file(name, state, summary, info.st_size, meta)

    def read_meta(self, path: Path) -> dict[str, Any]:
        """A sidecar's content; a damaged sidecar is set aside and counts as empty."""
        try:
            return read_meta(path)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            self.set_aside(path.parent, [path.name], "sidecar is not JSON")
            return {}

    def set_aside(self, folder: Path, names: list[str], reason: str) -> None:
        """Move files that are not reports to ``corrupt/`` in one batch, with one log line
        (``files`` how many, ``kept`` how many ``corrupt/`` keeps of them)."""
        if not names:
            return
        moved = move_aside(folder, names, self.corrupt_dir, MAX_CORRUPT_FILES)
        for name in names:
            self.forget(name)
        if moved or len(names) > MAX_CORRUPT_FILES:
            log.warning("spool.corrupt", file=names[0], files=len(names), folder=folder.name,
                        reason=reason, moved_to=str(moved[0]) if moved else None,
                        kept=len(moved))

    def forget(self, name: str) -> None:
        """Drop the cached summary of a file that left the folder."""
        self._summaries.pop(name, None)
        self._unreadable.discard(name)

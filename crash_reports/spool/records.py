"""The spool's files: names, sidecars and delivered records, and the entries a listing shows.

A report's file name is ``<created_ns>-<event_id>.env`` (20 digits, 32 hex); its sidecar
adds ``.meta.json``; a delivered record is ``<delivered_ns>-<event_id>.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from crash_reports.common.atomic import fsync_dir
from crash_reports.common.files import read_regular
from crash_reports.spool.envelope import EnvelopeHeader, EnvelopeSummary

EntryState = Literal["pending", "quarantined", "delivered"]

ENVELOPE_NAME = re.compile(r"^(\d{20})-([0-9a-f]{32})\.env$")
META_SUFFIX = ".meta.json"
RECORD_NAME = re.compile(r"^(\d{20})-([0-9a-f]{32})\.json$")
MAX_SIDECAR_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredReport:
    """What a write put in the spool: the report's id and the file holding it."""

    id: str
    path: Path


@dataclass(frozen=True)
class SpoolEntry:
    """One report as ``reports list`` shows it."""

    id: str
    state: EntryState
    created_at: float
    title: str
    watch: str | None = None
    kind: str | None = None
    categories: tuple[str, ...] = ()
    size_bytes: int = 0
    attempts: int = 0
    last_error: str | None = None
    last_attempt_at: float | None = None
    http_status: int | None = None
    reason: str | None = None
    quarantined_at: float | None = None
    delivered_at: float | None = None
    name: str = field(default="", repr=False)
    # The parsed header line, carried from the listing to the upload (never parsed again).
    header: EnvelopeHeader | None = field(default=None, repr=False, compare=False)

    @property
    def is_crash_report(self) -> bool:
        """A crash report about a watched process (not a stats summary, not the daemon's own
        error): what ``reports list``, the page and every "pending" figure count."""
        return self.kind is not None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``reports list --json``)."""
        data = asdict(self)
        data.pop("name")
        data.pop("header")
        data["categories"] = list(self.categories)
        return data


@dataclass(frozen=True, slots=True)
class Waiting:
    """What waits in pending for delivery, by purpose: ``reports`` (crash reports) is the
    "pending" figure everywhere; stats summaries and the daemon's own errors are apart."""

    reports: int = 0
    stats: int = 0
    other: int = 0
    oldest_report_at: float | None = None

    @property
    def total(self) -> int:
        """Every envelope waiting, whatever it is for (what a flush must still send)."""
        return self.reports + self.stats + self.other


def read_meta(path: Path) -> dict[str, Any]:
    """A sidecar's content ({} if it holds no object); OSError or ValueError if unreadable."""
    meta = json.loads(read_regular(path, MAX_SIDECAR_BYTES))
    return meta if isinstance(meta, dict) else {}


def read_records(folder: Path) -> list[SpoolEntry]:
    """The delivered records in ``folder``, oldest first; unreadable ones are skipped."""
    entries: list[SpoolEntry] = []
    for name in file_names(folder):
        if not RECORD_NAME.match(name):
            continue
        try:
            record = json.loads(read_regular(folder / name, MAX_SIDECAR_BYTES))
            entries.append(entry_from_record(record))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return entries


def keep_newest_records(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest delivered records in ``folder``."""
    records = sorted(n for n in file_names(folder) if RECORD_NAME.match(n))
    for old in records[: max(0, len(records) - keep)]:
        unlink(folder / old)


def remove_stale_temp(folder: Path, older_than: float) -> None:
    """Remove temp (dot) files last changed before ``older_than`` (a killed writer's)."""
    for name in file_names(folder, hidden=True):
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(folder / name).st_mtime < older_than:
                unlink(folder / name)


def file_names(folder: Path, hidden: bool = False) -> list[str]:
    """Sorted names of the regular files in ``folder``; temp (dot) files only when asked.

    Directories, FIFOs, symlinks and devices are left out (see ``not_regular``): nothing
    in the spool ever opens one.
    """
    try:
        with os.scandir(folder) as scan:
            names = [entry.name for entry in scan if entry.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    return sorted(n for n in names if hidden or not n.startswith("."))


def not_regular(folder: Path) -> list[str]:
    """Names in ``folder`` that are not regular files (a directory, FIFO or symlink)."""
    try:
        with os.scandir(folder) as scan:
            return sorted(e.name for e in scan if not e.is_file(follow_symlinks=False))
    except FileNotFoundError:
        return []


def unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def move_aside(folder: Path, names: list[str], corrupt_dir: Path, keep: int) -> list[Path]:
    """Move the files ``names`` of ``folder`` into ``corrupt_dir`` in one batch, keeping the
    newest ``keep`` files there; return where the kept ones went.

    One fsync per folder for the whole batch, and ``corrupt_dir`` is trimmed once: setting
    20,000 junk files aside costs a rename or an unlink each, not a listing each. Names past
    the ``keep`` that would be trimmed at once are deleted where they are.
    """
    extra = max(0, len(names) - keep)
    for name in names[:extra]:
        remove_any(folder / name)
    base = time.time_ns()
    moved: list[Path] = []
    for offset, name in enumerate(names[extra:]):
        target = corrupt_dir / f"{base + offset:020d}-{name}"
        try:
            (folder / name).replace(target)
        except FileNotFoundError:
            continue
        moved.append(target)
    if not moved and not extra:
        return moved
    fsync_dir(corrupt_dir)
    fsync_dir(folder)
    kept = sorted(file_names(corrupt_dir) + not_regular(corrupt_dir))
    for old in kept[: max(0, len(kept) - keep)]:
        remove_any(corrupt_dir / old)
    return moved


def remove_any(path: Path) -> None:
    """Remove a file, symlink (not its target), FIFO or whole directory tree."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except FileNotFoundError:
        return


def dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def id_of(name: str) -> str:
    return name.split("-", 1)[1].split(".", 1)[0]


def created_at_of(name: str) -> float:
    return int(name.split("-", 1)[0]) / 1e9


def record_fields(entry: SpoolEntry) -> dict[str, Any]:
    """What a delivered record keeps of the report it was."""
    return {
        "created_at": entry.created_at,
        "title": entry.title,
        "watch": entry.watch,
        "kind": entry.kind,
        "categories": list(entry.categories),
        "size_bytes": entry.size_bytes,
        "attempts": entry.attempts,
        "last_error": entry.last_error,
    }


def entry_from_file(
    name: str, state: EntryState, summary: EnvelopeSummary, size_bytes: int, meta: dict[str, Any]
) -> SpoolEntry:
    """The entry of a pending or quarantined envelope file, from its summary and sidecar."""
    return SpoolEntry(
        id=id_of(name),
        state=state,
        created_at=created_at_of(name),
        title=summary.title,
        watch=summary.watch,
        kind=summary.kind,
        categories=summary.categories,
        size_bytes=size_bytes,
        attempts=_int(meta.get("attempts")) or 0,
        last_error=_str(meta.get("last_error")),
        last_attempt_at=_float(meta.get("last_attempt_at")),
        http_status=_int(meta.get("http_status")),
        reason=_str(meta.get("reason")),
        quarantined_at=_float(meta.get("quarantined_at")),
        name=name,
        header=summary.header,
    )


def entry_from_record(record: dict[str, Any]) -> SpoolEntry:
    delivered_at = float(record["delivered_at"])
    return SpoolEntry(
        id=str(record["id"]),
        state="delivered",
        created_at=_float(record.get("created_at")) or delivered_at,
        title=_str(record.get("title")) or "(unknown)",
        watch=_str(record.get("watch")),
        kind=_str(record.get("kind")),
        categories=tuple(str(c) for c in record.get("categories") or ()),
        size_bytes=_int(record.get("size_bytes")) or 0,
        attempts=_int(record.get("attempts")) or 0,
        last_error=_str(record.get("last_error")),
        http_status=_int(record.get("http_status")),
        delivered_at=delivered_at,
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None

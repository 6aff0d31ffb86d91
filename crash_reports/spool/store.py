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

import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import structlog

from crash_reports.storage.atomic import fsync_dir, write_atomic

log = structlog.get_logger(__name__)

EntryState = Literal["pending", "quarantined", "delivered"]
PurgeScope = Literal["quarantined", "all"]

_ENVELOPE_NAME = re.compile(r"^(\d{20})-([0-9a-f]{32})\.env$")
_META_SUFFIX = ".meta.json"
_RECORD_NAME = re.compile(r"^(\d{20})-([0-9a-f]{32})\.json$")
_STALE_TEMP_SECONDS = 300.0
_MAX_CORRUPT_FILES = 100
_TITLE_MAX_CHARS = 200

# Item type -> the data category Sentry rate-limits it under.
_CATEGORY_OF_ITEM = {
    "event": "error",
    "transaction": "transaction",
    "attachment": "attachment",
    "session": "session",
    "sessions": "session",
    "client_report": "internal",
    "profile": "profile",
    "profile_chunk": "profile_chunk",
    "check_in": "monitor",
    "statsd": "metric_bucket",
    "log": "log_item",
    "span": "span",
}


@dataclass(frozen=True)
class SpoolLimits:
    """How much the spool may hold; beyond any bound the oldest report is dropped."""

    max_reports: int = 200
    max_bytes: int = 64 * 1024 * 1024
    max_age_seconds: float = 30 * 24 * 3600.0
    max_delivered_records: int = 50


@dataclass(frozen=True)
class EnvelopeSummary:
    """What a listing needs from an envelope, read without sentry-sdk."""

    event_id: str | None
    categories: tuple[str, ...]
    watch: str | None
    kind: str | None
    title: str


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

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``reports list --json``)."""
        data = asdict(self)
        data.pop("name")
        data["categories"] = list(self.categories)
        return data


@dataclass(frozen=True)
class Dropped:
    """A report removed by the spool's bounds (count it as dropped by retention)."""

    id: str
    state: EntryState
    reason: Literal["max_reports", "max_bytes", "max_age"]
    created_at: float
    size_bytes: int


def parse_envelope(data: bytes) -> EnvelopeSummary:
    """Check that ``data`` is a whole Sentry envelope and summarize it; ValueError if not.

    Stricter than ``Envelope.deserialize``: a declared item length must be fully present
    and event payloads must be JSON objects, so a truncated file is caught.

    >>> env = b'{"event_id":"' + b"a" * 32 + b'"}\\n{"type":"event","length":17}\\n'
    >>> parse_envelope(env + b'{"message":"hi"}\\n').title
    'hi'
    >>> parse_envelope(env + b'{"mess')
    Traceback (most recent call last):
    ...
    ValueError: item 1 truncated: 6 of 17 bytes
    """
    first_nl = data.find(b"\n")
    header = _json_object(data if first_nl < 0 else data[:first_nl], "envelope header")
    event_id = _event_id(header.get("event_id"))
    categories: list[str] = []
    event: dict[str, Any] | None = None
    pos = len(data) if first_nl < 0 else first_nl + 1
    while pos < len(data):
        nl = data.find(b"\n", pos)
        line_end = len(data) if nl < 0 else nl
        line = data[pos:line_end].strip()
        if not line:
            if data[pos:].strip():
                raise ValueError("blank line before the end of the envelope")
            break
        number = len(categories) + 1
        item_header = _json_object(line, f"item {number} header")
        item_type = item_header.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise ValueError(f"item {number} has no type")
        payload_start = line_end + 1
        length = item_header.get("length")
        if length is None:
            end = data.find(b"\n", payload_start)
            payload_end = len(data) if end < 0 else end
            payload = data[payload_start:payload_end]
            pos = payload_end + 1
        elif isinstance(length, int) and not isinstance(length, bool) and length >= 0:
            payload = data[payload_start : payload_start + length]
            if len(payload) < length:
                raise ValueError(f"item {number} truncated: {len(payload)} of {length} bytes")
            after = payload_start + length
            if after < len(data) and data[after : after + 1] != b"\n":
                raise ValueError(f"item {number} is not followed by a newline")
            pos = after + 1
        else:
            raise ValueError(f"item {number} has an invalid length")
        if item_type in ("event", "transaction"):
            parsed = _json_object(payload, f"item {number} payload")
            event = event if event is not None else parsed
        categories.append(_CATEGORY_OF_ITEM.get(item_type, item_type))
    if not categories:
        raise ValueError("envelope has no items")
    tags = _tags(event.get("tags")) if event else {}
    return EnvelopeSummary(
        event_id=event_id or (_event_id(event.get("event_id")) if event else None),
        categories=tuple(dict.fromkeys(categories)),
        watch=tags.get("watch"),
        kind=tags.get("kind"),
        title=_title(event) if event else f"({', '.join(dict.fromkeys(categories))})",
    )


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse ``raw`` as a JSON object or raise ValueError naming ``what``."""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


def _event_id(value: Any) -> str | None:
    """A normalized 32-hex event id, None when absent; ValueError when malformed."""
    if value is None:
        return None
    if isinstance(value, str):
        hex_id = value.replace("-", "").lower()
        if re.fullmatch(r"[0-9a-f]{32}", hex_id):
            return hex_id
    raise ValueError("event_id is not a 32-digit hex id")


def _tags(raw: Any) -> dict[str, str]:
    """Sentry tags come as a dict or as a list of pairs."""
    pairs: Iterable[Any] = raw.items() if isinstance(raw, dict) else raw or []
    tags: dict[str, str] = {}
    for pair in pairs:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            tags[str(pair[0])] = str(pair[1])
    return tags


def _title(event: dict[str, Any]) -> str:
    """The line a person reads: message, log entry, exception, or transaction."""
    candidates: list[Any] = []
    for key in ("message", "logentry"):
        value = event.get(key)
        if isinstance(value, dict):
            candidates += [value.get("formatted"), value.get("message")]
        else:
            candidates.append(value)
    exception = event.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else exception
    if isinstance(values, list) and values and isinstance(values[-1], dict):
        last = values[-1]
        candidates.append(f"{last.get('type', 'Error')}: {last.get('value', '')}".rstrip(": "))
    candidates.append(event.get("transaction"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()[:_TITLE_MAX_CHARS]
    return "(untitled event)"


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
        self._summaries: dict[str, tuple[int, int, EnvelopeSummary]] = {}
        # id -> (state, file name): a hint only, checked against the disk before use.
        self._where: dict[str, tuple[EntryState, str]] = {}
        self._sizes: dict[str, int] = {}
        self.pending_dir = self.root / "pending"
        self.quarantine_dir = self.root / "quarantine"
        self.delivered_dir = self.root / "delivered"
        self.corrupt_dir = self.root / "corrupt"
        for directory in (
            self.root,
            self.pending_dir,
            self.quarantine_dir,
            self.delivered_dir,
            self.corrupt_dir,
        ):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.chmod(0o700)

    @property
    def lock_path(self) -> Path:
        """The file the flusher locks so two processes never send at once."""
        return self.root / "flush.lock"

    # --- writing -----------------------------------------------------------------

    def put(self, envelope: bytes) -> str:
        """Store one serialized envelope durably and return its report id (its event_id).

        ValueError if ``envelope`` is not a whole envelope; OSError (e.g. a full disk)
        leaves nothing visible.  An id already pending or quarantined is not stored twice.
        """
        summary = parse_envelope(envelope)
        report_id = summary.event_id or uuid.uuid4().hex
        with self._lock:
            if self._locate(report_id) is not None:
                log.info("spool.duplicate", id=report_id)
                return report_id
            now = self._clock()
            created_ns = max(int(now * 1e9), self._last_ns + 1)
            self._last_ns = created_ns
            name = f"{created_ns:020d}-{report_id}.env"
            write_atomic(self.pending_dir / name, envelope)
            self._where[report_id] = ("pending", name)
            log.info("spool.stored", id=report_id, size_bytes=len(envelope), watch=summary.watch)
            self.enforce_limits(now)
        return report_id

    def record_attempt(self, report_id: str, error: str, at: float | None = None) -> None:
        """Count one failed delivery attempt of a pending report and remember why."""
        with self._lock:
            located = self._locate(report_id)
            if located is None or located[0] != "pending":
                return
            meta_path = self.pending_dir / (located[1].removesuffix(".env") + _META_SUFFIX)
            meta = self._read_meta(meta_path)
            meta["attempts"] = int(meta.get("attempts", 0)) + 1
            meta["last_error"] = error
            meta["last_attempt_at"] = self._clock() if at is None else at
            write_atomic(meta_path, _dump(meta))

    def mark_delivered(self, report_id: str, at: float | None = None, status: int = 200) -> None:
        """Record a 2xx for a pending report, then remove it from pending."""
        with self._lock:
            located = self._locate(report_id)
            delivered_at = self._clock() if at is None else at
            record: dict[str, Any] = {"id": report_id, "delivered_at": delivered_at}
            record["http_status"] = status
            if located is not None and located[0] == "pending":
                entry = self._entry_for(self.pending_dir, located[1], "pending")
                if entry is not None:
                    record.update(_record_fields(entry))
            ns = max(int(delivered_at * 1e9), self._last_ns + 1)
            self._last_ns = ns
            # The record is durable before the envelope goes: a crash in between is
            # finished by the next listing, never re-sent and never lost.
            write_atomic(self.delivered_dir / f"{ns:020d}-{report_id}.json", _dump(record))
            if located is not None and located[0] == "pending":
                # No directory fsync: if a power cut undoes this unlink, the durable
                # record above makes the next listing finish it.
                self._remove_pair(self.pending_dir, located[1], durable=False)
            self._prune_delivered()
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
            meta = self._read_meta(self.pending_dir / (stem + _META_SUFFIX))
            meta.update(
                http_status=status,
                reason=reason,
                quarantined_at=self._clock() if at is None else at,
            )
            write_atomic(self.quarantine_dir / (stem + _META_SUFFIX), _dump(meta))
            (self.pending_dir / name).replace(self.quarantine_dir / name)
            fsync_dir(self.quarantine_dir)
            _unlink(self.pending_dir / (stem + _META_SUFFIX))
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
            _unlink(self.quarantine_dir / (stem + _META_SUFFIX))
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
                for name in _names(folder):
                    if name.endswith((".env", ".json")) and not name.endswith(_META_SUFFIX):
                        removed += 1
                    _unlink(folder / name)
                fsync_dir(folder)
            log.info("spool.purged", scope=scope, removed=removed)
            return removed

    def enforce_limits(self, now: float | None = None) -> list[Dropped]:
        """Drop the oldest reports beyond the count, byte and age bounds; return them."""
        with self._lock:
            now = self._clock() if now is None else now
            self._clean_stale_temp(now)
            stored: list[tuple[str, EntryState, Path, int]] = []
            for state, folder in self._stored_folders():
                for name in _names(folder):
                    if not _ENVELOPE_NAME.match(name):
                        continue
                    size = self._sizes.get(name)
                    if size is None:
                        try:
                            size = (folder / name).stat().st_size
                        except FileNotFoundError:
                            continue
                        # Envelope files are written once and never change: cache the size.
                        self._sizes[name] = size
                    stored.append((name, state, folder, size))
            live = {item[0] for item in stored}
            for stale in [name for name in self._sizes if name not in live]:
                del self._sizes[stale]
            stored.sort(key=lambda item: item[0])
            total_bytes = sum(item[3] for item in stored)
            count = len(stored)
            dropped: list[Dropped] = []
            for name, state, folder, size in stored:
                created_at = _created_at(name)
                reason: Literal["max_reports", "max_bytes", "max_age"] | None = None
                if created_at < now - self.limits.max_age_seconds:
                    reason = "max_age"
                elif count > self.limits.max_reports:
                    reason = "max_reports"
                elif total_bytes > self.limits.max_bytes:
                    reason = "max_bytes"
                if reason is None:
                    continue
                self._remove_pair(folder, name)
                count -= 1
                total_bytes -= size
                gone = Dropped(_id_of(name), state, reason, created_at, size)
                dropped.append(gone)
                log.warning(
                    "spool.dropped", id=gone.id, reason=reason, state=state, size_bytes=size
                )
                if self._on_drop is not None:
                    self._on_drop(gone)
            return dropped

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
        entries: list[SpoolEntry] = []
        for name in _names(self.delivered_dir):
            if not _RECORD_NAME.match(name):
                continue
            try:
                record = json.loads((self.delivered_dir / name).read_bytes())
                entries.append(_entry_from_record(record))
            except (OSError, ValueError, TypeError, KeyError):
                continue
        return entries

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
                data = (folder / located[1]).read_bytes()
                parse_envelope(data)
            except FileNotFoundError:
                raise KeyError(report_id) from None
            except ValueError as exc:
                self._move_corrupt(folder, located[1], str(exc))
                raise KeyError(report_id) from None
            return data

    def pending_count(self) -> int:
        """How many envelope files wait in pending (cheap: names only, no parsing)."""
        return sum(1 for name in _names(self.pending_dir) if _ENVELOPE_NAME.match(name))

    def oldest_pending_at(self) -> float | None:
        """When the oldest waiting report was written (cheap: from its file name), or None."""
        for name in _names(self.pending_dir):
            if _ENVELOPE_NAME.match(name):
                return _created_at(name)
        return None

    def quarantined_count(self) -> int:
        """How many refused reports are set aside (cheap: names only, no parsing)."""
        return sum(1 for name in _names(self.quarantine_dir) if _ENVELOPE_NAME.match(name))

    # --- internals ---------------------------------------------------------------

    def _list(self, folder: Path, state: EntryState) -> list[SpoolEntry]:
        """Parse a folder's envelopes, finishing interrupted moves and moving garbage aside."""
        names = _names(folder)
        delivered_ids = {_id_of(n) for n in _names(self.delivered_dir) if _RECORD_NAME.match(n)}
        stems = {n.removesuffix(".env") for n in names if _ENVELOPE_NAME.match(n)}
        entries: list[SpoolEntry] = []
        for name in names:
            if name.endswith(_META_SUFFIX):
                if name.removesuffix(_META_SUFFIX) not in stems:
                    _unlink(folder / name)  # left by a crash mid-move; its report moved on
                continue
            if not _ENVELOPE_NAME.match(name):
                self._move_corrupt(folder, name, "not a spool file name")
                continue
            if state == "pending" and _id_of(name) in delivered_ids:
                self._remove_pair(folder, name)
                log.info("spool.delivery_completed", id=_id_of(name))
                continue
            entry = self._entry_for(folder, name, state)
            if entry is not None:
                entries.append(entry)
        return entries

    def _entry_for(self, folder: Path, name: str, state: EntryState) -> SpoolEntry | None:
        """The entry for one envelope file, or None if it vanished or was moved aside."""
        path = folder / name
        try:
            stat = path.stat()
            cached = self._summaries.get(name)
            if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
                summary = cached[2]
            else:
                summary = parse_envelope(path.read_bytes())
                self._summaries[name] = (stat.st_size, stat.st_mtime_ns, summary)
        except FileNotFoundError:
            return None
        except ValueError as exc:
            self._move_corrupt(folder, name, str(exc))
            return None
        meta = self._read_meta(folder / (name.removesuffix(".env") + _META_SUFFIX))
        if state != "delivered":
            self._where[_id_of(name)] = (state, name)
        return SpoolEntry(
            id=_id_of(name),
            state=state,
            created_at=_created_at(name),
            title=summary.title,
            watch=summary.watch,
            kind=summary.kind,
            categories=summary.categories,
            size_bytes=stat.st_size,
            attempts=_int(meta.get("attempts")) or 0,
            last_error=_str(meta.get("last_error")),
            last_attempt_at=_float(meta.get("last_attempt_at")),
            http_status=_int(meta.get("http_status")),
            reason=_str(meta.get("reason")),
            quarantined_at=_float(meta.get("quarantined_at")),
            name=name,
        )

    def _locate(self, report_id: str) -> tuple[EntryState, str] | None:
        """Where a report's envelope is: its state and file name."""
        known = self._where.get(report_id)
        if known is not None:
            folder = self.pending_dir if known[0] == "pending" else self.quarantine_dir
            if (folder / known[1]).exists():
                return known
        suffix = f"-{report_id}.env"
        for state, folder in self._stored_folders():
            for name in _names(folder):
                if name.endswith(suffix) and _ENVELOPE_NAME.match(name):
                    self._where[report_id] = (state, name)
                    return state, name
        self._where.pop(report_id, None)
        return None

    def _stored_folders(self) -> list[tuple[EntryState, Path]]:
        """The folders that hold envelopes, with the state each means."""
        return [("pending", self.pending_dir), ("quarantined", self.quarantine_dir)]

    def _read_meta(self, path: Path) -> dict[str, Any]:
        """A sidecar's content; a damaged sidecar is moved aside and counts as empty."""
        try:
            meta = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            self._move_corrupt(path.parent, path.name, "sidecar is not JSON")
            return {}
        return meta if isinstance(meta, dict) else {}

    def _move_corrupt(self, folder: Path, name: str, reason: str) -> None:
        """Move a file that is not a report out of the way, keeping it for a person."""
        target = self.corrupt_dir / f"{time.time_ns():020d}-{name}"
        try:
            (folder / name).replace(target)
        except FileNotFoundError:
            return
        fsync_dir(self.corrupt_dir)
        fsync_dir(folder)
        self._summaries.pop(name, None)
        log.warning(
            "spool.corrupt", file=name, folder=folder.name, reason=reason, moved_to=str(target)
        )
        kept = sorted(_names(self.corrupt_dir))
        for old in kept[: max(0, len(kept) - _MAX_CORRUPT_FILES)]:
            _unlink(self.corrupt_dir / old)

    def _remove_pair(self, folder: Path, name: str, durable: bool = True) -> None:
        """Remove an envelope and its sidecar (durably unless a record already covers it)."""
        _unlink(folder / name)
        _unlink(folder / (name.removesuffix(".env") + _META_SUFFIX))
        if durable:
            fsync_dir(folder)
        self._summaries.pop(name, None)

    def _prune_delivered(self) -> None:
        """Keep only the newest delivered records."""
        records = sorted(n for n in _names(self.delivered_dir) if _RECORD_NAME.match(n))
        for old in records[: max(0, len(records) - self.limits.max_delivered_records)]:
            _unlink(self.delivered_dir / old)

    def _clean_stale_temp(self, now: float) -> None:
        """Remove temp files a killed writer left behind (never a fresh one in use)."""
        for folder in (self.pending_dir, self.quarantine_dir, self.delivered_dir):
            for name in _names(folder, hidden=True):
                if not (name.startswith(".") and name.endswith(".tmp")):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if (folder / name).stat().st_mtime < now - _STALE_TEMP_SECONDS:
                        _unlink(folder / name)


def _names(folder: Path, hidden: bool = False) -> list[str]:
    """Sorted file names in ``folder``; temp (dot) files only when asked."""
    try:
        with os.scandir(folder) as scan:
            names = [entry.name for entry in scan]
    except FileNotFoundError:
        return []
    return sorted(n for n in names if hidden or not n.startswith("."))


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def _id_of(name: str) -> str:
    return name.split("-", 1)[1].split(".", 1)[0]


def _created_at(name: str) -> float:
    return int(name.split("-", 1)[0]) / 1e9


def _record_fields(entry: SpoolEntry) -> dict[str, Any]:
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


def _entry_from_record(record: dict[str, Any]) -> SpoolEntry:
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

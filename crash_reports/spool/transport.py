"""A sentry-sdk transport that only writes envelopes into the spool; the flusher sends them."""

from __future__ import annotations

import errno
import threading
from collections import OrderedDict, deque
from collections.abc import Callable

import structlog
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from crash_reports.spool.envelope import parse_envelope
from crash_reports.spool.store import Spool, StoredReport

log = structlog.get_logger(component="spool")

# Stored reports remembered for the writer that captured them (``take_stored``); more are
# only the daemon's own exceptions or held writes stored later, which nobody asks about.
_MAX_REMEMBERED = 64
# Envelopes made only of these items are SDK bookkeeping, not reports.
_BOOKKEEPING_ITEMS = frozenset({"client_report", "session", "sessions"})


class SpoolTransport(Transport):
    """``capture_envelope`` stores ``envelope.serialize()`` in the spool and never raises.

    A write that fails with OSError (a full disk) is kept in memory, up to
    ``max_held`` envelopes, until ``retry_failed_writes()`` succeeds.
    """

    def __init__(
        self,
        spool: Spool,
        on_put: Callable[[str], None] | None = None,
        max_held: int = 100,
    ) -> None:
        """Write into ``spool``; call ``on_put(report_id)`` after each stored envelope."""
        super().__init__(None)
        self.spool = spool
        self.on_put = on_put
        self._stored: OrderedDict[str, StoredReport] = OrderedDict()
        self._held: deque[bytes] = deque()
        self._max_held = max_held
        self._lock = threading.Lock()
        self._busy = threading.local()
        self._last_errno: int | None = None

    def capture_envelope(self, envelope: Envelope) -> None:
        """Spool one envelope built by sentry-sdk (called on the SDK's thread)."""
        # Logging a failure may itself become a sentry event; do not recurse into it.
        if getattr(self._busy, "active", False):
            return
        self._busy.active = True
        try:
            types = {item.type for item in envelope.items}
            if not types or types <= _BOOKKEEPING_ITEMS:
                return
            self._store(envelope.serialize())
        except Exception as exc:
            log.warning("spool.write_error", error=f"{exc.__class__.__name__}: {exc}")
        finally:
            self._busy.active = False

    def retry_failed_writes(self) -> int:
        """Try again to spool envelopes a failed write left in memory; return how many remain."""
        with self._lock:
            held = list(self._held)
            self._held.clear()
        for index, data in enumerate(held):
            try:
                self._put(data)
            except OSError as exc:
                with self._lock:
                    self._held.extendleft(reversed(held[index:]))
                    self._last_errno = exc.errno
                log.warning("spool.write_failed", error=str(exc), held=len(held) - index)
                break
            except ValueError as exc:
                log.error("spool.write_dropped", reason=f"not an envelope: {exc}")
        return self.held_count

    def give_up_held(self) -> list[tuple[str, str]]:
        """On stop: try the held envelopes once more; log and return (id, title) of each
        that still cannot be kept (they are lost with the process)."""
        self.retry_failed_writes()
        with self._lock:
            lost = list(self._held)
            self._held.clear()
        gone: list[tuple[str, str]] = []
        for data in lost:
            try:
                summary = parse_envelope(data)
                gone.append((summary.event_id or "?", summary.title))
            except ValueError:
                gone.append(("?", "(not an envelope)"))
            log.error("report.lost", id=gone[-1][0], title=gone[-1][1],
                      reason="the spool could not store it before the daemon stopped")
        return gone

    @property
    def disk_full(self) -> bool:
        """Whether reports are held because the disk (or a quota) is full."""
        with self._lock:
            return bool(self._held) and self._last_errno in (errno.ENOSPC, errno.EDQUOT)

    @property
    def held_count(self) -> int:
        """Envelopes waiting in memory for the disk to accept them."""
        with self._lock:
            return len(self._held)

    def _store(self, data: bytes) -> None:
        """Put now, or hold in memory (bounded, oldest given up first) if the disk refuses."""
        try:
            self._put(data)
        except OSError as exc:
            with self._lock:
                self._held.append(data)
                self._last_errno = exc.errno
                while len(self._held) > self._max_held:
                    self._held.popleft()
                    log.error("spool.write_dropped", reason="too many held in memory")
                held = len(self._held)
            log.warning("spool.write_failed", error=str(exc), held=held)

    def take_stored(self, report_id: str) -> StoredReport | None:
        """What the capture of ``report_id`` stored (once), or None if it is not on disk
        (held in memory after a failed write, or never built)."""
        with self._lock:
            return self._stored.pop(report_id, None)

    def _put(self, data: bytes) -> None:
        stored = self.spool.store(data)
        report_id = stored.id
        with self._lock:
            self._stored[report_id] = stored
            while len(self._stored) > _MAX_REMEMBERED:
                self._stored.popitem(last=False)
        if self.on_put is not None:
            try:
                self.on_put(report_id)
            except Exception as exc:
                log.warning("spool.on_put_failed", id=report_id, error=repr(exc))

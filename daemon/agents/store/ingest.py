"""A bounded queue in front of the store and the single thread that writes batches into it."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import structlog

from daemon.agents.budget.integrity import REFUSAL_REASON, screen
from daemon.agents.budget.pricing import price_tokens
from daemon.agents.decoding.counters import OtlpCounter, OtlpCounters, OtlpStats
from daemon.agents.decoding.privacy import redacted_record
from daemon.agents.decoding.records import Record, TokenUsage
from daemon.agents.store.event_store import EventStore
from daemon.config.schema import OtlpSettings

log = structlog.get_logger(component="agents.ingest")
_STOP = object()


class _Request(NamedTuple):
    """One request's records waiting in the queue, the signal they came as and their
    estimated bytes in memory (``record_bytes.py``)."""

    signal: str
    records: list[Record]
    size_bytes: int = 0


class Ingestor:
    """``submit`` never blocks: a full queue answers False and the drop is counted.

    The queue is bounded three times: ``queue_size`` requests, ``max_queued_records``
    records and ``max_queued_bytes`` of records (what memory holds: a few requests of 20,000
    points each, or of records with long strings, would otherwise fill a request-counted
    queue with hundreds of MB). A request arriving at an empty queue is always taken, so no
    single request is refused for ever.
    """

    def __init__(
        self,
        store: EventStore,
        queue_size: int,
        counters: OtlpCounters | None = None,
        *,
        clock: Callable[[], float] = time.time,
        batch_max_records: int = 5000,
        retention_interval_seconds: float = OtlpSettings.retention_check_seconds,
        max_queued_records: int = OtlpSettings.max_queued_records,
        max_queued_bytes: int = OtlpSettings.max_queued_bytes,
        sessions: Callable[[Sequence[Record]], list[Record]] | None = None,
    ) -> None:
        self.store = store
        self.counters = counters or OtlpCounters()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._max_queued_records = max_queued_records
        self._queued_records = 0
        self._max_queued_bytes = max_queued_bytes
        self._queued_bytes = 0
        self._queued_lock = threading.Lock()
        self._clock = clock
        self._batch_max = batch_max_records
        self._retention_interval = retention_interval_seconds
        self._thread: threading.Thread | None = None
        # Records put on their session before anything sees them, on the writer thread only
        # (daemon/agents/linking/sub_threads.py: in-process sub-threads onto their parent).
        self._sessions = sessions
        # Called on the writer thread with each batch once it is stored (the guard's feed).
        self.observer: Callable[[Sequence[Record]], None] | None = None

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="telemetryd-agents-writer", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            # The writer is draining, so room appears unless it died.
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.error("agents.ingest.stop_timed_out", queue_depth=self.queue_depth())
            return
        thread.join(timeout)

    def submit(self, records: Sequence[Record], points: int, signal: str = "metrics", *,
               size_bytes: int = 0) -> bool:
        """Queue one request's records (``size_bytes`` of memory, ``record_bytes.py``);
        False (and counted) when the queue is full.

        ``signal`` (metrics, logs, traces) names the refusal counter of values the writer
        refuses (``points_refused.<signal>.implausible_cost``, see integrity.py).
        """
        with self._queued_lock:
            held = self._queued_records
            if held and (held + len(records) > self._max_queued_records
                         or self._queued_bytes + size_bytes > self._max_queued_bytes):
                taken = False
            else:
                try:
                    self._queue.put_nowait(_Request(signal, list(records), size_bytes))
                    self._queued_records = held + len(records)
                    self._queued_bytes += size_bytes
                    taken = True
                except queue.Full:
                    taken = False
        if not taken:
            # The request itself is counted as refused (429 queue_full) by the receiver.
            self.counters.count(OtlpCounter.POINTS_DROPPED, ("queue_full",), points)
        return taken

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far is written; False if the deadline passed."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def queue_depth(self) -> int:
        """Requests waiting for the writer."""
        return self._queue.qsize()

    def stats(self) -> OtlpStats:
        """Every counter plus the queue depth."""
        return OtlpStats(self.counters.snapshot(), queue_depth=self.queue_depth())

    def queued_bytes(self) -> int:
        """Estimated bytes of the records waiting for the writer."""
        return self._queued_bytes

    def _run(self) -> None:
        next_retention = self._clock() + self._retention_interval
        while True:
            batch = self._take_batch()
            requests = [item for item in batch if isinstance(item, _Request)]
            self._write([r for request in requests for r in self._screened(request)])
            stop = any(item is _STOP for item in batch)
            with self._queued_lock:
                self._queued_records -= sum(len(request.records) for request in requests)
                self._queued_bytes -= sum(request.size_bytes for request in requests)
            taken = len(batch)
            del requests, batch  # written: nothing of them stays while the writer waits
            now = self._clock()
            if now >= next_retention:
                next_retention = now + self._retention_interval
                self._retain(now, by_age=True)
            elif taken and self._over_size():
                # Checked after every write (three pragmas), so a flood cannot carry the file
                # far past retention_bytes between two timed passes.
                self._retain(now, by_age=False)
            for _ in range(taken):
                self._queue.task_done()
            if stop:
                return

    def _take_batch(self) -> list[object]:
        """Wait briefly for one item, then take what else is queued, up to the batch size."""
        try:
            batch = [self._queue.get(timeout=1.0)]
        except queue.Empty:
            return []
        size = len(batch[0].records) if isinstance(batch[0], _Request) else 0
        while size < self._batch_max and batch[-1] is not _STOP:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            batch.append(item)
            size += len(item.records) if isinstance(item, _Request) else 0
        return batch

    def _screened(self, request: _Request) -> list[Record]:
        """One request's records on their session (``sessions``), priced, and what they may
        add to the spend (integrity.py)."""
        try:
            records = request.records if self._sessions is None else self._sessions(
                request.records)
            result = screen([_stored(record) for record in records])
        except Exception as exc:  # a pricing bug costs this request, never the writer
            log.error("agents.store.screen_failed", error=type(exc).__name__,
                      records=len(request.records))
            self.counters.count(OtlpCounter.POINTS_DROPPED, ("write_error",), len(request.records))
            return []
        self.counters.count(OtlpCounter.POINTS, (request.signal, REFUSAL_REASON), result.refused)
        return result.records

    def _write(self, records: list[Record]) -> None:
        if not records:
            return
        try:
            written = self.store.append(records)
        except Exception as exc:  # the writer must outlive a full disk or a locked file
            self.counters.count(OtlpCounter.WRITE_ERRORS)
            log.error("agents.store.write_failed", error=type(exc).__name__, records=len(records))
            # One record the store cannot take must not cost the others: write them one by one.
            written = 0
            for record in records:
                try:
                    written += self.store.append([record])
                except Exception:  # counted below; the batch's error is already logged
                    self.counters.count(OtlpCounter.POINTS_DROPPED, ("write_error",))
        self.counters.count(OtlpCounter.EVENTS_WRITTEN, (), written)
        if self.observer is not None:
            try:
                self.observer(records)
            except Exception as exc:  # the guard failing must not stop ingestion
                self.counters.count(OtlpCounter.OBSERVER_ERRORS)
                log.error("agents.observer_failed", error=repr(exc))

    def _over_size(self) -> bool:
        try:
            return self.store.over_size()
        except Exception:  # a failing store is logged by the write and retention paths
            return False

    def _retain(self, now: float, *, by_age: bool) -> None:
        try:
            result = self.store.enforce_retention(now, by_age=by_age)
        except Exception as exc:  # retention failing must not stop ingestion
            log.error("agents.store.retention_failed", error=type(exc).__name__)
            return
        if result.deleted_events or result.deleted_hourly_rows:
            log.info(
                "agents.store.retention",
                deleted_events=result.deleted_events,
                deleted_hourly_rows=result.deleted_hourly_rows,
                used_bytes=result.used_bytes,
            )


def _stored(record: Record) -> Record:
    """A record as the store keeps it: every name redacted (the one place names from OTLP
    are redacted, so everything read from the store is), token usage priced."""
    record = redacted_record(record)
    return price_tokens(record) if isinstance(record, TokenUsage) else record

"""Drains the spool to Sentry, oldest first, with backoff, rate limits and a lock.

One flush holds an inter-process lock (``flock`` on ``<spool>/flush.lock``) so the
daemon and ``telemetryd reports flush`` never send the same report at once.  It stops
at the first network-level failure (the server is down: the rest would fail too) and
logs one ``flush.outage`` per outage and one ``flush.recovered`` when it ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

from crash_reports.common.files import UnsafeFileError, open_regular, rename_aside
from crash_reports.delivery.rate_limits_file import (
    RATE_LIMITS_FILE,
    load_rate_limits,
    save_rate_limits,
)
from crash_reports.delivery.retry import RetryPolicy, limited_until, merge_rate_limits
from crash_reports.delivery.upload import Delivered, Reject, Retry, UploadOutcome
from crash_reports.spool.envelope import EnvelopeHeader
from crash_reports.spool.store import Spool

log = structlog.get_logger(component="delivery")

FlushStatus = Literal["ok", "retrying", "rate_limited", "waiting", "busy", "disabled", "error"]
_LOCK_POLL_SECONDS = 0.05


class Sender(Protocol):
    """What the flusher needs from an uploader (``crash_reports.delivery.upload.Uploader``)."""

    target: str

    def send(self, envelope: bytes, cancel: threading.Event | None = None,
             header: EnvelopeHeader | None = None) -> UploadOutcome:
        """POST one envelope and classify the answer; ``cancel`` ends it early (a Retry);
        ``header`` is its header as the spool's listing parsed it."""
        ...


@dataclass(frozen=True)
class FlushResult:
    """What one flush did; ``still_pending == 0`` means everything left the machine."""

    status: FlushStatus
    started_at: float
    finished_at: float
    delivered: int = 0
    quarantined: int = 0
    retrying: int = 0
    deferred: int = 0
    still_pending: int = 0
    next_attempt_at: float | None = None
    last_error: str | None = None
    delivered_ids: tuple[str, ...] = ()
    quarantined_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["delivered_ids"] = list(self.delivered_ids)
        data["quarantined_ids"] = list(self.quarantined_ids)
        return data


@dataclass(frozen=True)
class FlushState:
    """The flusher's state for ``status`` (never holds the DSN key)."""

    enabled: bool
    target: str | None
    last_flush_at: float | None = None
    last_result: FlushResult | None = None
    backoff_until: float | None = None
    rate_limits: dict[str, float] = field(default_factory=dict)
    consecutive_failures: int = 0
    outage_since: float | None = None
    last_error: str | None = None
    delivered_total: int = 0
    quarantined_total: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["last_result"] = self.last_result.to_json() if self.last_result else None
        return data


class Flusher:
    """Sends pending reports through ``sender``; with no sender (no DSN) it sends nothing."""

    def __init__(
        self,
        spool: Spool,
        sender: Sender | None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        lock_path: Path | None = None,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Flush ``spool`` through ``sender`` (None: no DSN configured, stay local).

        ``clock`` (wall) stamps what is stored and shown; ``monotonic`` paces our own
        backoff, so a step of the wall clock neither stretches nor skips it.
        """
        self.spool = spool
        self.sender = sender
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._monotonic = monotonic
        self._backoff_due: float | None = None  # monotonic twin of state.backoff_until
        self._lock_path = lock_path or spool.lock_path
        self._rng = rng or random.Random()
        self._thread_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._state = FlushState(enabled=sender is not None, target=_target(sender))
        # The server's rate limits outlive this process: a restart or a `reports flush`
        # during a 429 window must not send again before the server allows it.
        self._limits_path = spool.root / RATE_LIMITS_FILE
        loaded = load_rate_limits(self._limits_path, self._state.target, self._clock())
        if loaded:
            self._state = _replace(self._state, rate_limits=loaded)

    def state(self) -> FlushState:
        """A snapshot of the flush state (safe from any thread)."""
        with self._state_lock:
            return self._state

    def flush(
        self,
        now: float | None = None,
        *,
        force: bool = False,
        lock_timeout_seconds: float = 0.0,
        cancel: threading.Event | None = None,
    ) -> FlushResult:
        """Send pending reports, oldest first, until done or the server fails.

        ``force`` ignores our own backoff (not the server's rate limits);
        ``lock_timeout_seconds`` waits that long for another flush to finish;
        ``cancel``, once set, ends the upload under way and stops the flush (daemon
        shutdown); the report stays pending with no attempt counted.
        """
        started = self._clock() if now is None else now
        if self.sender is None:
            return self._finish(FlushResult("disabled", started, started, **self._left()))
        backoff_until = self.state().backoff_until
        due = self._backoff_due
        if not force and backoff_until is not None and due is not None \
                and self._monotonic() < due:
            return FlushResult(
                "waiting", started, started, next_attempt_at=started + due - self._monotonic(),
                **self._left()
            )
        with _held(self._thread_lock, self._lock_path, lock_timeout_seconds) as locked:
            if not locked:
                log.info("flush.busy", lock=str(self._lock_path))
                return FlushResult("busy", started, self._clock(), **self._left())
            try:
                result = self._drain(self.sender, started, cancel)
            except OSError as exc:
                log.error("flush.spool_error", error=str(exc))
                result = FlushResult(
                    "error", started, self._clock(), last_error=str(exc), **self._left()
                )
        return self._finish(result)

    def _drain(
        self, sender: Sender, started: float, cancel: threading.Event | None = None
    ) -> FlushResult:
        """The loop over pending reports; the caller holds the lock."""
        self.spool.enforce_limits(started)
        delivered: list[str] = []
        quarantined: list[str] = []
        deferred_until: list[float] = []
        deferred = 0
        retrying = 0
        last_error: str | None = None
        stopped_at: float | None = None
        for entry in self.spool.pending():
            if cancel is not None and cancel.is_set():
                break
            wait = limited_until(self.state().rate_limits, entry.categories, self._clock())
            if wait is not None:
                deferred_until.append(wait)
                deferred += 1
                continue
            try:
                envelope = self.spool.read(entry.id)
            except KeyError:
                continue  # moved aside as corrupt, or dropped by retention meanwhile
            outcome = sender.send(envelope, cancel=cancel, header=entry.header)
            if cancel is not None and cancel.is_set() and isinstance(outcome, Retry):
                break  # cut short by a stop: neither an attempt nor an outage
            at = self._clock()
            if isinstance(outcome, Delivered):
                self.spool.mark_delivered(entry.id, at=at, status=outcome.status)
                delivered.append(entry.id)
                self._reachable(at)
            elif isinstance(outcome, Reject):
                self.spool.quarantine(entry.id, outcome.status, outcome.reason, at=at)
                quarantined.append(entry.id)
                log.warning(
                    "flush.rejected", id=entry.id, http_status=outcome.status, reason=outcome.reason
                )
                self._reachable(at)
            else:
                self.spool.record_attempt(entry.id, outcome.reason, at=at)
                retrying += 1
                last_error = outcome.reason
                if outcome.rate_limits:
                    self._rate_limited(outcome, at)
                    deferred_until.append(at + max(outcome.rate_limits.values()))
                    continue
                stopped_at = self._failed(outcome, at, self.spool.pending_count())
                break
        still_pending = self.spool.pending_count()
        if stopped_at is not None:
            status: FlushStatus = "retrying"
            next_at: float | None = stopped_at
        elif deferred_until:
            status, next_at = "rate_limited", min(deferred_until)
        else:
            status, next_at = "ok", None
        return FlushResult(
            status,
            started,
            self._clock(),
            delivered=len(delivered),
            quarantined=len(quarantined),
            retrying=retrying,
            deferred=deferred,
            still_pending=still_pending,
            next_attempt_at=next_at,
            last_error=last_error,
            delivered_ids=tuple(delivered),
            quarantined_ids=tuple(quarantined),
        )

    def _reachable(self, at: float) -> None:
        """The server answered: end any outage (logged once) and reset the backoff."""
        with self._state_lock:
            state = self._state
            if state.outage_since is not None:
                log.info(
                    "flush.recovered",
                    target=state.target,
                    outage_seconds=round(at - state.outage_since, 3),
                    failures=state.consecutive_failures,
                )
            self._state = _replace(
                state, outage_since=None, consecutive_failures=0, backoff_until=None
            )

    def _failed(self, outcome: Retry, at: float, pending: int) -> float:
        """A network-level failure: back off, and log the outage once; return the retry time."""
        with self._state_lock:
            state = self._state
            failures = state.consecutive_failures + 1
            retry_at = self.policy.retry_at(failures, at, self._rng, outcome.after_seconds)
            self._backoff_due = self._monotonic() + (retry_at - at)
            if state.outage_since is None:
                log.warning(
                    "flush.outage",
                    target=state.target,
                    reason=outcome.reason,
                    pending=pending,
                    retry_at=retry_at,
                )
            else:
                log.debug("flush.still_down", reason=outcome.reason, failures=failures)
            self._state = _replace(
                state,
                outage_since=state.outage_since if state.outage_since is not None else at,
                consecutive_failures=failures,
                backoff_until=retry_at,
                last_error=outcome.reason,
            )
            return retry_at

    def _rate_limited(self, outcome: Retry, at: float) -> None:
        """A 429: remember the per-category limits the server asked for."""
        with self._state_lock:
            state = self._state
            limits = merge_rate_limits(state.rate_limits, outcome.rate_limits, at)
            self._state = _replace(state, rate_limits=limits, last_error=outcome.reason)
        save_rate_limits(self._limits_path, state.target, limits)
        log.warning("flush.rate_limited", target=state.target, limits=dict(outcome.rate_limits))
        self._reachable(at)

    def _left(self) -> dict[str, Any]:
        return {"still_pending": self.spool.pending_count()}

    def _finish(self, result: FlushResult) -> FlushResult:
        """Record the result in the state and log it."""
        with self._state_lock:
            state = self._state
            self._state = _replace(
                state,
                last_flush_at=result.finished_at,
                last_result=result,
                delivered_total=state.delivered_total + result.delivered,
                quarantined_total=state.quarantined_total + result.quarantined,
                rate_limits={k: v for k, v in state.rate_limits.items() if v > result.finished_at},
            )
        if result.delivered or result.quarantined or result.status in ("error", "retrying"):
            log.info(
                "flush.done",
                status=result.status,
                delivered=result.delivered,
                quarantined=result.quarantined,
                still_pending=result.still_pending,
                seconds=round(result.finished_at - result.started_at, 3),
            )
        return result


def _replace(state: FlushState, **changes: Any) -> FlushState:
    return dataclasses.replace(state, **changes)


def _target(sender: Sender | None) -> str | None:
    return None if sender is None else sender.target


@contextlib.contextmanager
def _held(thread_lock: threading.Lock, path: Path, timeout_seconds: float) -> Iterator[bool]:
    """Hold the in-process and the inter-process flush lock; yield False if busy."""
    deadline = time.monotonic() + max(0.0, timeout_seconds)
    acquired = (
        thread_lock.acquire(timeout=timeout_seconds)
        if timeout_seconds > 0
        else thread_lock.acquire(blocking=False)
    )
    if not acquired:
        yield False
        return
    try:
        fd = _open_lock(path)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(_LOCK_POLL_SECONDS)
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        thread_lock.release()


def _open_lock(path: Path) -> int:
    """The lock file's descriptor. A FIFO, symlink or directory planted under its name is
    renamed aside once (logged), never opened, and a real lock file takes its place."""
    try:
        return open_regular(path, os.O_RDWR | os.O_CREAT, 0o600)
    except UnsafeFileError as exc:
        aside = rename_aside(path)
        log.warning("flush.lock_refused", path=str(path), reason=exc.reason, moved_to=str(aside))
    return open_regular(path, os.O_RDWR | os.O_CREAT, 0o600)

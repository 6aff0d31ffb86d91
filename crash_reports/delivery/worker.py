"""The thread that runs the flusher: at start, every flush_interval, and soon after a new report.

It lives beside the sampling job rather than in it, so a slow or dead Sentry never
delays a tick, and a start with a thousand pending reports still samples at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from crash_reports.delivery.flusher import Flusher, FlushResult

log = structlog.get_logger(component="delivery")

# A burst of reports (several processes crossing in one tick) goes out in one flush.
NEW_REPORT_DELAY_SECONDS = 1.0
# How long stop waits for the flush thread. A stop cancels the upload under way (an answer
# on its way still gets deadline.CANCEL_GRACE_SECONDS, then its socket is shut down), so
# the thread ends soon after; only a DNS lookup cannot be cut short, and stop does not wait
# for it past this (the thread is a daemon thread).
STOP_GRACE_SECONDS = 3.0


class FlushWorker:
    """Runs ``flusher.flush`` on its own thread until stopped."""

    def __init__(
        self,
        flusher: Flusher,
        interval_seconds: float,
        on_result: Callable[[FlushResult], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.flusher = flusher
        self.interval_seconds = interval_seconds
        self.on_result = on_result
        self._monotonic = monotonic
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._soon_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="telemetryd-flush", daemon=True)

    def start(self) -> None:
        """Start flushing (the first flush begins immediately)."""
        self._thread.start()

    def trigger(self) -> None:
        """A new report was spooled: flush soon (coalescing bursts)."""
        if self._soon_at is None:
            self._soon_at = self._monotonic() + NEW_REPORT_DELAY_SECONDS
        self._wake.set()

    def stop(self, timeout: float = STOP_GRACE_SECONDS) -> None:
        """Stop soon: the upload in progress, if any, is cancelled (an answer already on
        its way is still read; otherwise its report stays pending); a thread still busy
        after ``timeout`` is left behind, logged."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("flush.stop_abandoned", waited_seconds=timeout)

    def _next_wait(self, result: FlushResult | None) -> float:
        wait = self.interval_seconds
        if result is not None and result.next_attempt_at is not None:
            # Both times come from the flusher's one wall clock: their gap is a duration.
            wait = min(wait, max(0.5, result.next_attempt_at - result.finished_at))
        if self._soon_at is not None:
            wait = min(wait, max(0.0, self._soon_at - self._monotonic()))
        return wait

    def _run(self) -> None:
        result: FlushResult | None = None
        while not self._stop.is_set():
            try:
                self._soon_at = None
                result = self.flusher.flush(cancel=self._stop)
                if self.on_result is not None:
                    self.on_result(result)
            except Exception as exc:  # the worker must outlive any one bad flush
                log.exception("flush.crashed", error=repr(exc))
                result = None
            deadline = self._monotonic() + self._next_wait(result)
            while not self._stop.is_set():
                remaining = deadline - self._monotonic()
                if self._soon_at is not None:
                    remaining = min(remaining, self._soon_at - self._monotonic())
                if remaining <= 0:
                    break
                self._wake.wait(remaining)
                self._wake.clear()

"""The flush worker thread: when it flushes, how it stops, and that one bad flush never kills it.

Real threads and a small scripted flusher (fault injection: it can block, fail or ask for an
early retry); every wait is a poll with a generous deadline, never a sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from crash_reports.delivery.flusher import Flusher, FlushResult
from crash_reports.delivery.worker import NEW_REPORT_DELAY_SECONDS, FlushWorker
from tests.support.waiting import wait_for

HOUR = 3600.0
DEADLINE = 30.0


class ScriptedFlusher:
    """Stands in for ``Flusher``: counts flushes and does what the test scripted.

    Each flush runs ``uploads`` steps; a step waits for ``gate`` (when set) and the flush
    stops early once the worker's cancel event is set, as the real flusher does between
    uploads.
    """

    def __init__(self, uploads: int = 1) -> None:
        self.uploads = uploads
        self.gate: threading.Event | None = None
        self.in_upload = threading.Event()
        self.fail_next = 0
        self.retry_in_seconds: float | None = None
        self.cancels: list[threading.Event | None] = []
        self.uploaded = 0
        self._lock = threading.Lock()
        self._calls = 0

    @property
    def calls(self) -> int:
        with self._lock:
            return self._calls

    def flush(self, now: float | None = None, *, cancel: threading.Event | None = None,
              **_: Any) -> FlushResult:
        with self._lock:
            self._calls += 1
            self.cancels.append(cancel)
            failing = self.fail_next > 0
            self.fail_next -= 1 if failing else 0
        if failing:
            raise RuntimeError("injected flush failure")
        started = time.time()
        for _step in range(self.uploads):
            if cancel is not None and cancel.is_set():
                break
            self.in_upload.set()
            if self.gate is not None:
                assert self.gate.wait(DEADLINE), "the test never opened the gate"
            with self._lock:
                self.uploaded += 1
        retry_at = None if self.retry_in_seconds is None else time.time() + self.retry_in_seconds
        return FlushResult("ok", started, time.time(), delivered=self.uploads,
                           next_attempt_at=retry_at)


@pytest.fixture
def workers() -> Iterator[list[FlushWorker]]:
    """Workers a test started; each is stopped afterwards even when the test fails."""
    started: list[FlushWorker] = []
    yield started
    for worker in started:
        worker.stop(timeout=DEADLINE)


def start(workers: list[FlushWorker], flusher: ScriptedFlusher, interval_seconds: float,
          results: list[FlushResult] | None = None) -> FlushWorker:
    worker = FlushWorker(cast(Flusher, flusher), interval_seconds,
                         on_result=None if results is None else results.append)
    workers.append(worker)
    worker.start()
    return worker


def test_first_flush_starts_at_once(workers: list[FlushWorker]) -> None:
    """A start with reports already pending flushes immediately, not after the interval."""
    flusher = ScriptedFlusher()
    start(workers, flusher, HOUR)
    wait_for(lambda: flusher.calls >= 1, DEADLINE, message="the first flush")


def test_trigger_flushes_soon_and_coalesces_a_burst(workers: list[FlushWorker]) -> None:
    """Reports spooled in a burst go out in one flush about a second later, not each alone."""
    flusher = ScriptedFlusher()
    start(workers, flusher, HOUR)
    worker = workers[0]
    wait_for(lambda: flusher.calls == 1, DEADLINE, message="the first flush")
    begun = time.monotonic()
    for _ in range(5):
        worker.trigger()
    wait_for(lambda: flusher.calls >= 2, DEADLINE, message="the triggered flush")
    assert time.monotonic() - begun >= NEW_REPORT_DELAY_SECONDS * 0.9  # waited for the burst
    # No flush of its own for each of the other triggers: the count stays at 2 while the
    # next flush would only come after an hour.
    quiet_until = time.monotonic() + 2 * NEW_REPORT_DELAY_SECONDS
    while time.monotonic() < quiet_until:
        assert flusher.calls == 2
        time.sleep(0.05)


def test_flushes_again_every_interval(workers: list[FlushWorker]) -> None:
    """Without triggers the worker flushes every ``interval_seconds``."""
    flusher = ScriptedFlusher()
    start(workers, flusher, 0.1)
    wait_for(lambda: flusher.calls >= 4, DEADLINE, message="four interval flushes")


def test_a_retry_time_in_the_result_shortens_the_wait(workers: list[FlushWorker]) -> None:
    """A flush that says "retry in 0.6 s" is followed by one then, not an hour later."""
    flusher = ScriptedFlusher()
    flusher.retry_in_seconds = 0.6
    start(workers, flusher, HOUR)
    wait_for(lambda: flusher.calls >= 3, DEADLINE, message="flushes at the retry times")


def test_every_result_reaches_on_result(workers: list[FlushWorker]) -> None:
    """The callback sees each flush's result, in order, on the worker thread."""
    flusher = ScriptedFlusher(uploads=2)
    results: list[FlushResult] = []
    start(workers, flusher, 0.05, results)
    wait_for(lambda: len(results) >= 3, DEADLINE, message="three results")
    assert all(r.status == "ok" and r.delivered == 2 for r in results)
    assert [r.started_at for r in results] == sorted(r.started_at for r in results)


def test_stop_during_a_flush_ends_it_between_uploads(workers: list[FlushWorker]) -> None:
    """Stop sets the flusher's cancel event: the upload in progress ends, no further one starts."""
    flusher = ScriptedFlusher(uploads=5)
    flusher.gate = threading.Event()
    worker = start(workers, flusher, HOUR)
    assert flusher.in_upload.wait(DEADLINE), "the first upload never began"

    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": DEADLINE})
    stopper.start()
    cancel = flusher.cancels[0]
    assert cancel is not None
    wait_for(cancel.is_set, DEADLINE, message="the cancel event")
    assert stopper.is_alive()  # stop waits for the flush in progress
    flusher.gate.set()
    stopper.join(DEADLINE)

    assert not stopper.is_alive()
    assert flusher.uploaded == 1
    assert flusher.calls == 1


def test_stop_while_waiting_returns_at_once(workers: list[FlushWorker]) -> None:
    """A worker asleep until the next hourly flush stops promptly and flushes no more."""
    flusher = ScriptedFlusher()
    worker = start(workers, flusher, HOUR)
    wait_for(lambda: flusher.calls == 1, DEADLINE, message="the first flush")
    begun = time.monotonic()
    worker.stop(timeout=DEADLINE)
    assert time.monotonic() - begun < DEADLINE
    worker.trigger()  # a late report after stop does not wake a dead thread
    assert flusher.calls == 1


def test_a_crashing_flush_is_logged_and_the_worker_goes_on(workers: list[FlushWorker]) -> None:
    """An exception from the flusher is logged as flush.crashed; the next flush still runs."""
    flusher = ScriptedFlusher()
    flusher.fail_next = 2
    results: list[FlushResult] = []
    with capture_logs() as logs:
        start(workers, flusher, 0.05, results)
        wait_for(lambda: results, DEADLINE, message="a flush after the failures")
    crashed = [e for e in logs if e["event"] == "flush.crashed"]
    assert len(crashed) == 2
    assert "injected flush failure" in crashed[0]["error"]
    assert flusher.calls >= 3


def test_a_failing_on_result_does_not_stop_flushing(workers: list[FlushWorker]) -> None:
    """A callback that raises costs that result only; flushing goes on."""
    flusher = ScriptedFlusher()
    seen: list[FlushResult] = []

    def on_result(result: FlushResult) -> None:
        seen.append(result)
        if len(seen) == 1:
            raise ValueError("injected callback failure")

    worker = FlushWorker(cast(Flusher, flusher), 0.05, on_result=on_result)
    workers.append(worker)
    with capture_logs() as logs:
        worker.start()
        wait_for(lambda: len(seen) >= 3, DEADLINE, message="results after the failure")
    assert [e["event"] for e in logs].count("flush.crashed") == 1

"""A Sentry endpoint that answers one byte a second: each upload ends at its total deadline,
and a stop (SIGTERM) cancels the upload under way instead of waiting behind it."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crash_reports.delivery.flusher import Flusher, FlushResult
from crash_reports.delivery.upload import Retry, Uploader, UploadOutcome
from crash_reports.spool.store import Spool
from daemon.runtime.paths import StatePaths
from tests.support.daemon_proc import DaemonProcess
from tests.support.fault_server import TRICKLE, Behaviour, FaultServer, make_envelope
from tests.support.waiting import wait_for

# Far longer than any bound asserted below: the old code was still uploading at this point.
GIVE_UP_SECONDS = 20.0


@pytest.fixture
def trickling() -> Iterator[FaultServer]:
    """A loopback server whose every answer trickles in at one byte a second, forever."""
    with FaultServer(default=TRICKLE) as server:
        yield server


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``call`` on a daemon thread (the old code never returns); its result lands in
    the list."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


def test_trickling_answer_ends_at_the_total_deadline(trickling: FaultServer) -> None:
    """Timeout 1 s, a byte every second: the upload returns ``timed out`` after about
    1 s (each read alone would never time out)."""
    uploader = Uploader(trickling.dsn(), "9.9.9", timeout_seconds=1.0)
    started = time.monotonic()
    thread, result = in_thread(lambda: uploader.send(make_envelope()))
    thread.join(GIVE_UP_SECONDS)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"upload still running after {GIVE_UP_SECONDS} s"
    outcome: UploadOutcome = result[0]
    assert isinstance(outcome, Retry) and outcome.reason == "timed out", outcome
    assert elapsed < 6.0, elapsed
    assert len(trickling.received) == 1


def test_cancel_ends_the_upload_under_way_without_counting_an_attempt(
        trickling: FaultServer, tmp_path: Path) -> None:
    """A flush with a 60 s timeout, cancelled mid-answer: it returns at once, the report
    stays pending with no attempt recorded and no outage begun."""
    spool = Spool(tmp_path / "spool")
    report = spool.put(make_envelope())
    flusher = Flusher(spool, Uploader(trickling.dsn(), "9.9.9", timeout_seconds=60.0))
    cancel = threading.Event()
    thread, result = in_thread(lambda: flusher.flush(cancel=cancel))
    wait_for(lambda: trickling.received, timeout=GIVE_UP_SECONDS, message="the upload began")
    cancelled_at = time.monotonic()
    cancel.set()
    thread.join(GIVE_UP_SECONDS)
    assert not thread.is_alive(), "the flush did not stop when cancelled"
    assert time.monotonic() - cancelled_at < 3.0
    flushed: FlushResult = result[0]
    assert flushed.still_pending == 1 and flushed.retrying == 0
    [entry] = spool.pending()
    assert (entry.id, entry.attempts) == (report, 0)
    assert flusher.state().outage_since is None


def test_sigterm_during_a_trickling_upload_stops_the_daemon_promptly(
        trickling: FaultServer, tmp_path: Path) -> None:
    """The daemon uploading to a trickling endpoint (timeout 60 s) exits 0 within a few
    seconds of SIGTERM; the old code waited 15 s for the flush thread."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    Spool(StatePaths(state).spool).put(make_envelope())
    config = tmp_path / "t.toml"
    config.write_text(f'[daemon]\ninterval = 0.5\nstate_dir = "{state}"\n'
                      '[metrics]\nenabled = false\n[otlp]\nenabled = false\n'
                      f'[sentry]\ndsn = "{trickling.dsn()}"\ntimeout = 60\n'
                      '[[watch]]\nname = "init"\npid = 1\n')
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: trickling.received, timeout=30, message="the upload began")
        signalled_at = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=GIVE_UP_SECONDS)
        stopping = time.monotonic() - signalled_at
    finally:
        daemon.kill()
    assert code == 0, (tmp_path / "daemon.log").read_text()[-2000:]
    assert stopping < 8.0, stopping
    assert len(Spool(StatePaths(state).spool).pending()) == 1  # kept for the next start


def test_cancel_still_reads_an_answer_already_on_its_way(tmp_path: Path) -> None:
    """A stop while a normal server takes 0.3 s to answer: the 200 is read within the
    cancel grace, so the report is marked delivered, not sent again at the next start."""
    spool = Spool(tmp_path / "spool")
    report = spool.put(make_envelope())
    with FaultServer(default=Behaviour(delay_seconds=0.3)) as server:
        flusher = Flusher(spool, Uploader(server.dsn(), "9.9.9", timeout_seconds=60.0))
        cancel = threading.Event()
        thread, result = in_thread(lambda: flusher.flush(cancel=cancel))
        wait_for(lambda: server.received, timeout=GIVE_UP_SECONDS, message="the upload")
        cancel.set()
        thread.join(GIVE_UP_SECONDS)
    assert not thread.is_alive()
    assert result[0].delivered_ids == (report,)
    assert spool.pending() == []

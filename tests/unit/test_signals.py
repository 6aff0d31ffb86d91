"""Signal handlers only record; the wake socket wakes the loop; the old handlers come back."""

from __future__ import annotations

import os
import signal
import threading
import time

from structlog.testing import capture_logs

from daemon.runtime.signals import SignalFlags, capture_signals


def test_handlers_record_and_wake_and_are_restored() -> None:
    """A real SIGHUP and SIGTERM: flags set at once, wait() woken early, nothing logged."""
    def sentinel(signum: int, frame: object) -> None:
        raise AssertionError("the captured handler should have run")

    before = {s: signal.signal(s, sentinel) for s in (signal.SIGHUP, signal.SIGTERM)}
    flags = SignalFlags()
    try:
        with capture_logs() as logs, capture_signals(flags):
            assert signal.getsignal(signal.SIGHUP) == flags.record
            os.kill(os.getpid(), signal.SIGHUP)
            assert flags.take_reload() and not flags.take_reload()
            started = time.monotonic()
            later = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM))
            later.start()  # lands while the main thread waits below
            flags.wait(30.0)
            later.join()
            assert time.monotonic() - started < 10.0  # woken by the signal, not the timeout
            assert flags.stop and flags.stop_signal == signal.SIGTERM
        assert logs == []
        assert signal.getsignal(signal.SIGHUP) is sentinel
        assert signal.getsignal(signal.SIGTERM) is sentinel
        assert signal.set_wakeup_fd(-1) == -1  # the wakeup fd was put back (none before)
    finally:
        flags.close()
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_request_stop_from_another_thread_wakes_the_wait() -> None:
    """request_stop (thread-safe) ends a long wait at once."""
    flags = SignalFlags()
    try:
        timer = threading.Timer(0.05, flags.request_stop)
        timer.start()
        started = time.monotonic()
        while not flags.stop:
            flags.wait(30.0)
        assert time.monotonic() - started < 10.0
        assert flags.stop_signal == 0
        timer.join()
    finally:
        flags.close()

"""Signal handling as a context manager: install handlers, restore the old ones after."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import structlog

log = structlog.get_logger(component="service")


@contextlib.contextmanager
def capture_signals(on_stop: Callable[[], None], on_reload: Callable[[], None]) -> Iterator[None]:
    """SIGTERM/SIGINT call ``on_stop``, SIGHUP ``on_reload``; off the main thread, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("daemon.signal", signal=signal.Signals(signum).name, action="stop")
        on_stop()

    def reload(signum: int, frame: FrameType | None) -> None:
        log.info("daemon.signal", signal="SIGHUP", action="reload")
        on_reload()

    handlers = ((signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGHUP, reload))
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

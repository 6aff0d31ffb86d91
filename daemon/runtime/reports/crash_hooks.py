"""The daemon's own failures go into the spool like any report, never sent from the crash path."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import sentry_sdk
import structlog
from sentry_sdk.utils import event_from_exception

log = structlog.get_logger(component="service")


class ErrorThrottle:
    """At most one spooled event per distinct failure per window (pure: time is passed in).

    A failure that repeats every tick must not fill the spool and push real crash
    reports out of it.

    >>> throttle = ErrorThrottle(window_seconds=3600)
    >>> throttle.allow(("scheduler", "KeyError", "x"), now=0.0)
    True
    >>> throttle.allow(("scheduler", "KeyError", "x"), now=10.0)
    False
    >>> throttle.allow(("scheduler", "KeyError", "x"), now=3601.0)
    True
    """

    def __init__(self, window_seconds: float = 3600.0, max_keys: int = 256) -> None:
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self._last: dict[tuple[str, str, str], float] = {}
        self.suppressed = 0

    def allow(self, key: tuple[str, str, str], now: float) -> bool:
        """Whether this failure may be spooled now."""
        last = self._last.get(key)
        if last is not None and now - last < self.window_seconds:
            self.suppressed += 1
            return False
        if len(self._last) >= self.max_keys:
            self._last.pop(min(self._last, key=self._last.__getitem__))
        self._last[key] = now
        return True


def failure_key(exc: BaseException, component: str) -> tuple[str, str, str]:
    """What makes two failures "the same" for throttling."""
    return (component, type(exc).__qualname__, str(exc)[:200])


_throttle = ErrorThrottle()


def capture_exception(client: sentry_sdk.Client, exc: BaseException, component: str,
                      now: float | None = None) -> str | None:
    """Turn an exception of the daemon itself into a spooled Sentry event (throttled)."""
    # The window is an interval: monotonic, so a wall-clock step neither opens nor extends it.
    if not _throttle.allow(failure_key(exc, component),
                           time.monotonic() if now is None else now):
        log.info("daemon.error_throttled", component=component, error=repr(exc))
        return None
    try:
        event, hint = event_from_exception(exc, client_options=client.options)
        event["level"] = "error"
        scope = sentry_sdk.Scope(client=client)
        scope.set_tag("component", component)
        scope.set_tag("kind", "daemon_error")
        return client.capture_event(event, hint=hint, scope=scope)
    except Exception as capture_error:  # reporting a failure must never add one
        log.error("daemon.capture_failed", error=repr(capture_error))
        return None


def install_crash_hooks(client: sentry_sdk.Client) -> Callable[[], None]:
    """Capture unhandled exceptions in any thread; returns a function that restores the hooks."""
    previous_thread_hook = threading.excepthook
    previous_sys_hook = sys.excepthook

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None and not isinstance(args.exc_value, SystemExit):
            name = args.thread.name if args.thread else "?"
            log.error("daemon.thread_crashed", thread=name, error=repr(args.exc_value))
            capture_exception(client, args.exc_value, f"thread:{name}")
        previous_thread_hook(args)

    def sys_hook(kind: type[BaseException], value: BaseException,
                 tb: TracebackType | None) -> None:
        if not isinstance(value, KeyboardInterrupt | SystemExit):
            log.error("daemon.crashed", error=repr(value))
            capture_exception(client, value, "main")
        previous_sys_hook(kind, value, tb)

    threading.excepthook = thread_hook
    sys.excepthook = sys_hook

    def restore() -> None:
        threading.excepthook = previous_thread_hook
        sys.excepthook = previous_sys_hook

    return restore


def describe_job_error(exc: BaseException | None, traceback_text: Any) -> str:
    """A one-line description of a scheduler job failure for the log."""
    return repr(exc) if exc is not None else str(traceback_text).strip().splitlines()[-1]

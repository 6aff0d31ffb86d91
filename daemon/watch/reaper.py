"""Terminating left-behind processes without ever blocking a tick.

Each orphan gets SIGTERM through a pidfd opened when it is picked (so a recycled pid can
never receive a signal meant for the orphan), then SIGKILL once its grace period has
passed; whether it is gone is checked on later ticks with a zero-timeout poll. Linux
only (pidfd, 5.3+); elsewhere the reaper logs that it cannot reap.
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil
import structlog

from daemon.watch.proc.sampler import OrphanSample

log = structlog.get_logger(component="reaper")

# A process's start time as psutil reads it and as the table computed it differ only by
# rounding; a recycled pid started at least this much later.
_SAME_START_SECONDS = 0.5


@dataclass
class _Pending:
    orphan: OrphanSample
    fd: int
    deadline: float
    killed: bool = False


def _gone(fd: int) -> bool:
    """Whether the process behind a pidfd has exited (never waits)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class Reaper:
    """Sends SIGTERM now and SIGKILL after the grace period; logs each step."""

    def __init__(self, monotonic: Callable[[], float],
                 send: Callable[[int, int], None] = signal.pidfd_send_signal) -> None:
        self.monotonic = monotonic
        self._send = send
        self.pending: dict[tuple[int, int], _Pending] = {}

    def reap(self, watch: str, orphans: Iterable[OrphanSample], grace_seconds: float) -> None:
        """Start terminating these orphans (SIGTERM); SIGKILL follows on a later tick."""
        now = self.monotonic()
        for orphan in orphans:
            if orphan.key in self.pending:
                continue
            fields = {"watch": watch, "pid": orphan.pid, "name": orphan.name,
                      "agent_pid": orphan.agent_pid, "rss_bytes": orphan.rss_bytes}
            try:
                fd = os.pidfd_open(orphan.pid)
            except (OSError, AttributeError) as exc:
                log.warning("orphan.reap_failed", **fields, error=repr(exc))
                continue
            try:
                started = psutil.Process(orphan.pid).create_time()
            except psutil.Error:
                started = None
            if started is None or abs(started - orphan.create_time) > _SAME_START_SECONDS:
                os.close(fd)  # exited, and the pid may already belong to someone else
                continue
            try:
                self._send(fd, signal.SIGTERM)
            except OSError as exc:
                os.close(fd)
                log.warning("orphan.reap_failed", **fields, error=repr(exc))
                continue
            log.warning("orphan.reap", **fields, signal="SIGTERM", grace_seconds=grace_seconds)
            self.pending[orphan.key] = _Pending(orphan, fd, now + grace_seconds)

    def poll(self) -> None:
        """Follow up on earlier reaps: log those gone, SIGKILL those past their grace."""
        now = self.monotonic()
        for key, pending in list(self.pending.items()):
            orphan = pending.orphan
            fields = {"watch": orphan.watch, "pid": orphan.pid, "name": orphan.name,
                      "agent_pid": orphan.agent_pid}
            if _gone(pending.fd):
                os.close(pending.fd)
                del self.pending[key]
                log.info("orphan.reaped", **fields,
                         signal="SIGKILL" if pending.killed else "SIGTERM")
                continue
            if not pending.killed and now >= pending.deadline:
                try:
                    self._send(pending.fd, signal.SIGKILL)
                    pending.killed = True
                    log.warning("orphan.reap", **fields, signal="SIGKILL")
                except OSError as exc:
                    os.close(pending.fd)
                    del self.pending[key]
                    log.warning("orphan.reap_failed", **fields, error=repr(exc))

    def close(self) -> None:
        """Let go of the pidfds still held (the daemon stops)."""
        for pending in self.pending.values():
            os.close(pending.fd)
        self.pending.clear()

"""Room kept on the state dir's filesystem for crash reports.

Reports are few and small; telemetry is many and large, and any local process can send
it. When the free space (what this user may use: ``statvfs`` ``f_bavail``) would fall under
the reserve, the stores that grow with what they are sent (the agent event store, the stats
and history databases) skip the write: each refusal is counted per writer, and one log line
says when a writer starts being refused (``disk.reserve_reached``) and one when it may
write again (``disk.reserve_released``). The spool itself never asks: a report may use
the reserve, which is what it is for.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger(component="storage")


def has_room(free_bytes: int, write_bytes: int, reserve_bytes: int) -> bool:
    """Whether a write of ``write_bytes`` leaves at least ``reserve_bytes`` free (pure).

    >>> has_room(100 << 20, 1 << 20, 32 << 20), has_room(33 << 20, 2 << 20, 32 << 20)
    (True, False)
    """
    return free_bytes - write_bytes >= reserve_bytes


class DiskReserve:
    """Answers "may this writer use ``n`` more bytes?" for the filesystem of ``directory``.

    ``reserve_bytes`` is read at each question, so a reloaded config applies at once.
    ``statvfs`` is the edge (a test passes a full filesystem's figures).
    """

    def __init__(self, directory: Path, reserve_bytes: Callable[[], int],
                 statvfs: Callable[[Path], os.statvfs_result] = os.statvfs) -> None:
        self.directory = directory
        self.reserve_bytes = reserve_bytes
        self._statvfs = statvfs
        self._lock = threading.Lock()
        self._refused: Counter[str] = Counter()
        self._refusing: set[str] = set()

    def allows(self, writer: str, write_bytes: int = 0) -> bool:
        """True if ``writer`` may write about ``write_bytes``; False (counted) if that would
        eat into the reserve. A filesystem that cannot be asked allows the write (it then
        fails, or not, on its own)."""
        reserve = self.reserve_bytes()
        try:
            info = self._statvfs(self.directory)
        except OSError:
            return True
        free = info.f_bavail * info.f_frsize
        room = has_room(free, write_bytes, reserve)
        with self._lock:
            if room:
                if writer not in self._refusing:
                    return True
                self._refusing.discard(writer)
                refused = self._refused[writer]
            else:
                self._refused[writer] += 1
                if writer in self._refusing:
                    return False
                self._refusing.add(writer)
        if room:
            log.info("disk.reserve_released", writer=writer, free_bytes=free,
                     reserve_bytes=reserve, refused_total=refused)
        else:
            log.warning("disk.reserve_reached", writer=writer, free_bytes=free,
                        reserve_bytes=reserve, write_bytes=write_bytes,
                        path=str(self.directory))
        return room

    def refused(self) -> dict[str, int]:
        """Writes refused so far, per writer."""
        with self._lock:
            return dict(self._refused)

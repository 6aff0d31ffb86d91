"""One daemon per state dir: an flock held for the life of the process."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from crash_reports.common.files import open_regular, read_regular


class AlreadyRunningError(Exception):
    """Another daemon holds the state dir."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"another telemetryd ({who}) is already running on {path.parent}")


class InstanceLock:
    """Exclusive, non-blocking lock on a file; the kernel releases it if we die."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunningError naming the holder."""
        # No symlink followed, no FIFO waited on, mode set on the descriptor: a file
        # planted under this name is refused, never truncated.
        fd = open_regular(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_lock_pid(self.path)
            os.close(fd)
            raise AlreadyRunningError(self.path, holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_lock_pid(path: Path) -> int | None:
    """The pid written into a lock file, if any."""
    try:
        text = read_regular(path, max_bytes=64).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def is_locked(path: Path) -> bool:
    """Whether some process holds the lock now (used by ``status``)."""
    try:
        fd = open_regular(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False

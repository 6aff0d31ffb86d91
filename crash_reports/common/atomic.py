"""The one way telemetryd writes a file another process reads: temp file, fsync, rename."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from crash_reports.common.files import open_regular


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry so a rename inside it survives a power cut."""
    # O_DIRECTORY: a FIFO planted under a folder's name fails at once, it is never opened.
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_NONBLOCK
                 | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half.

    The temp file lives in the same directory (a rename is atomic only within
    one filesystem) and starts with a dot so directory listings skip it.  It is created
    with ``O_EXCL | O_NOFOLLOW`` under an unguessable name, and its mode is set on the
    descriptor: a symlink or file planted under any name is never written through.  With
    ``durable=False`` the fsyncs are skipped: readers still never see half a file,
    but a power cut may lose the newest version (fine for a status snapshot).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_atomic(d / "a.json", b"{}")
    >>> (d / "a.json").read_bytes()
    b'{}'
    """
    directory = path.parent
    fd, tmp = _create_temp(directory, path.name, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(directory)


def _create_temp(directory: Path, name: str, mode: int) -> tuple[int, Path]:
    """A new temp file beside ``name``: exclusive, not through a symlink, ``mode`` set."""
    for _ in range(8):
        tmp = directory / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            return open_regular(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(17, "could not create a unique temp file", str(directory))

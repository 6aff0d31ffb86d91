"""Opening files in a directory someone else might have touched: no symlinks, no FIFOs.

Every file telemetryd opens under its state dir goes through here. ``O_NOFOLLOW`` makes a
planted symlink an error instead of a write through it; ``O_NONBLOCK`` plus an ``fstat``
check makes a planted FIFO or device an error instead of a hang (opening a FIFO for reading
blocks until a writer appears; reading ``/dev/zero`` never ends); reads are bounded.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "a").write_bytes(b"hello")
>>> read_regular(d / "a", max_bytes=16)
b'hello'
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class UnsafeFileError(OSError):
    """A path is a symlink, a FIFO, a device, or owned by someone else; refused."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(errno.EPERM, reason, str(path))
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.filename}: {self.reason}"


class FileTooLargeError(OSError):
    """A file is larger than the bound its reader allows."""

    def __init__(self, path: Path | str, max_bytes: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {max_bytes} bytes", str(path))


def open_regular(path: Path | str, flags: int, mode: int = 0o600,
                 follow_symlinks: bool = False) -> int:
    """Open a regular file without following a symlink and without blocking on a FIFO.

    Returns a descriptor in blocking mode again (regular files never block).  A symlink
    raises UnsafeFileError; so does anything that is not a regular file.  When the call
    creates the file (``O_CREAT``) its mode is set on the descriptor, never by path.
    ``follow_symlinks`` is for files the user names (a config file may be a link).
    """
    nofollow = 0 if follow_symlinks else _NOFOLLOW
    try:
        fd = os.open(path, flags | nofollow | _CLOEXEC | _NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise UnsafeFileError(path, "is a symlink; refusing to follow it") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError(path, f"is not a regular file ({describe_mode(info.st_mode)})")
        os.set_blocking(fd, True)
        if flags & os.O_CREAT:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path | str, max_bytes: int, follow_symlinks: bool = False) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (no symlink, no FIFO, bounded)."""
    fd = open_regular(path, os.O_RDONLY, follow_symlinks=follow_symlinks)
    try:
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise FileTooLargeError(path, max_bytes)
        return b"".join(chunks)
    finally:
        os.close(fd)


def rename_aside(path: Path) -> Path:
    """Rename a file planted where a regular file belongs (a FIFO, symlink, socket,
    directory) to ``.<name>.refused-<ns>`` beside it, so it is never opened and never
    seen under its name again; return the new path. The rename moves the entry itself (a
    symlink's target is untouched); a person can look at what was planted.
    """
    aside = path.with_name(f".{path.name}.refused-{time.time_ns()}")
    os.rename(path, aside)
    return aside


def check_private_dir(path: Path | str, uid: int | None = None) -> None:
    """Raise UnsafeFileError unless ``path`` is a real directory owned by ``uid`` (default:
    this process's effective user) that no group or other user can write into.

    Someone who can write into the directory can plant a symlink or a FIFO where the
    daemon will create a file, or swap a file between a check and a use.
    """
    uid = os.geteuid() if uid is None else uid
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFileError(path, "is a symlink; use the real directory")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeFileError(path, f"is not a directory ({describe_mode(info.st_mode)})")
    if info.st_uid != uid:
        raise UnsafeFileError(
            path, f"is owned by uid {info.st_uid}, not by this user (uid {uid})"
        )
    if info.st_mode & 0o022:
        raise UnsafeFileError(
            path, f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
        )


def ensure_private_dir(path: Path | str, mode: int = 0o700) -> None:
    """Create ``path`` (one level) if missing, then make sure it is ours and 0700.

    An existing directory owned by this user is tightened to ``mode`` through a
    descriptor opened without following symlinks; anything else raises UnsafeFileError.
    """
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    try:
        fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeFileError(path, "is not a directory (or is a symlink)") from None
        raise
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise UnsafeFileError(
                path, f"is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()})"
            )
        if stat.S_IMODE(info.st_mode) != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def describe_mode(mode: int) -> str:
    """What kind of file a ``st_mode`` is, for a message ("a FIFO", "a directory"...)."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return name
    return "not a regular file"

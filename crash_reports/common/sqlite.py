"""The one way telemetryd opens a SQLite store: WAL, a busy timeout, a schema check, and a
corrupt file moved aside (kept, never deleted) so a fresh one can start.

Every store (the per-hour stats, the agent event store) and their read-only readers go
through here, so a damaged file is recognised, named and logged the same way everywhere:
``<name>.corrupt-<UTC timestamp>[-n]`` next to the original, its ``-wal`` kept beside it.
A FIFO, symlink or directory under a database's name is refused before SQLite opens it
(``PlantedFileError``); a store's owner moves it aside like a damaged file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import Collection
from pathlib import Path

from crash_reports.common.atomic import fsync_dir
from crash_reports.common.files import UnsafeFileError, describe_mode

_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_CORRUPT = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


class CorruptDatabaseError(Exception):
    """The file is not a database this code can use (damaged, or a schema it does not know)."""


class PlantedFileError(UnsafeFileError, sqlite3.DatabaseError):
    """A database (or its ``-wal``/``-shm``) path holds a FIFO, symlink, directory or device.

    Both an ``UnsafeFileError`` and a ``sqlite3.DatabaseError``: every caller that handles
    "this database cannot be opened" handles it, without a traceback and without SQLite
    ever opening it (an ``O_RDONLY`` open of a FIFO blocks until a writer comes).
    """


def error_code(exc: sqlite3.Error) -> int:
    """The primary SQLite result code of an error (-1 when unknown)."""
    return int(getattr(exc, "sqlite_errorcode", -1) or -1) & 0xFF


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` means another connection holds the lock (wait and retry, don't repair)."""
    return isinstance(exc, sqlite3.Error) and error_code(exc) in _BUSY


def is_corrupt(exc: BaseException) -> bool:
    """Whether ``exc`` says the file itself is damaged."""
    return isinstance(exc, CorruptDatabaseError) or (
        isinstance(exc, sqlite3.Error) and error_code(exc) in _CORRUPT
    )


def connect(
    path: Path, *, busy_timeout_seconds: float, read_only: bool = False
) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit), usable from any thread.

    ``read_only`` opens through a URI with ``mode=ro``: nothing is created or changed.
    The connection waits ``busy_timeout_seconds`` for a lock held elsewhere.
    """
    if str(path) != ":memory:":
        _refuse_planted(path)
    target = f"file:{path}?mode=ro" if read_only else str(path)
    conn = sqlite3.connect(
        target, uri=read_only, isolation_level=None, check_same_thread=False, timeout=0
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
    return conn


def _refuse_planted(path: Path) -> None:
    """``PlantedFileError`` if the database or its WAL/shm files exist but are not regular
    files.

    SQLite follows symlinks and would block opening a FIFO: a file planted under one of
    these names must be refused, not written through.
    """
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = os.lstat(candidate).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            raise PlantedFileError(candidate,
                                   f"is not a regular file ({describe_mode(mode)})")


def use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL with ``synchronous = NORMAL``.

    WAL + NORMAL: a commit survives ``kill -9`` (it is in the OS) and never corrupts the
    file; a power cut may lose the last commits; no fsync per commit.
    """
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")


def check(
    conn: sqlite3.Connection, known_versions: Collection[int], *, integrity: bool = True
) -> None:
    """Raise ``CorruptDatabaseError`` unless the file is usable by code that knows
    ``known_versions`` of its schema (``PRAGMA user_version``; 0 is a new file).

    ``integrity`` adds ``PRAGMA quick_check`` (reads every page: meant for small files).
    A lock held elsewhere is raised as the ``sqlite3.Error`` it is, not as corruption.
    """
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        result = [r[0] for r in conn.execute("PRAGMA quick_check")] if integrity else ["ok"]
    except sqlite3.DatabaseError as exc:
        if is_busy(exc):
            raise
        raise CorruptDatabaseError(str(exc)) from exc
    if result != ["ok"]:
        raise CorruptDatabaseError("; ".join(str(r) for r in result[:5]))
    if version not in known_versions:
        raise CorruptDatabaseError(f"unknown schema version {version}")


def move_aside(path: Path) -> Path:
    """Rename a damaged database to ``<name>.corrupt-<UTC stamp>[-n]``; returns the new path.

    Never overwrites an earlier copy. The ``-wal`` file moves along under the name SQLite
    expects (for forensics); the ``-shm`` index is rebuilt from it, so it is deleted (a
    directory planted under its name is moved along instead).
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 0
    while os.path.lexists(aside):
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    # lexists, not exists: a planted symlink (even a dangling one) is moved, never followed.
    if os.path.lexists(path):
        path.rename(aside)
    wal = path.with_name(path.name + "-wal")
    if os.path.lexists(wal):
        wal.rename(aside.with_name(aside.name + "-wal"))
    shm = path.with_name(path.name + "-shm")
    if os.path.lexists(shm) and stat.S_ISDIR(os.lstat(shm).st_mode):
        shm.rename(aside.with_name(aside.name + "-shm"))
    with contextlib.suppress(FileNotFoundError):
        shm.unlink()
    fsync_dir(path.parent)
    return aside


def move_aside_logged(path: Path, error: BaseException, *, event: str) -> Path:
    """``move_aside`` plus one error log line ``event`` with path, moved_to and error."""
    aside = move_aside(path)
    import structlog  # here: `budget check` opens stores through this module on every tool call

    structlog.get_logger(component="storage").error(event, path=str(path), moved_to=str(aside),
                                         error=str(error))
    return aside

"""A Node heap snapshot as leak evidence, for trees ``telemetryd wrap`` started.

``wrap`` starts the child with ``--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=<heap
folder>`` in ``NODE_OPTIONS`` when its watch has ``evidence_node_heap = true``. Here the
top growing Node member gets SIGUSR2, and we wait (at most ``HEAP_SECONDS``) for a new
``.heapsnapshot`` of its pid whose size stopped changing and whose JSON is closed. The file
is made 0600 (it holds the agent's secrets) and only its path and size go in the report.
The folder keeps the newest ``KEEP_SNAPSHOTS``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crash_reports.storage.files import open_regular

HEAP_SECONDS = 10.0
POLL_SECONDS = 0.2
KEEP_SNAPSHOTS = 3
SUFFIX = ".heapsnapshot"


@dataclass(frozen=True, slots=True)
class NodeHeap:
    """Whether a tree's Node members may be snapshotted: the folder, or why not."""

    folder: Path | None
    why_not: str = ""


@dataclass(frozen=True, slots=True)
class HeapSnapshot:
    """A snapshot taken: where it is and how large (never its content)."""

    path: Path
    size_bytes: int


class HeapSnapshotError(Exception):
    """No snapshot; the message says why."""


def is_node(name: str) -> bool:
    """Whether a process name is Node's.

    >>> is_node("node"), is_node("nodejs"), is_node("node-MainThread"), is_node("python3")
    (True, True, True, False)
    """
    return name == "node" or name.startswith(("nodejs", "node-", "node "))


def take(folder: Path, pid: int, *, seconds: float = HEAP_SECONDS,
         monotonic: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> HeapSnapshot:
    """Signal ``pid`` and wait for its new, complete snapshot; raise HeapSnapshotError."""
    before = set(_snapshots(folder, pid))
    try:
        os.kill(pid, signal.SIGUSR2)
    except OSError as exc:
        raise HeapSnapshotError(f"SIGUSR2 failed: {exc.strerror or exc}") from None
    deadline = monotonic() + seconds
    sizes: dict[Path, int] = {}
    while monotonic() < deadline:
        sleep(POLL_SECONDS)
        for path in set(_snapshots(folder, pid)) - before:
            try:
                size = path.lstat().st_size
            except OSError:
                continue
            # Complete: the same size on two polls in a row and the JSON closed.
            if size > 0 and sizes.get(path) == size and _closed(path):
                _private(path)
                prune(folder)
                return HeapSnapshot(path, size)
            sizes[path] = size
    raise HeapSnapshotError(f"no complete snapshot within {seconds:g} s")


def prune(folder: Path, keep: int = KEEP_SNAPSHOTS) -> None:
    """Remove all but the newest ``keep`` snapshots (they are large and hold secrets)."""
    found = []
    for path in folder.glob(f"*{SUFFIX}"):
        try:
            found.append((path.lstat().st_mtime, path))
        except OSError:
            continue
    for _, path in sorted(found, reverse=True)[keep:]:
        try:
            path.unlink()
        except OSError:
            continue


def _snapshots(folder: Path, pid: int) -> list[Path]:
    # Node names them Heap.<date>.<time>.<pid>.<thread>.<seq>.heapsnapshot.
    return [path for path in folder.glob(f"*.{pid}.*{SUFFIX}") if path.is_file()]


def _closed(path: Path) -> bool:
    fd = open_regular(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        return size > 0 and os.pread(fd, 1, size - 1) == b"}"
    finally:
        os.close(fd)


def _private(path: Path) -> None:
    fd = open_regular(path, os.O_RDONLY)  # no symlink followed, so fchmod hits this file
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)

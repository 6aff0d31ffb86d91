"""A Node heap snapshot as leak evidence, for trees ``telemetryd wrap`` started.

``wrap`` starts the child with ``--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=<heap
folder>`` in ``NODE_OPTIONS`` when its watch has ``evidence_node_heap = true``. SIGUSR2 kills
a process that does not catch it, so the top growing Node member gets it only when its own
``/proc/PID/environ`` carries exactly those flags (a member started with another environment,
an MCP server say, does not) and its ``/proc/PID/status`` shows SIGUSR2 caught (node has
installed the handler). Of the environment only the ``NODE_OPTIONS`` entry is looked at, and
nothing of it is kept. The signal goes through a pidfd opened before those reads, so it can
never reach another process that took the pid since. Then we wait (at most ``seconds``)
for a new ``.heapsnapshot`` of its pid whose size stopped changing and whose JSON is closed.
The file is made 0600 (it holds the agent's secrets) and only its path and size go in the
report. The folder keeps the newest ``KEEP_SNAPSHOTS``. This runs off the tick (see
``evidence_worker``).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crash_reports.common.files import open_regular
from daemon.runtime.reports.node_options import HEAP_SIGNAL, SIGNAL_FLAG, asks_heap_snapshots

HEAP_SECONDS = 10.0
ENVIRON_BYTES = 1 << 20  # the most of /proc/PID/environ read looking for NODE_OPTIONS
STATUS_BYTES = 16 * 1024
CHUNK_BYTES = 64 * 1024
NODE_OPTIONS_ENTRY = b"NODE_OPTIONS="
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


def take(folder: Path, pid: int, *, seconds: float = HEAP_SECONDS, proc: Path = Path("/proc"),
         monotonic: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> HeapSnapshot:
    """Signal ``pid`` if it asks for it, and wait for its new, complete snapshot; raise
    HeapSnapshotError (saying why) otherwise."""
    pidfd = _pidfd(pid)
    try:
        why = why_not_signal(proc, pid, folder)
        if why is not None:
            raise HeapSnapshotError(why)
        before = set(_snapshots(folder, pid))
        try:
            _send(pidfd, pid, getattr(signal, HEAP_SIGNAL))
        except OSError as exc:
            raise HeapSnapshotError(f"{HEAP_SIGNAL} failed: {exc.strerror or exc}") from None
    finally:
        if pidfd is not None:
            os.close(pidfd)
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


def why_not_signal(proc: Path, pid: int, folder: Path) -> str | None:
    """Why ``pid`` must not get the snapshot signal, or None when it asked for it."""
    try:
        options = node_options_of(proc, pid)
    except OSError as exc:
        return f"environment unreadable ({exc.strerror or type(exc).__name__}); not signalled"
    if options is None or not asks_heap_snapshots(options, str(folder)):
        return (f"not started with our {SIGNAL_FLAG} (none in its NODE_OPTIONS); "
                "not signalled")
    try:
        caught = catches(proc, pid, getattr(signal, HEAP_SIGNAL))
    except OSError as exc:
        return f"status unreadable ({exc.strerror or type(exc).__name__}); not signalled"
    if not caught:
        return f"{HEAP_SIGNAL} not caught (yet); not signalled"
    return None


def node_options_of(proc: Path, pid: int) -> str | None:
    """The NODE_OPTIONS value in ``/proc/PID/environ``; no other entry is kept or returned.

    Read in chunks, at most ``ENVIRON_BYTES``; None when the entry is not found in that.
    """
    fd = open_regular(proc / str(pid) / "environ", os.O_RDONLY)
    try:
        rest = b""
        total = 0
        while total < ENVIRON_BYTES:
            chunk = os.read(fd, CHUNK_BYTES)
            if not chunk:
                break
            total += len(chunk)
            *entries, rest = (rest + chunk).split(b"\0")
            for entry in entries:
                if entry.startswith(NODE_OPTIONS_ENTRY):
                    return entry[len(NODE_OPTIONS_ENTRY):].decode(errors="replace")
        if rest.startswith(NODE_OPTIONS_ENTRY) and total < ENVIRON_BYTES:
            return rest[len(NODE_OPTIONS_ENTRY):].decode(errors="replace")
        return None
    finally:
        os.close(fd)


def catches(proc: Path, pid: int, signum: int) -> bool:
    """Whether ``/proc/PID/status`` shows a handler installed for ``signum`` (SigCgt)."""
    fd = open_regular(proc / str(pid) / "status", os.O_RDONLY)
    try:
        text = os.read(fd, STATUS_BYTES).decode(errors="replace")
    finally:
        os.close(fd)
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "SigCgt":
            try:
                return bool(int(value.strip(), 16) >> (signum - 1) & 1)
            except ValueError:
                return False
    return False


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (Linux 5.3+), pinning the process the checks read; None where
    pidfds do not exist (then the signal goes by pid)."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            raise HeapSnapshotError("the process is gone") from None
        return None


def _send(pidfd: int | None, pid: int, signum: int) -> None:
    sender = getattr(signal, "pidfd_send_signal", None)
    if pidfd is not None and sender is not None:
        sender(pidfd, signum)
    else:
        os.kill(pid, signum)


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

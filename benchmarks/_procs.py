"""Process helpers for the benchmarks: spawn process trees in one process group we own, reap them.

Every process a benchmark starts goes into a single process group created by the
first one spawned, so one ``killpg`` of that group (plus a kill by pid of each
process we hold) ends everything we started and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# A shell that forks one sleeping child and waits for it: two small processes per tree
# (about 1 MB each), where a Python child would cost ten times that.
TREE_SCRIPT = "sleep 100000 & wait"

# A watched agent that sits just under a critical RSS, then jumps over it when told to.
# It prints the wall-clock time just before and just after the jump on stdout.
LEAKER_SCRIPT = r"""
import mmap, os, sys, time
page = os.sysconf("SC_PAGE_SIZE")
start_bytes, jump_bytes = int(sys.argv[1]), int(sys.argv[2])
buffer = mmap.mmap(-1, start_bytes + jump_bytes)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
offset = 0
while rss() < start_bytes and offset < start_bytes:
    buffer[offset:offset + 1] = b"x"
    offset += page
sys.stdout.write(f"ready {rss()}\n")
sys.stdout.flush()
sys.stdin.readline()
before = time.time()
end = offset + jump_bytes
while offset < end:
    buffer[offset:offset + 1] = b"x"
    offset += page
after = time.time()
sys.stdout.write(f"jumped {before!r} {after!r} {rss()}\n")
sys.stdout.flush()
sys.stdin.readline()
"""


@dataclass
class ProcessGroup:
    """Processes started by a benchmark, all in one process group that the first one leads."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pgid: int | None = None

    def spawn(self, argv: Sequence[str], *, stdin: int | None = subprocess.DEVNULL,
              stdout: int | None = subprocess.DEVNULL,
              env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start one process in the group (the first one creates the group)."""
        group = 0 if self.pgid is None else self.pgid
        proc = subprocess.Popen(list(argv), stdin=stdin, stdout=stdout,
                                stderr=subprocess.DEVNULL if stdout == subprocess.DEVNULL
                                else subprocess.STDOUT,
                                process_group=group, env=env, cwd=cwd)
        if self.pgid is None:
            self.pgid = proc.pid
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        """SIGKILL the whole group and every process we hold by pid, then reap them."""
        if self.pgid is not None:
            # The group cannot be reused by anyone else while its leader is unreaped.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self.procs = []
        self.pgid = None

    def forget(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop tracking a process that was already stopped and reaped."""
        self.procs = [p for p in self.procs if p is not proc]


def read_ppids(pids: Iterable[int] | None = None) -> dict[int, int]:
    """Pid -> parent pid for the given pids (or every process), from /proc/PID/stat."""
    wanted = list(pids) if pids is not None else [
        int(name) for name in os.listdir("/proc") if name.isdigit()]
    result: dict[int, int] = {}
    for pid in wanted:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
                line = handle.read()
        except OSError:
            continue
        result[pid] = int(line[line.rindex(")") + 2:].split()[1])
    return result


def spawn_trees(group: ProcessGroup, count: int, marker: str,
                timeout_seconds: float = 60.0, shell: str = "/bin/sh") -> list[int]:
    """Start ``count`` trees of ``sh`` + ``sleep``; return the shells' pids once all have a child.

    Each shell's command line ends with ``<marker>-<i>`` so a ``cmdline`` regex on
    the marker matches the shells and not their children. ``shell`` may be a symlink to
    ``/bin/sh`` with a name of its own: the kernel names the process after it, so a
    ``process_name`` watch matches the shells.
    """
    roots = [group.spawn([shell, "-c", TREE_SCRIPT, f"{marker}-{index}"]).pid
             for index in range(count)]
    wanted = set(roots)
    deadline = time.monotonic() + timeout_seconds
    while True:
        parents = {ppid for ppid in read_ppids().values() if ppid in wanted}
        if parents == wanted:
            return roots
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(parents)} of {count} trees got their child in time")
        time.sleep(0.05)


def spawn_leaker(group: ProcessGroup, marker: str, start_bytes: int,
                 jump_bytes: int) -> subprocess.Popen[bytes]:
    """Start the leaker; it returns once the leaker sits at ``start_bytes`` of RSS."""
    proc = group.spawn([sys.executable, "-c", LEAKER_SCRIPT, str(start_bytes), str(jump_bytes),
                        marker], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("ready"):
        raise RuntimeError(f"leaker did not start: {line!r}")
    return proc


def leak_jump(proc: subprocess.Popen[bytes]) -> tuple[float, float]:
    """Make the leaker jump over its level; returns wall time just before and after the jump."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    line = proc.stdout.readline().decode().split()
    if not line or line[0] != "jumped":
        raise RuntimeError(f"leaker did not jump: {line!r}")
    return float(line[1]), float(line[2])

"""One pass over the process table per tick: pid, ppid, name, CPU times and RSS of every process.

On Linux this reads ``/proc/PID/stat`` directly (one small read per process holds all
of it; psutil builds an object per process and costs four times as much for the
whole table). Elsewhere it asks psutil. The reader takes the proc root as an argument
so tests can point it at a fixture tree.

Most of a tick's cost is these reads, and most processes on a machine belong to no
watched tree. So a scan given ``keep_fresh`` (the pids the previous tick's trees used)
lists ``/proc`` every time but reads the stat line only of: those pids, processes it has
not seen before (a new pid, or a pid whose ``/proc`` entry is a new inode: a reused
pid), processes younger than ``YOUNG_SECONDS`` (they exec and rename themselves), and a
rotating tenth of the rest (each one at least every ``ROTATE_SCANS`` scans, so a rename
or an exec under an old pid is seen within that many ticks). Everything else is carried
over from the scan that last read it; ``stale`` says which, and ``refresh`` reads them
when a tree needs them after all. A line that did not change is not parsed again.

The stat files of the ``keep_fresh`` processes stay open between scans and are read
again with ``pread`` (half the cost of open, read, close). An open ``/proc/PID/stat``
stays bound to its process: once it exits the read fails (ESRCH) even if the pid is
reused, and the file is closed. At most ``MAX_HELD_FILES`` are held.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
import weakref
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

ROTATE_SCANS = 10
YOUNG_SECONDS = 10.0
MAX_HELD_FILES = 512  # and at most a quarter of the open-file limit


@dataclass(frozen=True, slots=True)
class ProcStat:
    """What one tick knows about one process."""

    pid: int
    ppid: int
    comm: str
    state: str
    cpu_seconds: float
    rss_bytes: int
    start_ticks: int
    num_threads: int

    @property
    def key(self) -> tuple[int, int]:
        """Identity that survives pid reuse: (pid, start time)."""
        return (self.pid, self.start_ticks)

    @property
    def is_zombie(self) -> bool:
        """A process that exited and waits for its parent to reap it."""
        return self.state == "Z"

    @property
    def is_exiting(self) -> bool:
        """Exited or on its way out: a zombie, or a process whose memory is already released.

        A killed process (SIGKILL, the OOM killer) frees its memory before it becomes a
        zombie; for a tick or two it shows as running with no resident pages at all.
        A live user-space process always has some.
        """
        if self.state in ("Z", "X", "x"):
            return True
        # Kernel threads (children of kthreadd, pid 2) never have resident pages.
        return self.rss_bytes == 0 and self.ppid != 2 and self.pid != 2


class ProcessTable(Protocol):
    """A source of one snapshot of all processes."""

    def scan(self, keep_fresh: AbstractSet[int] | None = None) -> dict[int, ProcStat]:
        """Every process visible now, by pid; with ``keep_fresh``, some may be carried over
        from an earlier scan (``stale``), never those pids."""
        ...

    def stale(self, pids: Iterable[int]) -> list[int]:
        """Those of ``pids`` the last scan carried over instead of reading."""
        ...

    def refresh(self, pids: Iterable[int]) -> dict[int, ProcStat]:
        """Read these processes now; one that is gone is left out."""
        ...

    def create_time(self, stat: ProcStat) -> float:
        """Wall-clock start time (epoch seconds) of a process."""
        ...

    def close(self) -> None:
        """Release what the reader holds between scans."""
        ...


def parse_stat_line(pid: int, line: str, clock_ticks: int, page_size: int) -> ProcStat:
    """Parse one ``/proc/PID/stat`` line.

    The command name sits in parentheses and may itself hold spaces and parentheses,
    so fields are counted from the last ``)``.

    >>> line = "42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1000 1 512"
    >>> st = parse_stat_line(42, line, clock_ticks=100, page_size=4096)
    >>> st.comm, st.ppid, st.cpu_seconds, st.rss_bytes, st.num_threads, st.start_ticks
    ('my (odd) cmd', 1, 3.0, 2097152, 3, 1000)
    """
    open_paren = line.index("(")
    close_paren = line.rindex(")")
    comm = line[open_paren + 1 : close_paren]
    # Only the first 22 fields are used; not splitting the other 30 halves the cost.
    fields = line[close_paren + 2 :].split(None, 22)
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        comm=comm,
        state=fields[0],
        cpu_seconds=(int(fields[11]) + int(fields[12])) / clock_ticks,
        rss_bytes=int(fields[21]) * page_size,
        start_ticks=int(fields[19]),
        num_threads=int(fields[17]),
    )


def _read_all(fd: int) -> bytes:
    """Everything left in a file; one read for a stat line, more only if it is longer."""
    chunk = os.read(fd, 4096)
    if len(chunk) < 4096:
        return chunk
    parts = [chunk]
    while chunk:
        chunk = os.read(fd, 4096)
        parts.append(chunk)
    return b"".join(parts)


def _close_all(fds: dict[int, int]) -> None:
    for fd in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


class _HeldFiles:
    """Open ``/proc/PID/stat`` files of the processes read every scan, by pid."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.fds: dict[int, int] = {}
        # Closed when the table is dropped, whoever forgets to call close().
        self._finalizer = weakref.finalize(self, _close_all, self.fds)

    def read(self, pid: int, path: str) -> bytes:
        """The file's whole content now (OSError if the process is gone)."""
        fd = self.fds.get(pid)
        if fd is not None:
            try:
                data = os.pread(fd, 4096, 0)
                if len(data) < 4096:
                    return data
            except OSError:
                pass
            del self.fds[pid]
            os.close(fd)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = _read_all(fd)
        except OSError:
            os.close(fd)
            raise
        if len(self.fds) < self.limit and len(data) < 4096:
            self.fds[pid] = fd
        else:
            os.close(fd)
        return data

    def keep_only(self, wanted: AbstractSet[int], listed: Mapping[int, object]) -> None:
        """Close the files of processes no longer read every scan, or no longer listed."""
        for pid in [pid for pid in self.fds if pid not in wanted or pid not in listed]:
            os.close(self.fds.pop(pid))

    def close(self) -> None:
        """Close every file."""
        self._finalizer()


def _held_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_HELD_FILES
    return max(0, min(MAX_HELD_FILES, soft // 4))


@dataclass(frozen=True, slots=True)
class _Seen:
    """A process as last read: its /proc entry's inode, the raw line and what it says."""

    inode: int
    raw: bytes
    stat: ProcStat


class LinuxProcTable:
    """Reads ``<proc_root>/*/stat``; processes that vanish mid-scan are skipped."""

    def __init__(self, proc_root: Path = Path("/proc")) -> None:
        self.proc_root = proc_root
        self.clock_ticks = os.sysconf("SC_CLK_TCK")
        self.page_size = os.sysconf("SC_PAGE_SIZE")
        self.boot_time = self._read_boot_time()
        self._seen: dict[int, _Seen] = {}
        self._fresh: set[int] = set()
        self._scans = 0
        self._held = _HeldFiles(_held_limit())

    def _read_boot_time(self) -> float:
        try:
            with open(self.proc_root / "stat", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("btime "):
                        return float(line.split()[1])
        except OSError:
            pass
        return psutil.boot_time()

    def scan(self, keep_fresh: AbstractSet[int] | None = None) -> dict[int, ProcStat]:
        """Every process visible now, by pid (see the module's docstring for ``keep_fresh``)."""
        self._scans += 1
        phase = self._scans % ROTATE_SCANS
        young_since = (time.clock_gettime(time.CLOCK_BOOTTIME) - YOUNG_SECONDS) \
            * self.clock_ticks
        previous = self._seen
        seen: dict[int, _Seen] = {}
        fresh: set[int] = set()
        table: dict[int, ProcStat] = {}
        read, reread, held = self._read, self._reread, self._held.fds
        with os.scandir(self.proc_root) as listing:
            for entry in listing:
                name = entry.name
                if not name.isdigit():
                    continue
                pid = int(name)
                old = previous.get(pid)
                now: _Seen | None = None
                if old is not None and keep_fresh is not None:
                    if pid in keep_fresh:
                        fd = held.get(pid)
                        if fd is not None:  # an open file is still this very process
                            now = reread(pid, fd, old)
                    elif (pid % ROTATE_SCANS != phase and old.stat.start_ticks < young_since
                          and old.inode == entry.inode()):
                        seen[pid] = old  # its turn has not come: carried over
                        table[pid] = old.stat
                        continue
                if now is None:
                    now = read(pid, entry.inode(), old,
                               keep_fresh is not None and pid in keep_fresh)
                if now is not None:
                    seen[pid] = now
                    table[pid] = now.stat
                    fresh.add(pid)
        self._seen = seen
        self._fresh = fresh
        self._held.keep_only(keep_fresh or frozenset(), seen)
        return table

    def _reread(self, pid: int, fd: int, old: _Seen) -> _Seen | None:
        """The line of a held file again; None when the file must be opened anew."""
        try:
            data = os.pread(fd, 4096, 0)
        except OSError:
            return None  # exited (ESRCH): a reused pid is opened and read as new
        if data == old.raw:
            return old
        if not data or len(data) >= 4096:
            return None
        return self._parsed(pid, old.inode, data)

    def close(self) -> None:
        """Close the stat files held open between scans."""
        self._held.close()

    def stale(self, pids: Iterable[int]) -> list[int]:
        """Those of ``pids`` the last scan carried over instead of reading."""
        fresh = self._fresh
        return [pid for pid in pids if pid not in fresh]

    def refresh(self, pids: Iterable[int]) -> dict[int, ProcStat]:
        """Read these processes now; one that is gone is left out."""
        found: dict[int, ProcStat] = {}
        for pid in pids:
            old = self._seen.get(pid)
            now = self._read(pid, old.inode if old else 0, old)
            if now is None:
                self._seen.pop(pid, None)
                continue
            self._seen[pid] = now
            self._fresh.add(pid)
            found[pid] = now.stat
        return found

    def _read(self, pid: int, inode: int, old: _Seen | None, hold: bool = False
              ) -> _Seen | None:
        # Raw os.open/os.read: a text-mode open() builds three I/O objects per file,
        # which cost more than the kernel's work of producing the line.
        path = f"{self.proc_root}/{pid}/stat"
        try:
            if hold:
                data = self._held.read(pid, path)
            else:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    data = _read_all(fd)
                finally:
                    os.close(fd)
        except OSError:
            return None  # exited between listing and reading, or unreadable
        if old is not None and old.raw == data:
            return old if old.inode == inode else _Seen(inode, data, old.stat)
        return self._parsed(pid, inode, data)

    def _parsed(self, pid: int, inode: int, data: bytes) -> _Seen | None:
        try:
            stat = parse_stat_line(pid, data.decode("utf-8", errors="replace"),
                                   self.clock_ticks, self.page_size)
        except (ValueError, IndexError):
            return None
        return _Seen(inode, data, stat)

    def create_time(self, stat: ProcStat) -> float:
        """Wall-clock start time (epoch seconds) of a process."""
        return self.boot_time + stat.start_ticks / self.clock_ticks


class PsutilProcTable:
    """The portable reader (macOS, BSD): the same snapshot through psutil."""

    _ATTRS = ("pid", "ppid", "name", "status", "cpu_times", "memory_info", "create_time",
              "num_threads")
    _STATUS = {psutil.STATUS_ZOMBIE: "Z", psutil.STATUS_RUNNING: "R", psutil.STATUS_SLEEPING: "S"}

    def scan(self, keep_fresh: AbstractSet[int] | None = None) -> dict[int, ProcStat]:
        """Every process visible now, by pid (all read: ``keep_fresh`` changes nothing)."""
        table: dict[int, ProcStat] = {}
        for proc in psutil.process_iter(list(self._ATTRS)):
            info = proc.info
            cpu = info.get("cpu_times")
            mem = info.get("memory_info")
            created = info.get("create_time") or 0.0
            table[info["pid"]] = ProcStat(
                pid=info["pid"],
                ppid=info.get("ppid") or 0,
                comm=info.get("name") or "",
                state=self._STATUS.get(info.get("status") or "", "S"),
                cpu_seconds=(cpu.user + cpu.system) if cpu else 0.0,
                rss_bytes=mem.rss if mem else 0,
                # Centiseconds since the epoch keep the (pid, start) identity exact enough.
                start_ticks=int(created * 100),
                num_threads=info.get("num_threads") or 0,
            )
        return table

    def stale(self, pids: Iterable[int]) -> list[int]:
        """Nothing is ever carried over."""
        return []

    def refresh(self, pids: Iterable[int]) -> dict[int, ProcStat]:
        """Never needed: every scan reads everything."""
        return {}

    def close(self) -> None:
        """Nothing is held between scans."""

    def create_time(self, stat: ProcStat) -> float:
        """Wall-clock start time (epoch seconds) of a process."""
        return stat.start_ticks / 100


def default_process_table() -> ProcessTable:
    """The fastest reader for this platform."""
    if sys.platform.startswith("linux") and Path("/proc/self/stat").exists():
        return LinuxProcTable()
    return PsutilProcTable()

"""One pass over the process table per tick: pid, ppid, name, CPU times and RSS of every process.

On Linux this reads ``/proc/PID/stat`` directly (one small read per process holds all
of it; psutil builds an object per process and costs four times as much for the
whole table). Elsewhere it asks psutil. The reader takes the proc root as an argument
so tests can point it at a fixture tree.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil


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

    def scan(self) -> dict[int, ProcStat]:
        """Every process visible now, by pid."""
        ...

    def create_time(self, stat: ProcStat) -> float:
        """Wall-clock start time (epoch seconds) of a process."""
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


class LinuxProcTable:
    """Reads ``<proc_root>/*/stat``; processes that vanish mid-scan are skipped."""

    def __init__(self, proc_root: Path = Path("/proc")) -> None:
        self.proc_root = proc_root
        self.clock_ticks = os.sysconf("SC_CLK_TCK")
        self.page_size = os.sysconf("SC_PAGE_SIZE")
        self.boot_time = self._read_boot_time()

    def _read_boot_time(self) -> float:
        try:
            with open(self.proc_root / "stat", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("btime "):
                        return float(line.split()[1])
        except OSError:
            pass
        return psutil.boot_time()

    def scan(self) -> dict[int, ProcStat]:
        """Every process visible now, by pid."""
        table: dict[int, ProcStat] = {}
        root = str(self.proc_root)
        ticks, page = self.clock_ticks, self.page_size
        # Raw os.open/os.read: a text-mode open() builds three I/O objects per file,
        # which cost more than the kernel's work of producing the line.
        for name in os.listdir(root):
            if not name.isdigit():
                continue
            try:
                fd = os.open(f"{root}/{name}/stat", os.O_RDONLY)
                try:
                    data = _read_all(fd)
                finally:
                    os.close(fd)
                pid = int(name)
                table[pid] = parse_stat_line(
                    pid, data.decode("utf-8", errors="replace"), ticks, page
                )
            except (OSError, ValueError, IndexError):
                continue  # exited between listing and reading, or unreadable
        return table

    def create_time(self, stat: ProcStat) -> float:
        """Wall-clock start time (epoch seconds) of a process."""
        return self.boot_time + stat.start_ticks / self.clock_ticks


class PsutilProcTable:
    """The portable reader (macOS, BSD): the same snapshot through psutil."""

    _ATTRS = ("pid", "ppid", "name", "status", "cpu_times", "memory_info", "create_time",
              "num_threads")
    _STATUS = {psutil.STATUS_ZOMBIE: "Z", psutil.STATUS_RUNNING: "R", psutil.STATUS_SLEEPING: "S"}

    def scan(self) -> dict[int, ProcStat]:
        """Every process visible now, by pid."""
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

    def create_time(self, stat: ProcStat) -> float:
        """Wall-clock start time (epoch seconds) of a process."""
        return stat.start_ticks / 100


def default_process_table() -> ProcessTable:
    """The fastest reader for this platform."""
    if sys.platform.startswith("linux") and Path("/proc/self/stat").exists():
        return LinuxProcTable()
    return PsutilProcTable()

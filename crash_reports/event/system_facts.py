"""Facts about the machine and a process for a crash report, read at the edge with psutil."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from crash_reports.event.redact import redact_command_line


def parse_pressure(text: str) -> dict[str, dict[str, float]]:
    """Parse a /proc/pressure/* file (PSI).

    >>> parse_pressure("some avg10=1.50 avg60=0.20 avg300=0.00 total=123\\n")
    {'some': {'avg10': 1.5, 'avg60': 0.2, 'avg300': 0.0, 'total': 123.0}}
    """
    result: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        values = {}
        for part in parts[1:]:
            key, _, value = part.partition("=")
            try:
                values[key] = float(value)
            except ValueError:
                continue
        result[parts[0]] = values
    return result


def parse_vmstat_counter(text: str, name: str) -> int | None:
    """One counter from /proc/vmstat text.

    >>> parse_vmstat_counter("nr_free_pages 10\\noom_kill 3\\n", "oom_kill")
    3
    """
    # A find, not a split into lines: the daemon reads this every tick (170 lines).
    padded = "\n" + text
    needle = f"\n{name} "
    at = padded.find(needle)
    if at < 0:
        return None
    end = padded.find("\n", at + 1)
    value = padded[at + len(needle): end if end >= 0 else None].strip()
    return int(value) if value.isdigit() else None


class SystemFacts:
    """Reads system-wide memory, load and pressure; the proc root is an argument for tests."""

    def __init__(self, proc_root: Path = Path("/proc")) -> None:
        self.proc_root = proc_root

    def oom_kill_count(self) -> int | None:
        """The kernel's count of OOM kills since boot, where /proc/vmstat has it."""
        try:
            # Raw reads: an open() in text mode builds three I/O objects, every tick.
            fd = os.open(self.proc_root / "vmstat", os.O_RDONLY | os.O_CLOEXEC)
            try:
                chunks = []
                while chunk := os.read(fd, 65536):
                    chunks.append(chunk)
            finally:
                os.close(fd)
        except OSError:
            return None
        return parse_vmstat_counter(b"".join(chunks).decode("ascii", "replace"), "oom_kill")

    def snapshot(self) -> dict[str, Any]:
        """Memory, swap, load and PSI now."""
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        facts: dict[str, Any] = {
            "memory_total_bytes": memory.total,
            "memory_available_bytes": memory.available,
            "memory_used_percent": memory.percent,
            "swap_total_bytes": swap.total,
            "swap_used_bytes": swap.used,
            "cpu_count": psutil.cpu_count(),
        }
        with contextlib.suppress(OSError):
            facts["load_average"] = list(os.getloadavg())
        pressure_dir = self.proc_root / "pressure"
        for resource in ("memory", "cpu", "io"):
            try:
                facts[f"pressure_{resource}"] = parse_pressure(
                    (pressure_dir / resource).read_text()
                )
            except OSError:
                continue
        oom = self.oom_kill_count()
        if oom is not None:
            facts["oom_kill_total"] = oom
        return facts


DENIED = "[access denied]"


def process_details(pid: int) -> dict[str, Any] | None:
    """Who a process is, for a report: never its environment; the command line redacted."""
    try:
        proc = psutil.Process(pid)
        details: dict[str, Any] = {"pid": pid}
        with proc.oneshot():
            readers: dict[str, Any] = {
                "ppid": proc.ppid,
                "name": proc.name,
                "exe": proc.exe,
                "cmdline": lambda: redact_command_line(proc.cmdline()),
                "cwd": proc.cwd,
                "user": proc.username,
                "create_time": proc.create_time,
                "threads": proc.num_threads,
                "fds": proc.num_fds if hasattr(proc, "num_fds") else lambda: None,
                "status": proc.status,
                "rss_bytes": lambda: proc.memory_info().rss,
                "vms_bytes": lambda: proc.memory_info().vms,
                "cpu_user_seconds": lambda: proc.cpu_times().user,
                "cpu_system_seconds": lambda: proc.cpu_times().system,
            }
            for key, read in readers.items():
                try:
                    details[key] = read()
                except psutil.AccessDenied:
                    details[key] = DENIED
                except (OSError, KeyError):
                    details[key] = None
        return details
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None


def tree_pss_bytes(pids: Sequence[int], proc_root: str = "/proc",
                   max_pids: int = 512) -> int | None:
    """The tree's proportional set size: the sum of each member's ``Pss`` from
    ``smaps_rollup``, so a page shared by N members counts 1/N in each (once in all).

    Read only when a report is written (it takes each process's memory-map lock and costs
    far more than ``stat``), for at most ``max_pids`` members; None when none could be read
    (another user's processes without privileges, or a kernel without smaps_rollup).
    """
    total = 0
    read_any = False
    for pid in list(pids)[:max_pids]:
        try:
            with open(f"{proc_root}/{pid}/smaps_rollup", "rb") as handle:
                text = handle.read(8192)
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith(b"Pss:"):
                total += int(line.split()[1]) * 1024
                read_any = True
                break
    return total if read_any else None

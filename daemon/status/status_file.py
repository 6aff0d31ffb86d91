"""The status snapshot: written atomically by the daemon each tick, read by ``telemetryd status``.

Exit codes follow the monitoring-plugin convention so ``telemetryd status`` can be
used as a Nagios/Icinga/monit check directly.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crash_reports.common.atomic import write_atomic
from crash_reports.common.files import read_regular
from crash_reports.common.humanize import format_bytes, format_duration, printable
from daemon.exit_codes import ExitCode
from daemon.status.snapshot import StatusSnapshot, StatusUnreadableError
from daemon.watch.thresholds import Level

_MAX_STATUS_BYTES = 64 * 1024 * 1024
_STATE_CODES = {Level.OK: ExitCode.OK, Level.WARNING: ExitCode.WARNING,
                Level.CRITICAL: ExitCode.CRITICAL}


def write_snapshot(path: Path, snapshot: StatusSnapshot) -> None:
    """Replace the status file atomically (readable by the owner only)."""
    data = json.dumps(snapshot.to_json(), separators=(",", ":")).encode()
    write_atomic(path, data, mode=0o600, durable=False)


def read_snapshot(path: Path) -> StatusSnapshot:
    """Read the snapshot or raise StatusUnreadableError with the reason."""
    try:
        data = json.loads(read_regular(path, max_bytes=_MAX_STATUS_BYTES))
    except FileNotFoundError:
        raise StatusUnreadableError(
            f"no status file at {path} (has the daemon ever run here?)"
        ) from None
    except OSError as exc:
        raise StatusUnreadableError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise StatusUnreadableError(f"{path} is not a status snapshot: {exc}") from None
    try:
        return StatusSnapshot.from_json(data)
    except StatusUnreadableError as exc:
        raise StatusUnreadableError(f"{path}: {exc}") from None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Verdict:
    """What ``status`` concludes: exit code, and whether the daemon runs."""

    exit_code: ExitCode
    running: bool
    summary: str


def evaluate(snapshot: StatusSnapshot, lock_held: bool, alive: bool, now: float,
             disk_full: bool = False) -> Verdict:
    """Decide the exit code from a snapshot (pure).

    A daemon that runs but cannot write (``disk_full``: the state dir's filesystem has
    no room, or the daemon said so itself) is degraded, exit 1: its snapshot may be old
    because status.json cannot be replaced, which is not the same as a stuck tick.

    >>> from daemon.status.snapshot import TickInfo
    >>> snap = StatusSnapshot(pid=1, telemetryd_version="0", started_at=0.0, config_source="",
    ...                       state_dir="", interval=1.0, last_tick=TickInfo(99.0, 0.0, 0, 1))
    >>> evaluate(snap, lock_held=True, alive=True, now=100.0).exit_code
    <ExitCode.OK: 0>
    >>> evaluate(snap, lock_held=False, alive=False, now=100.0).exit_code
    <ExitCode.UNKNOWN: 3>
    """
    if snapshot.stopped or not alive or not lock_held:
        return Verdict(ExitCode.UNKNOWN, False, "telemetryd is not running")
    if snapshot.last_tick is None:
        return Verdict(ExitCode.UNKNOWN, True, "telemetryd is starting (no tick yet)")
    last_tick = snapshot.last_tick.at
    interval = snapshot.interval
    stale_after = max(3 * interval, interval + 10.0)
    degraded = "disk full" if disk_full else snapshot.degraded
    if now - last_tick > stale_after:
        if degraded is not None:
            return Verdict(ExitCode.WARNING, True, f"degraded: {degraded} (status last "
                           f"written {now - last_tick:.0f}s ago)")
        return Verdict(ExitCode.UNKNOWN, True,
                       f"telemetryd is stuck: last tick {now - last_tick:.0f}s ago")
    worst = ExitCode.OK
    for watch in snapshot.watches:
        for proc in watch.processes:
            worst = max(worst, _STATE_CODES[proc.state])
    summary = {0: "all watched processes ok", 1: "some watched process at warning",
               2: "some watched process at critical"}[worst]
    if degraded is not None:
        return Verdict(ExitCode(max(worst, ExitCode.WARNING)), True,
                       f"degraded: {degraded}; {summary}")
    return Verdict(ExitCode(worst), True, summary)


def disk_full(directory: Path, min_free_bytes: int = 64 * 1024) -> bool:
    """Whether the filesystem holding ``directory`` has less than ``min_free_bytes`` free."""
    try:
        info = os.statvfs(directory)
    except OSError:
        return False
    return info.f_bavail * info.f_frsize < min_free_bytes


def _cell(key: str, value: Any, now: float) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    # Fields holding a wall-clock time read better as "how long ago / from now".
    if (key.endswith("_at") or key.endswith("_until")) and isinstance(value, int | float):
        delta = value - now
        return f"in {format_duration(delta)}" if delta > 0 else f"{format_duration(-delta)} ago"
    if isinstance(value, dict):
        return printable(",".join(f"{k}:{v}" for k, v in value.items())) or "-"
    return printable(str(value))


def render_table(snapshot: StatusSnapshot, verdict: Verdict, now: float) -> str:
    """The human view of a snapshot."""
    lines: list[str] = []
    version = snapshot.telemetryd_version
    if verdict.running:
        lines.append(f"telemetryd {version}: running (pid {snapshot.pid}) - {verdict.summary}")
        lines.append(f"  uptime      {format_duration(now - snapshot.started_at)}")
    else:
        lines.append(f"telemetryd {version}: not running (last pid {snapshot.pid})")
    lines.append(f"  config      {printable(snapshot.config_source)}")
    lines.append(f"  state dir   {printable(snapshot.state_dir)}")
    tick = snapshot.last_tick
    if tick is not None:
        lines.append(
            f"  last tick   {now - tick.at:.1f}s ago, took {tick.duration_seconds * 1000:.1f} ms, "
            f"interval {snapshot.interval}s, {tick.processes_scanned} processes"
        )
    document = snapshot.to_json()
    sections = (("reports", "reports"), ("flush", "delivery"), ("otlp", "otlp"),
                ("metrics", "metrics"))
    for key, title in sections:
        section = document.get(key)
        if section:
            text = ", ".join(f"{k}={_cell(k, v, now)}" for k, v in section.items())
            lines.append(f"  {title:<11} {text}")
    lines.append("")
    if not verdict.running:
        lines.append("last known state, as the daemon last wrote it:")
    header = ("WATCH", "PID", "NAME", "RSS", "CPU%", "STATE", "OVER", "GROWTH/MIN", "ETA", "NOTE")
    rows: list[tuple[str, ...]] = [header]
    for watch in snapshot.watches:
        if not watch.processes and not watch.orphans:
            rows.append((watch.name, "-", "-", "-", "-", "-", "-", "-", "-", "no match"))
        for proc in watch.processes:
            rate = proc.rate_bytes_per_min
            eta = proc.eta_seconds
            rows.append((
                watch.name, str(proc.pid), proc.name or "-",
                format_bytes(proc.rss_bytes), f"{proc.cpu_percent:.0f}",
                proc.state.label, str(proc.samples_over),
                "-" if rate is None else format_bytes(rate),
                "-" if eta is None else format_duration(eta),
                "; ".join(part for part in (f"v{proc.version}" if proc.version else "",
                                            proc.note) if part),
            ))
        for orphan in watch.orphans:
            left_by = f"pid {orphan.agent_pid}" + (" (exited)" if orphan.agent_exited else "")
            rows.append((
                watch.name, str(orphan.pid), orphan.name or "-", format_bytes(orphan.rss_bytes),
                f"{orphan.cpu_percent:.0f}", "orphan", "-", "-", "-",
                f"left by {left_by}, age {format_duration(orphan.age_seconds)}, "
                f"{orphan.members} process{'es' if orphan.members != 1 else ''}",
            ))
    rows = [tuple(printable(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)

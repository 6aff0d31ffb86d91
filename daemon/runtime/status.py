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

from crash_reports.event.humanize import format_bytes, format_duration
from crash_reports.storage.atomic import write_atomic
from daemon.cli.exit_codes import ExitCode

STATUS_VERSION = 1


def write_snapshot(path: Path, snapshot: dict[str, Any]) -> None:
    """Replace the status file atomically (readable by the owner only)."""
    data = json.dumps(snapshot, separators=(",", ":")).encode()
    write_atomic(path, data, mode=0o600, durable=False)


class StatusUnreadableError(Exception):
    """The status file is missing or not a snapshot."""


def read_snapshot(path: Path) -> dict[str, Any]:
    """Read the snapshot or raise StatusUnreadableError with the reason."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise StatusUnreadableError(
            f"no status file at {path} (has the daemon ever run here?)"
        ) from None
    except OSError as exc:
        raise StatusUnreadableError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise StatusUnreadableError(f"{path} is not a status snapshot: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != STATUS_VERSION:
        raise StatusUnreadableError(f"{path} is not a status snapshot this version understands")
    return data


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


def evaluate(snapshot: dict[str, Any], lock_held: bool, alive: bool, now: float) -> Verdict:
    """Decide the exit code from a snapshot (pure).

    >>> snap = {"stopped": False, "interval": 1.0, "last_tick": {"at": 99.0}, "watches": []}
    >>> evaluate(snap, lock_held=True, alive=True, now=100.0).exit_code
    <ExitCode.OK: 0>
    >>> evaluate(snap, lock_held=False, alive=False, now=100.0).exit_code
    <ExitCode.UNKNOWN: 3>
    """
    if snapshot.get("stopped") or not alive or not lock_held:
        return Verdict(ExitCode.UNKNOWN, False, "telemetryd is not running")
    last_tick = (snapshot.get("last_tick") or {}).get("at")
    interval = float(snapshot.get("interval") or 1.0)
    if last_tick is None:
        return Verdict(ExitCode.UNKNOWN, True, "telemetryd is starting (no tick yet)")
    stale_after = max(3 * interval, interval + 10.0)
    if now - float(last_tick) > stale_after:
        return Verdict(ExitCode.UNKNOWN, True,
                       f"telemetryd is stuck: last tick {now - float(last_tick):.0f}s ago")
    worst = 0
    for watch in snapshot.get("watches", []):
        for proc in watch.get("processes", []):
            worst = max(worst, {"ok": 0, "warning": 1, "critical": 2}.get(proc.get("state"), 0))
    summary = {0: "all watched processes ok", 1: "some watched process at warning",
               2: "some watched process at critical"}[worst]
    return Verdict(ExitCode(worst), True, summary)


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
        return ",".join(f"{k}:{v}" for k, v in value.items()) or "-"
    return str(value)


def render_table(snapshot: dict[str, Any], verdict: Verdict, now: float) -> str:
    """The human view of a snapshot."""
    lines: list[str] = []
    if verdict.running:
        lines.append(f"telemetryd {snapshot.get('telemetryd_version', '?')}: running "
                     f"(pid {snapshot.get('pid')}) - {verdict.summary}")
    else:
        lines.append(f"telemetryd {snapshot.get('telemetryd_version', '?')}: not running "
                     f"(last pid {snapshot.get('pid')})")
    started = snapshot.get("started_at")
    if verdict.running and isinstance(started, int | float):
        lines.append(f"  uptime      {format_duration(now - started)}")
    lines.append(f"  config      {snapshot.get('config_source')}")
    lines.append(f"  state dir   {snapshot.get('state_dir')}")
    last_tick = snapshot.get("last_tick") or {}
    if last_tick.get("at") is not None:
        lines.append(
            f"  last tick   {now - last_tick['at']:.1f}s ago, took "
            f"{last_tick.get('duration_seconds', 0) * 1000:.1f} ms, "
            f"interval {snapshot.get('interval')}s, {last_tick.get('processes_scanned')} processes"
        )
    sections = (("reports", "reports"), ("flush", "delivery"), ("otlp", "otlp"),
                ("metrics", "metrics"))
    for key, title in sections:
        section = snapshot.get(key)
        if section:
            text = ", ".join(f"{k}={_cell(k, v, now)}" for k, v in section.items())
            lines.append(f"  {title:<11} {text}")
    lines.append("")
    if not verdict.running:
        lines.append("last known state, as the daemon last wrote it:")
    header = ("WATCH", "PID", "NAME", "RSS", "CPU%", "STATE", "OVER", "GROWTH/MIN", "ETA", "NOTE")
    rows: list[tuple[str, ...]] = [header]
    for watch in snapshot.get("watches", []):
        processes = watch.get("processes", [])
        if not processes:
            rows.append((watch["name"], "-", "-", "-", "-", "-", "-", "-", "-", "no match"))
        for proc in processes:
            rate = proc.get("rate_bytes_per_min")
            eta = proc.get("eta_seconds")
            rows.append((
                watch["name"], str(proc["pid"]), proc.get("name") or "-",
                format_bytes(proc["rss_bytes"]), f"{proc.get('cpu_percent', 0):.0f}",
                proc.get("state", "?"), str(proc.get("samples_over", 0)),
                "-" if rate is None else format_bytes(rate),
                "-" if eta is None else format_duration(eta), proc.get("note") or "",
            ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)

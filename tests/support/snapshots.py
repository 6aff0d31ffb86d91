"""Status snapshots for tests and benchmarks: one builder instead of hand-copied shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemon.status.snapshot import (
    FlushStatus,
    OtlpStatus,
    ProcessStatus,
    ReportCounts,
    StatusSnapshot,
    TickInfo,
    WatchStatus,
)
from daemon.watch.thresholds import Level

NOW = 10_000.0


def process(pid: int, rss_bytes: int = 1024**3, cpu_percent: float = 12.5, state: str = "ok",
            rate: float | None = None, eta: float | None = None, name: str = "agent",
            **fields: Any) -> ProcessStatus:
    """One watched tree in the given state."""
    level = Level.of(state)
    return ProcessStatus(pid=pid, name=name, rss_bytes=rss_bytes, cpu_percent=cpu_percent,
                         state=level, rss_level=level, rate_bytes_per_min=rate,
                         eta_seconds=eta, **fields)


def zombie(pid: int, name: str = "x") -> ProcessStatus:
    """An exited, unreaped process seen this tick."""
    return ProcessStatus(pid=pid, name=name, rss_bytes=0, cpu_percent=0.0, zombie=True)


def watch(name: str, *processes: ProcessStatus) -> WatchStatus:
    """A watch and its trees."""
    return WatchStatus(name, tuple(processes))


def snapshot(watches: Sequence[WatchStatus] = (), *, now: float = NOW,
             last_tick_at: float | None = None, tick_count: int = 42, interval: float = 1.0,
             stopped: bool = False, reports: ReportCounts | None = None,
             flush: FlushStatus | None = None, otlp: OtlpStatus | None = None,
             started_at: float | None = None) -> StatusSnapshot:
    """A snapshot of a daemon running for an hour whose last tick was at ``now - 0.5``."""
    tick_at = now - 0.5 if last_tick_at is None else last_tick_at
    return StatusSnapshot(
        pid=4242, telemetryd_version="0.1.0",
        started_at=now - 3600 if started_at is None else started_at,
        config_source="/etc/telemetryd/telemetryd.toml", state_dir="/var/lib/telemetryd",
        interval=interval, watches=tuple(watches), stopped=stopped,
        last_tick=TickInfo(tick_at, 0.002, 250, tick_count),
        reports=reports or ReportCounts(pending=0, quarantined=0),
        flush=flush, otlp=otlp,
    )


def starting(now: float = NOW) -> StatusSnapshot:
    """A snapshot written before the first tick."""
    return StatusSnapshot(pid=4242, telemetryd_version="0.1.0", started_at=now,
                          config_source="<embedded default>", state_dir="/tmp/state",
                          interval=1.0)

"""What an hour of stats adds up to: the in-memory accumulator and the public figures.

An ``Acc`` holds sums, maxima and a tick histogram; it merges the same way in memory and
in SQL, so an hour's figures are the same whether they were committed or not. The views
(``watch_figures``, ``daemon_figures``) turn it into means and quantiles; ``Period`` is a
closed hour ready to ship, ``StatsSummary`` what ``telemetryd stats`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from daemon.stats.histogram import histogram_quantile

HOUR_SECONDS = 3600

Figures = dict[str, int | float | None]


def hour_start(now: float) -> int:
    """Start of the UTC hour holding ``now``, in epoch seconds.

    >>> hour_start(7201.5)
    7200
    """
    return int(now // HOUR_SECONDS) * HOUR_SECONDS


class Counter(StrEnum):
    """Per watch, per hour event counters (``incr``); the value is the column name."""

    WARNINGS = "warnings"
    CRITICALS = "criticals"
    REPORTS_WRITTEN = "reports_written"
    REPORTS_DELIVERED = "reports_delivered"
    REPORTS_QUARANTINED = "reports_quarantined"
    REPORTS_DROPPED = "reports_dropped"
    PROCESSES_SEEN = "processes_seen"
    PROCESSES_EXITED = "processes_exited"


# --- figures: what an hour (or a span of hours) adds up to ---------------------------------

WATCH_SUMS = ("samples", "rss_sum_bytes", "cpu_sum_percent", *(c.value for c in Counter))
WATCH_MAXES = ("rss_max_bytes", "cpu_max_percent")
DAEMON_SUMS = ("ticks", "tick_sum_seconds", "own_cpu_sum_percent", "starts", "unclean_starts")
DAEMON_MAXES = ("tick_max_seconds", "own_rss_max_bytes", "uptime_max_seconds")


@dataclass
class Acc:
    """Sums, maxima and a tick histogram that merge the same way in memory and in SQL."""

    sums: dict[str, float] = field(default_factory=dict)
    maxes: dict[str, float] = field(default_factory=dict)
    hist: dict[int, int] = field(default_factory=dict)

    def add(self, name: str, amount: float) -> None:
        self.sums[name] = self.sums.get(name, 0) + amount

    def high(self, name: str, value: float) -> None:
        current = self.maxes.get(name)
        if current is None or value > current:
            self.maxes[name] = value

    def absorb(self, other: Acc) -> None:
        for name, amount in other.sums.items():
            self.add(name, amount)
        for name, value in other.maxes.items():
            self.high(name, value)
        for bucket, count in other.hist.items():
            self.hist[bucket] = self.hist.get(bucket, 0) + count


def _mean(total: float, count: float) -> float | None:
    return total / count if count else None


def watch_figures(acc: Acc) -> Figures:
    """The public view of a watch's accumulated figures (means from sums, None when empty)."""
    samples = int(acc.sums.get("samples", 0))
    figures: Figures = {
        "samples": samples,
        "rss_max_bytes": int(acc.maxes.get("rss_max_bytes", 0)) if samples else None,
        "rss_mean_bytes": _mean(acc.sums.get("rss_sum_bytes", 0), samples),
        "cpu_max_percent": float(acc.maxes.get("cpu_max_percent", 0)) if samples else None,
        "cpu_mean_percent": _mean(acc.sums.get("cpu_sum_percent", 0), samples),
    }
    for counter in Counter:
        figures[counter.value] = int(acc.sums.get(counter.value, 0))
    return figures


def daemon_figures(acc: Acc) -> Figures:
    """The public view of the daemon's own accumulated figures."""
    ticks = int(acc.sums.get("ticks", 0))
    tick_max = float(acc.maxes.get("tick_max_seconds", 0))
    return {
        "ticks": ticks,
        "tick_p50_seconds": histogram_quantile(acc.hist, 0.50, tick_max),
        "tick_p99_seconds": histogram_quantile(acc.hist, 0.99, tick_max),
        "tick_mean_seconds": _mean(acc.sums.get("tick_sum_seconds", 0), ticks),
        "tick_max_seconds": tick_max if ticks else None,
        "own_rss_max_bytes": int(acc.maxes.get("own_rss_max_bytes", 0)) if ticks else None,
        "own_cpu_mean_percent": _mean(acc.sums.get("own_cpu_sum_percent", 0), ticks),
        "uptime_max_seconds": acc.maxes.get("uptime_max_seconds"),
        "starts": int(acc.sums.get("starts", 0)),
        "unclean_starts": int(acc.sums.get("unclean_starts", 0)),
    }


class PeriodKey(NamedTuple):
    """One closed hour of one watch; ``watch`` None means the daemon's own figures."""

    watch: str | None
    hour_start: int

    @property
    def kind(self) -> str:
        """``daemon`` or ``watch``: the shipped table's key column."""
        return "daemon" if self.watch is None else "watch"


@dataclass(frozen=True)
class Period:
    """A closed hour's figures, ready to become a stats event."""

    key: PeriodKey
    figures: Mapping[str, int | float | None]

    @property
    def start(self) -> int:
        """Start of the period (the hour, or a run's start within it), epoch seconds."""
        return self.key.hour_start

    @property
    def end(self) -> int:
        """End of the period's clock hour (exclusive), epoch seconds."""
        return hour_start(self.key.hour_start) + HOUR_SECONDS


@dataclass(frozen=True)
class StatsSummary:
    """What ``telemetryd stats`` prints: figures since ``since`` up to ``until``."""

    since: float
    until: float
    watches: dict[str, Figures]
    daemon: Figures
    running_since: float | None
    uptime_seconds: float | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "since": self.since,
            "until": self.until,
            "running_since": self.running_since,
            "uptime_seconds": self.uptime_seconds,
            "daemon": self.daemon,
            "watches": self.watches,
        }

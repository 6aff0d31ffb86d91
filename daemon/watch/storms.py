"""Process storms: many processes of one watch asking for the same kind of report in one
tick become one aggregated report (pure).

Five hundred forks crossing critical together are one event ("512 processes of claude-code
crossed critical"), not five hundred: the tick stays short (one report is built, not 512,
each reading /proc for its details), the spool keeps room for other reports, and Sentry
gets one issue with every pid in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crash_reports.event.kinds import ReportKind
from daemon.watch.monitor import ReportRequest

# More reports than this of one watch and kind in one tick make a storm.
STORM_MIN_PROCESSES = 4
# A storm report lists at most this many pids (and reads PSS of at most this many).
STORM_MAX_PIDS = 256


@dataclass(frozen=True)
class StormReport:
    """One report standing for many requests of one watch and kind in one tick."""

    requests: tuple[ReportRequest, ...]

    @property
    def kind(self) -> ReportKind:
        """The kind every request in the storm shares."""
        return self.requests[0].kind

    @property
    def watch(self) -> str:
        """The watch every process in the storm belongs to."""
        return self.requests[0].process.watch

    @property
    def representative(self) -> ReportRequest:
        """The request the report is built around: the largest tree."""
        return max(self.requests, key=lambda r: (r.process.last.rss_bytes, -r.process.pid))

    @property
    def title(self) -> str:
        """What a person reads first.

        >>> from types import SimpleNamespace as N
        >>> req = N(kind=ReportKind.RSS_CRITICAL, process=N(watch="claude-code"))
        >>> StormReport((req,) * 512).title  # type: ignore[arg-type]
        '512 processes of claude-code crossed critical (RSS)'
        """
        return f"{len(self.requests)} processes of {self.watch} {self.kind.storm_wording}"

    def pids(self) -> list[int]:
        """The pids in the storm, largest tree first, at most STORM_MAX_PIDS."""
        ordered = sorted(self.requests, key=lambda r: -r.process.last.rss_bytes)
        return [r.process.pid for r in ordered[:STORM_MAX_PIDS]]


def aggregate(requests: Sequence[ReportRequest], min_processes: int = STORM_MIN_PROCESSES
              ) -> list[ReportRequest | StormReport]:
    """Group one tick's report requests: a (watch, kind) with more than ``min_processes``
    requests becomes one StormReport, placed where its first request was.

    >>> from types import SimpleNamespace as N
    >>> reqs = [N(kind=ReportKind.RSS_CRITICAL, process=N(watch="w", pid=p)) for p in range(6)]
    >>> lone = N(kind=ReportKind.RSS_CRITICAL, process=N(watch="agent", pid=9))
    >>> [type(x).__name__ for x in aggregate([lone, *reqs])]  # type: ignore[list-item]
    ['SimpleNamespace', 'StormReport']
    """
    groups: dict[tuple[str, ReportKind], list[ReportRequest]] = {}
    for request in requests:
        groups.setdefault((request.process.watch, request.kind), []).append(request)
    planned: list[ReportRequest | StormReport] = []
    for request in requests:
        group = groups[(request.process.watch, request.kind)]
        if len(group) <= min_processes:
            planned.append(request)
        elif group[0] is request:
            planned.append(StormReport(tuple(group)))
    return planned

"""The kinds of synthetic crash report: the one list, used by the monitor and the builder."""

from __future__ import annotations

from enum import StrEnum


class ReportKind(StrEnum):
    """What a report is about; its value is the ``kind`` tag in Sentry.

    >>> ReportKind("rss_critical") is ReportKind.RSS_CRITICAL
    True
    """

    RSS_CRITICAL = "rss_critical"
    CPU_CRITICAL = "cpu_critical"
    EXITED_UNDER_PRESSURE = "exited_under_pressure"
    CHILD_OOM_KILLED = "child_oom_killed"
    ORPHANS_LEFT = "orphans_left"
    KILLED = "killed"  # a child of ``telemetryd wrap`` ended by a signal or the OOM killer


# Kinds written about a process tree that has lost a member or is gone: the report
# carries the OOM evidence and the level the tree was at.
PRESSURE_KINDS = frozenset({ReportKind.EXITED_UNDER_PRESSURE, ReportKind.CHILD_OOM_KILLED})

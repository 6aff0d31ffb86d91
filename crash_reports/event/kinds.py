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
    # The behaviour guard (daemon/guard/): one kind per rule.
    FORK_STORM = "fork_storm"
    TOOL_LOOP = "tool_loop"
    ERROR_STORM = "error_storm"
    COST_SURGE = "cost_surge"
    IDLE_SPIN = "idle_spin"
    VERSION_REGRESSION = "version_regression"


# Kinds written about a process tree that has lost a member or is gone: the report
# carries the OOM evidence and the level the tree was at.
PRESSURE_KINDS = frozenset({ReportKind.EXITED_UNDER_PRESSURE, ReportKind.CHILD_OOM_KILLED})

# Kinds the behaviour guard writes (daemon/guard/), in the order its docs list them.
GUARD_KINDS = (ReportKind.FORK_STORM, ReportKind.TOOL_LOOP, ReportKind.ERROR_STORM,
               ReportKind.COST_SURGE, ReportKind.IDLE_SPIN, ReportKind.VERSION_REGRESSION)

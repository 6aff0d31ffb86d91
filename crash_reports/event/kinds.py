"""The kinds of synthetic crash report, and what each implies: the one home of those facts,
used by the monitor, the tick, the guard and the builder (a leaf module: it imports nothing
of ours)."""

from __future__ import annotations

from enum import StrEnum


class Trigger(StrEnum):
    """The moment a watch's list of actions belongs to (its config key is ``on_<value>``)."""

    WARNING = "warning"
    CRITICAL = "critical"
    EXIT_UNDER_PRESSURE = "exit_under_pressure"
    GUARD = "guard"  # a [guard] rule fired on the watch's tree or its agent (daemon/guard/)


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

    @property
    def pressure(self) -> bool:
        """Written about a tree that lost a member or is gone: the report carries the OOM
        evidence and the level the tree was at.

        >>> ReportKind.CHILD_OOM_KILLED.pressure, ReportKind.RSS_CRITICAL.pressure
        (True, False)
        """
        return self in (ReportKind.EXITED_UNDER_PRESSURE, ReportKind.CHILD_OOM_KILLED)

    @property
    def leak_evidence(self) -> bool:
        """A critical crossing: the report waits for the members' growth (leak evidence)."""
        return self in (ReportKind.RSS_CRITICAL, ReportKind.CPU_CRITICAL)

    @property
    def guard(self) -> bool:
        """Written by the behaviour guard (daemon/guard/)."""
        return self in GUARD_KINDS

    @property
    def trigger(self) -> Trigger | None:
        """The watch actions that run with this report (they receive its id and path).

        >>> ReportKind.CPU_CRITICAL.trigger, ReportKind.ORPHANS_LEFT.trigger
        (<Trigger.CRITICAL: 'critical'>, None)
        """
        if self in (ReportKind.RSS_CRITICAL, ReportKind.CPU_CRITICAL):
            return Trigger.CRITICAL
        if self is ReportKind.EXITED_UNDER_PRESSURE:
            return Trigger.EXIT_UNDER_PRESSURE
        return None

    @property
    def storm_wording(self) -> str:
        """What each process did, in a storm report's title ("512 processes of w ...").

        >>> ReportKind.EXITED_UNDER_PRESSURE.storm_wording
        'exited under pressure'
        """
        match self:
            case ReportKind.RSS_CRITICAL:
                return "crossed critical (RSS)"
            case ReportKind.CPU_CRITICAL:
                return "crossed critical (CPU)"
            case ReportKind.EXITED_UNDER_PRESSURE:
                return "exited under pressure"
            case ReportKind.CHILD_OOM_KILLED:
                return "lost children to the OOM killer"
        return self.value.replace("_", " ")


# Kinds the behaviour guard writes (daemon/guard/), in the order its docs list them.
GUARD_KINDS = (ReportKind.FORK_STORM, ReportKind.TOOL_LOOP, ReportKind.ERROR_STORM,
               ReportKind.COST_SURGE, ReportKind.IDLE_SPIN, ReportKind.VERSION_REGRESSION)

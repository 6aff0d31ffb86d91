"""What a guard rule found: typed evidence per rule, and the verdict that carries it (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crash_reports.event.kinds import ReportKind


@dataclass(frozen=True, slots=True)
class ForkStormEvidence:
    """A tree gained ``count`` processes within ``window_seconds``."""

    count: int
    window_seconds: float
    span_seconds: float
    members_now: int
    new_pids: tuple[int, ...]
    members_over_time: tuple[tuple[float, int], ...]  # (seconds before the report, members)
    spawner_pid: int | None = None
    spawner_children: int = 0
    spawner_cmdline: tuple[str, ...] = ()  # redacted

    @property
    def rate_per_second(self) -> float:
        """New processes per second over the span they arrived in."""
        return self.count / max(self.span_seconds, 0.001)

    def facts(self) -> dict[str, Any]:
        """The evidence as a report's context."""
        return {
            "new_processes": self.count, "window_seconds": self.window_seconds,
            "span_seconds": round(self.span_seconds, 3),
            "rate_per_second": round(self.rate_per_second, 2),
            "members_now": self.members_now, "new_pids_listed": list(self.new_pids),
            "members_over_time": [{"seconds_before": s, "members": m}
                                  for s, m in self.members_over_time],
            "spawner": {"pid": self.spawner_pid, "children_among_new": self.spawner_children,
                        "cmdline": list(self.spawner_cmdline)},
        }


@dataclass(frozen=True, slots=True)
class ToolLoopEvidence:
    """One session made the same tool call ``count`` times in a row."""

    tool: str
    count: int
    compared_by: str  # "input" (digest of the input) or "failure" (no input sent)
    first_at: float  # the agent's own timestamps (wall clock)
    last_at: float

    def facts(self) -> dict[str, Any]:
        """The evidence as a report's context (no input, not even its digest)."""
        return {"tool": self.tool, "calls_in_a_row": self.count,
                "compared_by": self.compared_by, "first_at": self.first_at,
                "last_at": self.last_at,
                "span_seconds": round(max(0.0, self.last_at - self.first_at), 3)}


@dataclass(frozen=True, slots=True)
class ErrorStormEvidence:
    """One agent's failed model requests within the window."""

    count: int
    window_seconds: float
    error_classes: tuple[tuple[str, int], ...]
    status_codes: tuple[tuple[str, int], ...]
    models: tuple[tuple[str, int], ...]

    def facts(self) -> dict[str, Any]:
        """The evidence as a report's context."""
        return {"failed_requests": self.count, "window_seconds": self.window_seconds,
                "error_classes": dict(self.error_classes),
                "status_codes": dict(self.status_codes), "models": dict(self.models)}


@dataclass(frozen=True, slots=True)
class CostSurgeEvidence:
    """A session spending (or using tokens) faster than the limit over the window."""

    measured: str  # "usd" or "tokens" (an agent that sends no cost)
    rate_per_hour: float
    limit_per_hour: float
    in_window: float
    window_seconds: float
    session_usd: float | None
    session_tokens: int
    models: tuple[str, ...]

    def facts(self) -> dict[str, Any]:
        """The evidence as a report's context."""
        return {"measured": self.measured, "rate_per_hour": round(self.rate_per_hour, 4),
                "limit_per_hour": self.limit_per_hour, "in_window": round(self.in_window, 6),
                "window_seconds": self.window_seconds,
                "session_usd": None if self.session_usd is None else round(self.session_usd, 6),
                "session_tokens": self.session_tokens, "models": list(self.models)}


@dataclass(frozen=True, slots=True)
class IdleSpinEvidence:
    """A tree busy on the CPU while its agent did nothing."""

    cpu_percent_mean: float
    cpu_percent_now: float
    spinning_seconds: float
    telemetry: bool  # False: no telemetry from the agent, CPU alone over the longer window
    last_activity_seconds_ago: float | None

    def facts(self) -> dict[str, Any]:
        """The evidence as a report's context."""
        basis = ("cpu while the agent sent no request or tool call" if self.telemetry else
                 "cpu alone: the agent sends no telemetry, so the longer window applies")
        return {"cpu_percent_mean": round(self.cpu_percent_mean, 1),
                "cpu_percent_now": round(self.cpu_percent_now, 1),
                "spinning_seconds": round(self.spinning_seconds, 1), "basis": basis,
                "telemetry": self.telemetry,
                "last_activity_seconds_ago": None if self.last_activity_seconds_ago is None
                else round(self.last_activity_seconds_ago, 1)}


@dataclass(frozen=True, slots=True)
class VersionFigures:
    """A version's behaviour after its hour of use: idle CPU and RSS growth."""

    version: str
    idle_cpu_percent: float
    rss_growth_bytes_per_hour: float
    use_seconds: float

    def facts(self) -> dict[str, Any]:
        """The figures as a report's context."""
        return {"version": self.version, "idle_cpu_percent": round(self.idle_cpu_percent, 2),
                "rss_growth_bytes_per_hour": round(self.rss_growth_bytes_per_hour),
                "use_seconds": round(self.use_seconds)}


@dataclass(frozen=True, slots=True)
class VersionRegressionEvidence:
    """A new version's figures against the previous version seen on this machine."""

    previous: VersionFigures
    current: VersionFigures
    factor: float
    worse: tuple[str, ...]  # which figures crossed: "idle_cpu", "rss_growth"

    def facts(self) -> dict[str, Any]:
        """The evidence as a report's context."""
        return {"previous": self.previous.facts(), "current": self.current.facts(),
                "factor": self.factor, "worse": list(self.worse)}


Evidence = (ForkStormEvidence | ToolLoopEvidence | ErrorStormEvidence | CostSurgeEvidence
            | IdleSpinEvidence | VersionRegressionEvidence)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A rule fired for a subject (a tree, a session or an agent), with its evidence."""

    rule: ReportKind
    evidence: Evidence
    watch: str | None = None
    pid: int | None = None
    key: tuple[int, int] | None = None  # the tree's (pid, start ticks)
    agent: str | None = None
    session: str | None = None
    agent_pid: int | None = None  # the pid the agent's telemetry named, if any
    at: float = 0.0  # monotonic, when it fired
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """Who the verdict is about, for titles and logs."""
        if self.session:
            return f"{self.agent} session {self.session}"
        if self.watch and self.pid is not None:
            return f"{self.watch} pid {self.pid}"
        return self.agent or self.watch or "?"

    @property
    def title(self) -> str:
        """A title a person understands at a glance."""
        e = self.evidence
        who = self.subject
        if isinstance(e, ForkStormEvidence):
            return (f"{who}: fork storm, {e.count} new processes in {e.span_seconds:.1f}s "
                    f"({e.rate_per_second:.0f}/s)")
        if isinstance(e, ToolLoopEvidence):
            how = "same input" if e.compared_by == "input" else "failing"
            return f"{who}: tool loop, {e.tool} {e.count} times in a row ({how})"
        if isinstance(e, ErrorStormEvidence):
            classes = ", ".join(name for name, _ in e.error_classes[:3])
            return (f"{who}: error storm, {e.count} failed model requests in "
                    f"{e.window_seconds:.0f}s ({classes})")
        if isinstance(e, CostSurgeEvidence):
            if e.measured == "usd":
                return (f"{who}: cost surge, ${e.rate_per_hour:.2f}/h "
                        f"(limit ${e.limit_per_hour:g}/h)")
            return (f"{who}: token surge, {e.rate_per_hour:,.0f} tokens/h "
                    f"(limit {e.limit_per_hour:,.0f}/h)")
        if isinstance(e, IdleSpinEvidence):
            basis = "" if e.telemetry else ", no telemetry"
            return (f"{who}: idle spin, {e.cpu_percent_mean:.0f}% CPU for "
                    f"{e.spinning_seconds:.0f}s with no agent activity{basis}")
        return (f"{who}: version {e.current.version} regressed against "
                f"{e.previous.version} ({', '.join(e.worse)} >= {e.factor:g}x)")

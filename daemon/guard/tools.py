"""tool_loop: one session makes the same tool call many times in a row (pure).

Two calls are the same when they name the same tool with the same input digest; when the
agent sends no input, the same tool failing again. Only one call per event counts (event or
span records, never the metric totals that repeat them). No input is kept, only a digest.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from daemon.guard.verdicts import ToolLoopEvidence

SessionId = tuple[str, str]  # (agent, session)


@dataclass(slots=True)
class _Run:
    signature: tuple[str, str | None, bool]
    arrivals: list[float]  # monotonic, the last ``calls`` of the run
    first_at: float  # agent timestamps of the run's first and last call
    last_at: float
    length: int = 1
    tool: str = ""
    compared_by: str = "input"


class ToolLoopRule:
    """The current run of identical calls per session.

    >>> rule = ToolLoopRule(calls=3, window_seconds=60.0, max_sessions=10)
    >>> s = ("claude-code", "s1")
    >>> [rule.observe(s, "Read", None, False, t, t) is None for t in (1.0, 2.0, 3.0)]
    [True, True, False]
    >>> rule.observe(s, "Read", None, True, 4.0, 4.0) is None  # a success breaks the run
    True
    """

    def __init__(self, calls: int, window_seconds: float, max_sessions: int) -> None:
        self.calls = calls
        self.window_seconds = window_seconds
        self.max_sessions = max_sessions
        self.runs: OrderedDict[SessionId, _Run] = OrderedDict()

    def observe(self, session: SessionId, tool: str, input_hash: str | None, success: bool,
                agent_ts: float, now: float) -> ToolLoopEvidence | None:
        """One call; the evidence while the session's run is a loop."""
        # Without an input only failures can repeat: a success is progress, as far as we know.
        signature = (tool, input_hash, input_hash is None and not success)
        run = self.runs.get(session)
        repeats = (run is not None and run.signature == signature
                   and (input_hash is not None or not success))
        if not repeats or run is None:
            run = _Run(signature, [now], agent_ts, agent_ts, 1, tool,
                       "input" if input_hash is not None else "failure")
            self.runs[session] = run
            while len(self.runs) > self.max_sessions:
                self.runs.popitem(last=False)
        else:
            run.arrivals.append(now)
            if len(run.arrivals) > self.calls:
                del run.arrivals[0]
            run.last_at = agent_ts
            run.length += 1
            self.runs.move_to_end(session)
        return self.evidence(session, now)

    def evidence(self, session: SessionId, now: float) -> ToolLoopEvidence | None:
        """The loop's evidence if the session is in one now: ``calls`` identical calls within
        the window, the last no longer ago than the window."""
        run = self.runs.get(session)
        if run is None or len(run.arrivals) < self.calls:
            return None
        if run.arrivals[-1] - run.arrivals[0] > self.window_seconds:
            return None
        if now - run.arrivals[-1] > self.window_seconds:
            return None
        return ToolLoopEvidence(run.tool, run.length, run.compared_by, run.first_at,
                                run.last_at)


"""error_storm: one agent's failed model requests pile up within a window (pure)."""

from __future__ import annotations

from collections import Counter, OrderedDict, deque

from daemon.guard.verdicts import ErrorStormEvidence

Failure = tuple[float, str, str, str]  # (monotonic, error class, status code, model)


class ErrorStormRule:
    """The latest failures per agent (at most twice the threshold).

    >>> rule = ErrorStormRule(errors=2, window_seconds=10.0, max_agents=4)
    >>> rule.observe("codex", "network", None, "gpt", 0.0) is None
    True
    >>> rule.observe("codex", "network", None, "gpt", 1.0).status_codes
    (('none', 2),)
    >>> rule.evidence("codex", 11.0) is None
    True
    """

    def __init__(self, errors: int, window_seconds: float, max_agents: int) -> None:
        self.errors = errors
        self.window_seconds = window_seconds
        self.max_agents = max_agents
        self.failures: OrderedDict[str, deque[Failure]] = OrderedDict()

    def observe(self, agent: str, error_class: str, status: int | None, model: str,
                now: float) -> ErrorStormEvidence | None:
        """One failed request; the evidence while the agent is in a storm."""
        found = self.failures.get(agent)
        if found is None:
            found = self.failures[agent] = deque(maxlen=2 * self.errors)
            while len(self.failures) > self.max_agents:
                self.failures.popitem(last=False)
        else:
            self.failures.move_to_end(agent)
        found.append((now, error_class, "none" if status is None else str(status),
                      model or "unknown"))
        return self.evidence(agent, now)

    def evidence(self, agent: str, now: float) -> ErrorStormEvidence | None:
        """The storm's evidence if the agent has enough failures within the window now."""
        found = self.failures.get(agent)
        if not found:
            return None
        recent = [f for f in found if f[0] >= now - self.window_seconds]
        if len(recent) < self.errors:
            return None
        return ErrorStormEvidence(
            count=len(recent), window_seconds=self.window_seconds,
            error_classes=tuple(Counter(f[1] for f in recent).most_common()),
            status_codes=tuple(Counter(f[2] for f in recent).most_common()),
            models=tuple(Counter(f[3] for f in recent).most_common(8)))

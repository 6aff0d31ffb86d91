"""cost_surge: one session spends (or uses tokens) faster than a rate over a window (pure).

Agents send the same spend more than once (a metric and an event; a reported cost and one
computed from tokens), so each source is a channel of its own and the rate is the largest
channel's, never their sum. The window is cut into buckets, so memory per session is bounded
whatever the agent sends. A session with any cost figure is measured in USD; one with none
(an agent that sends no cost and a model with no known price) by its token rate.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from daemon.guard.verdicts import CostSurgeEvidence

BUCKETS = 60  # per window and channel
MAX_MODELS = 8
SessionId = tuple[str, str]


@dataclass(slots=True)
class _Channel:
    total: float = 0.0
    starts: list[float] = field(default_factory=list)  # bucket start times, oldest first
    amounts: list[float] = field(default_factory=list)


@dataclass(slots=True)
class _Session:
    usd: dict[str, _Channel] = field(default_factory=dict)
    tokens: dict[str, _Channel] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)


class CostSurgeRule:
    """Spend per session and channel over a sliding window.

    >>> rule = CostSurgeRule(usd_per_hour=30.0, tokens_per_hour=1e6, window_seconds=120.0,
    ...                      max_sessions=4)
    >>> s = ("claude-code", "s1")
    >>> rule.add_usd(s, "event", 0.5, "opus", 0.0) is None  # $15/h over the window
    True
    >>> rule.add_usd(s, "metric", 0.5, "opus", 1.0) is None  # the same spend again
    True
    >>> round(rule.add_usd(s, "event", 0.6, "opus", 2.0).rate_per_hour, 2)
    33.0
    """

    def __init__(self, usd_per_hour: float, tokens_per_hour: float, window_seconds: float,
                 max_sessions: int) -> None:
        self.usd_per_hour = usd_per_hour
        self.tokens_per_hour = tokens_per_hour
        self.window_seconds = window_seconds
        self.max_sessions = max_sessions
        self.sessions: OrderedDict[SessionId, _Session] = OrderedDict()

    def add_usd(self, session: SessionId, channel: str, usd: float, model: str,
                now: float) -> CostSurgeEvidence | None:
        """Spend in USD from one channel; the evidence while the session surges."""
        found = self._session(session, model)
        self._add(found.usd.setdefault(channel, _Channel()), usd, now)
        return self.evidence(session, now)

    def add_tokens(self, session: SessionId, channel: str, tokens: float, model: str,
                   now: float) -> CostSurgeEvidence | None:
        """Tokens from one channel; the evidence while the session surges."""
        found = self._session(session, model)
        self._add(found.tokens.setdefault(channel, _Channel()), tokens, now)
        return self.evidence(session, now)

    def evidence(self, session: SessionId, now: float) -> CostSurgeEvidence | None:
        """The surge's evidence if the session's rate is over its limit now."""
        found = self.sessions.get(session)
        if found is None:
            return None
        tokens_window = max((self._in_window(c, now) for c in found.tokens.values()), default=0)
        tokens_total = max((c.total for c in found.tokens.values()), default=0.0)
        scale = 3600.0 / self.window_seconds
        if found.usd:
            in_window = max(self._in_window(c, now) for c in found.usd.values())
            rate, limit, measured = in_window * scale, self.usd_per_hour, "usd"
            session_usd: float | None = max(c.total for c in found.usd.values())
        else:
            in_window = tokens_window
            rate, limit, measured = in_window * scale, self.tokens_per_hour, "tokens"
            session_usd = None
        if rate < limit:
            return None
        return CostSurgeEvidence(measured, rate, limit, in_window, self.window_seconds,
                                 session_usd, int(tokens_total), tuple(found.models))

    def _session(self, session: SessionId, model: str) -> _Session:
        found = self.sessions.get(session)
        if found is None:
            found = self.sessions[session] = _Session()
            while len(self.sessions) > self.max_sessions:
                self.sessions.popitem(last=False)
        else:
            self.sessions.move_to_end(session)
        if model and model not in found.models and len(found.models) < MAX_MODELS:
            found.models.append(model)
        return found

    def _add(self, channel: _Channel, amount: float, now: float) -> None:
        channel.total += amount
        width = self.window_seconds / BUCKETS
        if channel.starts and now - channel.starts[-1] < width:
            channel.amounts[-1] += amount
        else:
            channel.starts.append(now)
            channel.amounts.append(amount)
        horizon = now - self.window_seconds
        stale = 0
        while stale < len(channel.starts) and channel.starts[stale] < horizon:
            stale += 1
        if stale:  # at most BUCKETS + 1 entries: cheap to cut from the front
            del channel.starts[:stale], channel.amounts[:stale]

    def _in_window(self, channel: _Channel, now: float) -> float:
        horizon = now - self.window_seconds
        return sum(amount for start, amount in zip(channel.starts, channel.amounts, strict=True)
                   if start >= horizon)

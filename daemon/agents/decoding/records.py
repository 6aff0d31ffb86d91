"""Normalized agent-telemetry records: what decoding produces and the store keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Disjoint: input excludes cached input, output excludes reasoning, so the types add up.
TokenType = Literal["input", "output", "cache_read", "cache_creation", "reasoning"]
TOKEN_TYPES: tuple[TokenType, ...] = (
    "input", "output", "cache_read", "cache_creation", "reasoning",
)
ErrorClass = Literal["network", "auth", "rate_limit", "overloaded", "server", "client", "other"]
# "covered": priced here, but the agent reported this cost itself in the same export (its
# own figure counts; daemon/agents/budget/integrity.py).
CostStatus = Literal["reported", "computed", "covered", "unknown", "none"]
CacheTtl = Literal["5m", "1h"]
# Where a figure came from. Agents often send the same spend as a metric and as an event
# (and timings as spans); queries use one source per group, never the sum (see choose.py).
Source = Literal["metric", "event", "span"]
WorkKind = Literal[
    "lines_added", "lines_removed", "commits", "pull_requests", "compactions", "active_seconds",
]


@dataclass(frozen=True, slots=True)
class Agent:
    """Who sent a record, from the OTLP resource; ``name`` is the agent name (identity.py),
    ``service`` the ``service.name`` it came under.

    >>> Agent("claude-code", "i-1", None, 42).stream
    'claude-code/i-1'
    >>> Agent("bot", None, None, 7).stream
    'bot/pid-7'
    """

    name: str
    instance_id: str | None
    session_id: str | None
    pid: int | None
    service: str = ""
    host: str | None = None
    version: str | None = None

    @property
    def stream(self) -> str:
        """The agent instance: the unit of the event store's per-stream sequence."""
        if self.instance_id:
            return f"{self.name}/{self.instance_id}"
        if self.session_id:
            return f"{self.name}/session-{self.session_id}"
        if self.pid is not None:
            return f"{self.name}/pid-{self.pid}"
        return self.name


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens of one type for one model; ``requests`` is how many calls they span (0 = unknown)."""

    ts: float
    agent: Agent
    session_id: str | None
    model: str
    token_type: TokenType
    tokens: int
    source: Source = "metric"
    requests: int = 0
    cost_usd: float | None = None
    cost_status: CostStatus = "none"
    context_window: str | None = None
    # Cache writes kept 1 hour are billed above 5-minute ones: "5m" or "1h" when the agent
    # sent the split (Claude Code's cache_creation_5m_tokens / cache_creation_1h_tokens).
    cache_ttl: CacheTtl | None = None
    # Who served the model (``gen_ai.provider.name``, formerly ``gen_ai.system``) when the
    # agent said so: prices are looked up for that provider first (pricing.py).
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class CostUsage:
    """Cost in USD the agent reported itself (``claude_code.cost.usage``)."""

    ts: float
    agent: Agent
    session_id: str | None
    model: str
    usd: float
    source: Source = "metric"


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """``count`` model calls taking ``duration_ms`` in total; an error carries its class."""

    ts: float
    agent: Agent
    session_id: str | None
    model: str
    count: int
    duration_ms: float
    error_class: ErrorClass | None = None
    status_code: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    cost_usd: float | None = None
    source: Source = "metric"
    error: str | None = None
    reasoning_tokens: int | None = None
    ttft_ms: float | None = None  # time to first token of one call (Claude Code's ttft_ms)
    provider: str | None = None  # gen_ai.provider.name (or gen_ai.system) when sent


@dataclass(frozen=True, slots=True)
class ToolCall:
    """``count`` executions of one tool with one outcome, ``duration_ms`` in total.

    ``input_hash``: a digest of the call's input when the agent sent it (the guard compares
    calls by it); the input itself is never kept, and the digest is not stored either.
    """

    ts: float
    agent: Agent
    session_id: str | None
    tool: str
    success: bool
    count: int
    duration_ms: float
    source: Source = "metric"
    input_hash: str | None = None


@dataclass(frozen=True, slots=True)
class SessionStart:
    """Sessions an agent started (``claude_code.session.count``)."""

    ts: float
    agent: Agent
    session_id: str | None
    count: int
    source: Source = "metric"


@dataclass(frozen=True, slots=True)
class WorkCount:
    """What the agent did: lines added or removed, commits, PRs, compactions, active time."""

    ts: float
    agent: Agent
    session_id: str | None
    kind: WorkKind
    amount: float
    source: Source = "metric"


@dataclass(frozen=True, slots=True)
class ContextUse:
    """Tokens one request put into the model's context window (context pressure)."""

    ts: float
    agent: Agent
    session_id: str | None
    model: str
    tokens: int
    window_tokens: int | None


@dataclass(frozen=True, slots=True)
class GenericPoint:
    """A data point of a metric telemetryd has no meaning for, kept as a series."""

    ts: float
    agent: Agent
    session_id: str | None
    metric: str
    kind: str
    value: float
    count: int
    attributes: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class GenericEvent:
    """A log event telemetryd has no meaning for: its name and a few bounded, redacted
    attributes (content only with ``[otlp] store_content``), never its body."""

    ts: float
    agent: Agent
    session_id: str | None
    name: str
    attributes: tuple[tuple[str, str], ...] = ()


Record = (
    TokenUsage | CostUsage | ApiRequest | ToolCall | SessionStart | WorkCount | ContextUse
    | GenericPoint | GenericEvent
)

"""Normalized agent-telemetry records: what decoding produces and the store keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TokenType = Literal["input", "output", "cache_read", "cache_creation"]
TOKEN_TYPES: tuple[TokenType, ...] = ("input", "output", "cache_read", "cache_creation")
ErrorClass = Literal["rate_limit", "timeout", "context_overflow", "auth", "provider_error", "other"]
ERROR_CLASSES: tuple[ErrorClass, ...] = (
    "rate_limit",
    "timeout",
    "context_overflow",
    "auth",
    "provider_error",
    "other",
)
CostStatus = Literal["reported", "computed", "unknown", "none"]


@dataclass(frozen=True, slots=True)
class Agent:
    """Who sent a record, from the OTLP resource.

    >>> Agent("claude-code", "i-1", None, 42).stream
    'claude-code/i-1'
    >>> Agent("bot", None, None, 7).stream
    'bot/pid-7'
    """

    name: str
    instance_id: str | None
    session_id: str | None
    pid: int | None

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
    source: str
    requests: int = 0
    cost_usd: float | None = None
    cost_status: CostStatus = "none"


@dataclass(frozen=True, slots=True)
class CostUsage:
    """Cost in USD the agent reported itself (``claude_code.cost.usage``)."""

    ts: float
    agent: Agent
    session_id: str | None
    model: str
    usd: float


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


@dataclass(frozen=True, slots=True)
class ToolCall:
    """``count`` executions of one tool with one outcome, ``duration_ms`` in total."""

    ts: float
    agent: Agent
    session_id: str | None
    tool: str
    success: bool
    count: int
    duration_ms: float


@dataclass(frozen=True, slots=True)
class SessionStart:
    """Sessions an agent started (``claude_code.session.count``)."""

    ts: float
    agent: Agent
    session_id: str | None
    count: int


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
    """A log event telemetryd has no meaning for: its name only, never its body."""

    ts: float
    agent: Agent
    session_id: str | None
    name: str


Record = TokenUsage | CostUsage | ApiRequest | ToolCall | SessionStart | GenericPoint | GenericEvent

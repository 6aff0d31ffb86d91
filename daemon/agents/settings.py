"""Settings for the OTLP receiver, the agent event store and cost budgets (parsed elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BudgetPeriod = Literal["daily", "monthly"]


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """One cost budget: ``agent`` is the resource's ``service.name`` (``"*"`` means all agents).

    >>> BudgetSettings(agent="claude-code", period="daily", limit_usd=20.0).limit_usd
    20.0
    """

    agent: str
    period: BudgetPeriod
    limit_usd: float


@dataclass(frozen=True, slots=True)
class AgentTelemetrySettings:
    """Everything the ``[otlp]`` table and the ``[[budget]]`` list configure.

    >>> AgentTelemetrySettings().listen_port
    4318
    """

    enabled: bool = True
    listen_host: str = "127.0.0.1"
    listen_port: int = 4318
    max_body_bytes: int = 4 * 1024 * 1024
    max_decompressed_bytes: int = 8 * 1024 * 1024
    max_inflight_bytes: int = 32 * 1024 * 1024
    max_header_bytes: int = 16 * 1024
    max_items_per_request: int = 100_000
    decode_concurrency: int = 1
    queue_size: int = 1024
    max_series_per_metric: int = 10_000
    max_metrics: int = 1_000
    max_series: int = 50_000
    max_agents: int = 1_000
    max_models: int = 1_000
    max_sessions: int = 10_000
    series_idle_seconds: float = 3600.0
    socket_timeout_seconds: float = 10.0
    keepalive_timeout_seconds: float = 15.0
    max_connections: int = 32
    retention_days: float = 30.0
    retention_bytes: int = 512 * 1024 * 1024
    store_content: bool = False
    budgets: tuple[BudgetSettings, ...] = field(default_factory=tuple)

"""How a record becomes an event row and hourly aggregate increments (pure)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from daemon.agents.records import (
    ApiRequest,
    CostUsage,
    GenericEvent,
    GenericPoint,
    Record,
    SessionStart,
    TokenUsage,
    ToolCall,
)

# (hour, agent, model, tool, measure, dim) -> [value, count]
HourlyKey = tuple[int, str, str, str, str, str]
_NOT_DATA = frozenset({"ts", "agent", "session_id"})
_KINDS: dict[type, str] = {
    TokenUsage: "tokens",
    CostUsage: "cost",
    ApiRequest: "request",
    ToolCall: "tool_call",
    SessionStart: "session",
    GenericPoint: "series",
    GenericEvent: "event",
}


def kind_of(record: Record) -> str:
    """The event kind stored for a record.

    >>> from daemon.agents.records import Agent
    >>> kind_of(SessionStart(0.0, Agent("a", None, None, None), None, 1))
    'session'
    """
    return _KINDS[type(record)]


def data_json(record: Record) -> str:
    """The record's own fields (identity and time live in columns) as compact JSON."""
    data: dict[str, Any] = {
        f.name: getattr(record, f.name) for f in fields(record) if f.name not in _NOT_DATA
    }
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


Increment = tuple[HourlyKey, float, int]


def hourly_increments(record: Record) -> list[Increment]:
    """What a record adds to the hourly aggregates: (key, value, count) triples."""
    hour = int(record.ts // 3600)
    agent = record.agent.name

    def inc(model: str, tool: str, measure: str, dim: str, value: float, count: int) -> Increment:
        return ((hour, agent, model, tool, measure, dim), value, count)

    if isinstance(record, TokenUsage):
        model, kind = record.model, record.token_type
        out = [inc(model, "", "tokens", kind, float(record.tokens), record.requests)]
        if record.cost_status == "computed" and record.cost_usd is not None:
            out.append(inc(model, "", "cost_computed", "", record.cost_usd, 0))
        elif record.cost_status == "unknown":
            out.append(inc(model, "", "tokens_unpriced", kind, float(record.tokens), 0))
        return out
    if isinstance(record, CostUsage):
        return [inc(record.model, "", "cost_reported", "", record.usd, 0)]
    if isinstance(record, ApiRequest):
        outcome = "ok" if record.error_class is None else "error"
        out = [inc(record.model, "", "requests", outcome, record.duration_ms, record.count)]
        if record.error_class is not None:
            out.append(inc(record.model, "", "errors", record.error_class, 0.0, record.count))
        return out
    if isinstance(record, ToolCall):
        outcome = "ok" if record.success else "error"
        return [inc("", record.tool, "tool_calls", outcome, record.duration_ms, record.count)]
    if isinstance(record, SessionStart):
        return [inc("", "", "sessions", "", float(record.count), record.count)]
    if isinstance(record, GenericPoint):
        return [inc("", "", "series", record.metric, record.value, record.count)]
    return [inc("", "", "events", record.name, 0.0, 1)]

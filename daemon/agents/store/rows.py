"""How a record becomes an event row and hourly aggregate increments (pure)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from daemon.agents.decoding.records import (
    ApiRequest,
    ContextUse,
    CostUsage,
    GenericEvent,
    GenericPoint,
    Record,
    SessionStart,
    TokenUsage,
    ToolCall,
    WorkCount,
)
from daemon.agents.measures import measure_key
from daemon.agents.store.buckets import duration_bucket
from daemon.agents.store.choose import Row

# (hour, agent, model, tool, measure, dim) -> [value, count]
HourlyKey = tuple[int, str, str, str, str, str]
_NOT_DATA = frozenset({"ts", "agent", "session_id"})
_KINDS: dict[type, str] = {
    TokenUsage: "tokens",
    CostUsage: "cost",
    ApiRequest: "request",
    ToolCall: "tool_call",
    SessionStart: "session",
    WorkCount: "work",
    ContextUse: "context",
    GenericPoint: "series",
    GenericEvent: "event",
}


def kind_of(record: Record) -> str:
    """The event kind stored for a record.

    >>> from daemon.agents.decoding.records import Agent
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


# (model, tool, measure, dim, value, count): what a record adds to an aggregate.
Figure = tuple[str, str, str, str, float, int]
Increment = tuple[HourlyKey, float, int]


def figures(record: Record, buckets: bool = False) -> list[Figure]:
    """What a record adds to the aggregates; the measure names its source (choose.py).

    ``cost_counted`` is what budgets count (costs.py): a reported cost, or the cost priced
    from tokens the agent reported no cost for; never below zero, so it only grows.

    ``buckets`` adds duration-bucket counts (kept in the all-time totals only).
    """
    if isinstance(record, TokenUsage):
        src = record.source
        model, kind = record.model, record.token_type
        out: list[Figure] = [(model, "", measure_key("tokens", src), kind,
                              float(record.tokens), record.requests)]
        if record.cost_status in ("computed", "covered") and record.cost_usd is not None:
            out.append((model, "", measure_key("cost_computed", src), "", record.cost_usd, 0))
            if record.cost_status == "computed":  # "covered": the agent's own cost counts
                out.append((model, "", measure_key("cost_counted", src), "",
                            max(record.cost_usd, 0.0), 0))
        elif record.cost_status == "unknown":
            out.append((model, "", measure_key("tokens_unpriced", src), kind,
                        float(record.tokens), 0))
        return out
    if isinstance(record, CostUsage):
        src = record.source
        return [(record.model, "", measure_key("cost_reported", src), "", record.usd, 0),
                (record.model, "", measure_key("cost_counted", src), "", max(record.usd, 0.0),
                 0)]
    if isinstance(record, ApiRequest):
        src = record.source
        outcome = "ok" if record.error_class is None else "error"
        out = [(record.model, "", measure_key("requests", src), outcome,
                record.duration_ms, record.count)]
        if record.error_class is not None:
            out.append((record.model, "", measure_key("errors", src), record.error_class, 0.0,
                        record.count))
        if buckets and record.count > 0:
            mean = record.duration_ms / 1000.0 / record.count
            out.append((record.model, "", measure_key("request_le", src),
                        duration_bucket(mean), 0.0, record.count))
        if buckets and record.ttft_ms is not None:  # one call's; only events carry it
            out.append((record.model, "", "ttft", "", record.ttft_ms, 1))
            out.append((record.model, "", "ttft_le", duration_bucket(record.ttft_ms / 1000.0),
                        0.0, 1))
        return out
    if isinstance(record, ToolCall):
        src = record.source
        outcome = "ok" if record.success else "error"
        out = [("", record.tool, measure_key("tool_calls", src), outcome, record.duration_ms,
                record.count)]
        if buckets and record.count > 0:
            mean = record.duration_ms / 1000.0 / record.count
            out.append(("", record.tool, measure_key("tool_le", src), duration_bucket(mean),
                        0.0, record.count))
        return out
    if isinstance(record, SessionStart):
        return [("", "", measure_key("sessions", record.source), "", float(record.count),
                 record.count)]
    if isinstance(record, WorkCount):
        return [("", "", measure_key("work", record.source), record.kind, record.amount, 1)]
    if isinstance(record, ContextUse):
        out = [(record.model, "", "context_max", "", float(record.tokens), 1)]
        if record.window_tokens:
            out.append((record.model, "", "context_window", "", float(record.window_tokens), 1))
        return out
    if buckets:
        return []
    if isinstance(record, GenericPoint):
        return [("", "", "series", record.metric, record.value, record.count)]
    return [("", "", "events", record.name, 0.0, 1)]


def hourly_increments(record: Record) -> list[Increment]:
    """What a record adds to the hourly aggregates: (key, value, count) triples."""
    hour = int(record.ts // 3600)
    agent = record.agent.name
    return [((hour, agent, model, tool, measure, dim), value, count)
            for model, tool, measure, dim, value, count in figures(record)]


def event_rows(kind: str, agent: str, data: dict[str, Any]) -> list[Row]:
    """The aggregate rows a stored event stands for (the inverse of ``figures``), grouped
    by (agent, model, tool)."""
    src = data.get("source") or "metric"
    model, tool = str(data.get("model", "")), str(data.get("tool", ""))
    group = (agent, model, tool)
    if kind == "tokens":
        out = [Row(group, measure_key("tokens", src), data["token_type"], data["tokens"],
                   data.get("requests", 0))]
        status, usd = data.get("cost_status"), data.get("cost_usd")
        if status in ("computed", "covered") and usd is not None:
            out.append(Row(group, measure_key("cost_computed", src), "", usd, 0))
            if status == "computed":  # "covered": the agent's own cost counts
                out.append(Row(group, measure_key("cost_counted", src), "", max(usd, 0.0), 0))
        elif status == "unknown":
            out.append(Row(group, measure_key("tokens_unpriced", src), data["token_type"],
                           data["tokens"], 0))
        return out
    if kind == "cost":
        return [Row(group, measure_key("cost_reported", src), "", data["usd"], 0),
                Row(group, measure_key("cost_counted", src), "", max(data["usd"], 0.0), 0)]
    if kind == "request":
        error = data.get("error_class")
        out = [Row(group, measure_key("requests", src), "ok" if error is None else "error",
                   data["duration_ms"], data["count"])]
        if error is not None:
            out.append(Row(group, measure_key("errors", src), error, 0.0, data["count"]))
        return out
    if kind == "tool_call":
        return [Row(group, measure_key("tool_calls", src), "ok" if data["success"] else "error",
                    data["duration_ms"], data["count"])]
    if kind == "session":
        return [Row(group, measure_key("sessions", src), "", data["count"], data["count"])]
    if kind == "work":
        return [Row(group, measure_key("work", src), data["kind"], data["amount"], 1)]
    if kind == "context":
        out = [Row(group, "context_max", "", data["tokens"], 1)]
        if data.get("window_tokens"):
            out.append(Row(group, "context_window", "", data["window_tokens"], 1))
        return out
    return []

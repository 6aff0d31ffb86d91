"""What a metric data point means, per agent (pure).

Claude Code (``claude_code.*``), Gemini CLI (``gemini_cli.*``), Codex (``codex.*``) and the
GenAI conventions (``gen_ai.*``). Token points are gathered per request into bundles first,
because an agent's types overlap (cached inside input) and are made disjoint together.
Metrics that only repeat another one of the same agent are kept as generic series:
Gemini's ``gen_ai.client.*`` repeat ``gemini_cli.*``, and its ``gemini_cli.api.request.*``
repeat its ``api_response``/``api_error`` events, badly: each failed request is counted in two
series (one with ``error_type``, one without), so requests come from the events only.
Codex's ``codex.api_request`` and ``codex.tool.call`` counters repeat their ``*.duration_ms``
histograms.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from daemon.agents.decoding import attributes as attr
from daemon.agents.decoding.classify import classify_error
from daemon.agents.decoding.identity import split_model
from daemon.agents.decoding.privacy import clean_text, stored_attributes
from daemon.agents.decoding.records import (
    Agent,
    ApiRequest,
    CostUsage,
    GenericPoint,
    Record,
    SessionStart,
    TokenUsage,
    ToolCall,
    WorkCount,
    WorkKind,
)
from daemon.agents.decoding.tokens import RAW_SLOTS, disjoint

_TOKEN_METRICS: dict[str, tuple[str, ...]] = {
    "claude_code.token.usage": ("type",),
    "gemini_cli.token.usage": ("type",),
    "codex.turn.token_usage": ("token_type",),
    "gen_ai.client.token.usage": ("gen_ai.token.type", "type"),
}
_SESSION_METRICS = frozenset(
    {"claude_code.session.count", "gemini_cli.session.count", "codex.thread.started"}
)
# Metrics that only repeat another metric of the same agent (see module docstring).
_REPEATS: dict[str, frozenset[str]] = {
    "gemini": frozenset({
        "gen_ai.client.token.usage", "gen_ai.client.operation.duration",
        "gemini_cli.api.request.count", "gemini_cli.api.request.latency",
    }),
    "codex": frozenset({"gen_ai.client.token.usage", "gen_ai.client.operation.duration"}),
}
_WORK: dict[str, WorkKind] = {
    "claude_code.commit.count": "commits",
    "claude_code.pull_request.count": "pull_requests",
    "gemini_cli.chat_compression": "compactions",
    "codex.compaction": "compactions",
    "claude_code.active_time.total": "active_seconds",
}
_LINES = frozenset(
    {"claude_code.lines_of_code.count", "gemini_cli.lines.changed", "codex.lines.changed"}
)
BundleKey = tuple[Agent, str | None, str, str | None]


@dataclass(slots=True)
class TokenBundles:
    """Raw token points of one request, per (agent, session, model, context window)."""

    raw: dict[BundleKey, dict[str, float]] = field(default_factory=dict)
    meta: dict[BundleKey, tuple[float, int]] = field(default_factory=dict)

    def add(self, key: BundleKey, slot: str, value: float, ts: float, count: int) -> None:
        """One raw count of one slot (``tokens.RAW_SLOTS`` values)."""
        slots = self.raw.setdefault(key, {})
        slots[slot] = slots.get(slot, 0.0) + value
        last_ts, requests = self.meta.get(key, (ts, 0))
        self.meta[key] = (max(ts, last_ts), max(requests, count))

    def records(self) -> Iterator[TokenUsage]:
        """Disjoint token records, one per type present."""
        for key, slots in self.raw.items():
            agent, session, model, window = key
            ts, requests = self.meta[key]
            for token_type, tokens in disjoint(agent.name, slots).items():
                yield TokenUsage(ts, agent, session, model, token_type, tokens, "metric",
                                 requests=requests, context_window=window)


def session_of(attrs: dict[str, attr.Scalar], agent: Agent) -> str | None:
    """The session a point or event belongs to (Codex calls it a conversation)."""
    found = attr.text(attrs, "session.id", "conversation.id", "gen_ai.conversation.id")
    return clean_text(found, 64) if found else agent.session_id


def model_of(attrs: dict[str, attr.Scalar]) -> tuple[str, str | None]:
    """Model name and context-window variant (``claude-opus-4-8[1m]`` -> one model, ``1m``)."""
    raw = attr.text(attrs, "model", "gen_ai.response.model", "gen_ai.request.model", "slug")
    return split_model(raw) if raw else ("unknown", None)


def map_metric(
    name: str, kind: str, unit: str, ts: float, attrs: dict[str, attr.Scalar], value: float,
    count: int, agent: Agent, bundles: TokenBundles, store_content: bool,
) -> list[Record]:
    """Records for one data point (token points go to ``bundles`` and yield none here)."""
    session = session_of(attrs, agent)
    if name in _REPEATS.get(agent.name, frozenset()):
        return [_generic(name, kind, ts, attrs, value, count, agent, session, store_content)]
    type_keys = _TOKEN_METRICS.get(name)
    if type_keys is not None:
        slot = RAW_SLOTS.get(attr.text(attrs, *type_keys) or "")
        if slot is not None:
            model, window = model_of(attrs)
            bundles.add((agent, session, model, window), slot, value, ts, count)
            return []
    if name == "claude_code.cost.usage":
        return [CostUsage(ts, agent, session, model_of(attrs)[0], value, "metric")]
    if name in _SESSION_METRICS:
        return [SessionStart(ts, agent, session, round(value), "metric")]
    request = _request(name, unit, ts, attrs, value, count, agent, session)
    if request is not None:
        return [request]
    tool = _tool(name, unit, ts, attrs, value, count, agent, session)
    if tool is not None:
        return [tool]
    if name in _LINES:
        kind_name = (attr.text(attrs, "type") or "").lower()
        if kind_name in ("added", "removed"):
            work: WorkKind = "lines_added" if kind_name == "added" else "lines_removed"
            return [WorkCount(ts, agent, session, work, value, "metric")]
    if name in _WORK:
        return [WorkCount(ts, agent, session, _WORK[name], value, "metric")]
    return [_generic(name, kind, ts, attrs, value, count, agent, session, store_content)]


def _millis(value: float, unit: str) -> float:
    return value * 1000.0 if unit == "s" else value


def _status(attrs: dict[str, attr.Scalar]) -> int | None:
    code = attr.number(attrs, "status_code") or attr.number(attrs, "status")
    code = code if code is not None else attr.number(attrs, "http.response.status_code")
    return int(code) if code is not None and code.is_integer() else None


def _request(
    name: str, unit: str, ts: float, attrs: dict[str, attr.Scalar], value: float, count: int,
    agent: Agent, session: str | None,
) -> ApiRequest | None:
    model, _ = model_of(attrs)
    if name in ("codex.api_request.duration_ms", "gen_ai.client.operation.duration"):
        status = _status(attrs)
        error_type = attr.text(attrs, "error.type")
        failed = attr.flag(attrs, "success") is False or error_type is not None or (
            status is not None and status >= 400)
        error_class = classify_error(status, error_type) if failed else None
        return ApiRequest(ts, agent, session, model, count, _millis(value, unit), error_class,
                          status, source="metric")
    return None


def _tool(
    name: str, unit: str, ts: float, attrs: dict[str, attr.Scalar], value: float, count: int,
    agent: Agent, session: str | None,
) -> ToolCall | None:
    tool = attr.text(attrs, "tool", "function_name", "gen_ai.tool.name", "tool_name") or "unknown"
    tool = clean_text(tool, 64)
    if name in ("codex.tool.call.duration_ms", "gen_ai.execute_tool.duration"):
        failed = attr.flag(attrs, "success") is False or attr.text(attrs, "error.type") is not None
        return ToolCall(ts, agent, session, tool, not failed, count, _millis(value, unit),
                        "metric")
    if name == "gemini_cli.tool.call.count":
        success = attr.flag(attrs, "success") is not False
        return ToolCall(ts, agent, session, tool, success, round(value), 0.0, "metric")
    if name == "gemini_cli.tool.call.latency":
        return ToolCall(ts, agent, session, tool, True, 0, _millis(value, unit), "metric")
    return None


def _generic(
    name: str, kind: str, ts: float, attrs: dict[str, attr.Scalar], value: float, count: int,
    agent: Agent, session: str | None, store_content: bool,
) -> GenericPoint:
    kept = stored_attributes(attrs, store_content)
    return GenericPoint(ts, agent, session, name, kind, value, count, kept)

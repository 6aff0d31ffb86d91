"""What a log event means, per agent (pure): requests with their tokens and cost, errors by
class, tool calls, sessions and compactions. Anything else is kept by name with a few
bounded, redacted attributes (``privacy.stored_attributes``).

One event per model call is used: Claude Code's ``api_request``/``api_error``, Gemini CLI's
``gemini_cli.api_response``/``api_error`` (its ``api_request`` and
``gen_ai.client.inference.operation.details`` events describe the same calls again) and
Codex's ``codex.api_request`` (tokens from ``codex.sse_event`` ``response.completed``).
Claude's ``api_retries_exhausted`` is the same failure as its ``api_error``, not another one.
"""

from __future__ import annotations

import hashlib

from daemon.agents.decoding import attributes as attr
from daemon.agents.decoding.classify import classify_error
from daemon.agents.decoding.identity import context_window_tokens
from daemon.agents.decoding.metric_map import model_of, session_of
from daemon.agents.decoding.privacy import clean_text, stored_attributes
from daemon.agents.decoding.records import (
    Agent,
    ApiRequest,
    CacheTtl,
    ContextUse,
    CostUsage,
    GenericEvent,
    Record,
    SessionStart,
    TokenUsage,
    ToolCall,
    WorkCount,
)
from daemon.agents.decoding.tokens import RAW_SLOTS, disjoint

_REQUEST_EVENTS = frozenset({"api_request", "gemini_cli.api_response", "codex.api_request"})
_ERROR_EVENTS = frozenset({"api_error", "gemini_cli.api_error"})
_TOOL_EVENTS = frozenset({"tool_result", "gemini_cli.tool_call", "codex.tool_result"})
_SESSION_EVENTS = frozenset({"gemini_cli.config", "codex.conversation_starts"})
_COMPACTION_EVENTS = frozenset({"gemini_cli.chat_compression", "codex.compaction", "compaction"})
# Where agents put a tool call's input: Claude Code (with OTEL_LOG_TOOL_DETAILS), Codex,
# Gemini CLI, OpenTelemetry GenAI. Only its digest leaves this module.
_TOOL_INPUT_KEYS = ("tool_parameters", "tool_input", "arguments", "function_args",
                    "gen_ai.tool.call.arguments")
_TOKEN_FIELDS = (
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
    "input_token_count", "output_token_count", "cached_token_count",
    "cached_content_token_count", "cache_write_token_count", "reasoning_token_count",
    "thoughts_token_count", "tool_token_count",
)


def map_event(
    name: str, ts: float, attrs: dict[str, attr.Scalar], agent: Agent, store_content: bool
) -> list[Record]:
    """Records for one log event (never its body; content only with ``store_content``)."""
    session = session_of(attrs, agent)
    duration = attr.number(attrs, "duration_ms") or 0.0
    if name in _REQUEST_EVENTS or name in _ERROR_EVENTS:
        return _request(name, ts, attrs, agent, session, duration)
    if name == "codex.sse_event" and "input_token_count" in attrs:
        return _spend(ts, attrs, agent, session)
    if name in _TOOL_EVENTS:
        tool = attr.text(attrs, "tool_name", "function_name", "gen_ai.tool.name") or "unknown"
        success = attr.flag(attrs, "success") is not False
        return [ToolCall(ts, agent, session, clean_text(tool, 64), success, 1, duration, "event",
                         input_hash=input_digest(attrs))]
    if name in _SESSION_EVENTS:
        return [SessionStart(ts, agent, session, 1, "event"),
                GenericEvent(ts, agent, session, name, stored_attributes(attrs, store_content))]
    if name in _COMPACTION_EVENTS:
        return [WorkCount(ts, agent, session, "compactions", 1.0, "event")]
    return [GenericEvent(ts, agent, session, name, stored_attributes(attrs, store_content))]


def input_digest(attrs: dict[str, attr.Scalar]) -> str | None:
    """A short digest of a tool call's input, or None when the agent sent none (pure).

    >>> input_digest({"arguments": '{"cmd":"echo hi"}'}) == input_digest(
    ...     {"function_args": '{"cmd":"echo hi"}'}), input_digest({"tool_name": "Bash"})
    (True, None)
    """
    for key in _TOOL_INPUT_KEYS:
        value = attrs.get(key)
        if value is not None and value != "":
            return hashlib.blake2b(str(value).encode(), digest_size=12).hexdigest()
    return None


def _raw_tokens(attrs: dict[str, attr.Scalar]) -> dict[str, float]:
    raw: dict[str, float] = {}
    for key in _TOKEN_FIELDS:
        value = attr.number(attrs, key)
        if value is not None:
            slot = RAW_SLOTS[key]
            raw[slot] = raw.get(slot, 0.0) + value
    return raw


def _cache_ttl_split(attrs: dict[str, attr.Scalar], total: int
                     ) -> tuple[tuple[CacheTtl, int], ...] | None:
    """Cache writes by time to live when the parts are sent and add up to the total
    (Claude Code sends both as 0 when the provider gave no split)."""
    five = attr.number(attrs, "cache_creation_5m_tokens")
    hour = attr.number(attrs, "cache_creation_1h_tokens")
    if five is None or hour is None or five + hour <= 0 or round(five + hour) != total:
        return None
    parts: tuple[tuple[CacheTtl, float], ...] = (("5m", five), ("1h", hour))
    return tuple((ttl, round(part)) for ttl, part in parts if part > 0)


def _spend(
    ts: float, attrs: dict[str, attr.Scalar], agent: Agent, session: str | None
) -> list[Record]:
    """Tokens (made disjoint), the agent's own cost and the context in use for one call."""
    model, window = model_of(attrs)
    tokens = disjoint(agent.name, _raw_tokens(attrs))
    out: list[Record] = []
    for token_type, count in tokens.items():
        cache_write = token_type == "cache_creation"  # noqa: S105 - a token type, no secret
        split = _cache_ttl_split(attrs, count) if cache_write else None
        for ttl, part in split or ((None, count),):
            out.append(TokenUsage(ts, agent, session, model, token_type, part, "event",
                                  requests=1, context_window=window, cache_ttl=ttl))
    cost = attr.number(attrs, "cost_usd")
    if cost is not None:
        out.append(CostUsage(ts, agent, session, model, cost, "event"))
    context = sum(tokens.get(t, 0) for t in ("input", "cache_read", "cache_creation"))
    if context:
        out.append(ContextUse(ts, agent, session, model, context, context_window_tokens(window)))
    return out


def _request(
    name: str, ts: float, attrs: dict[str, attr.Scalar], agent: Agent, session: str | None,
    duration: float,
) -> list[Record]:
    model, _ = model_of(attrs)
    code = attr.number(attrs, "status_code")
    if code is None:
        code = attr.number(attrs, "http.response.status_code")
    status = int(code) if code is not None and code.is_integer() else None
    error_text = attr.text(attrs, "error", "error.message", "error_message")
    if name in _ERROR_EVENTS:
        failed = True
    elif name == "codex.api_request":
        # A failed attempt has no HTTP status at all (the request never got an answer).
        failed = status is None or status >= 400 or attr.flag(attrs, "success") is False
    else:
        failed = status is not None and status >= 400
    error_class = (
        classify_error(status, error_text or attr.text(attrs, "error_type", "error.type"))
        if failed else None
    )
    out: list[Record] = []
    if not failed and name != "codex.api_request":
        out.extend(_spend(ts, attrs, agent, session))
    raw = _raw_tokens(attrs)
    tokens = disjoint(agent.name, raw) if raw else {}
    out.append(ApiRequest(
        ts, agent, session, model, 1, duration, error_class, status,
        input_tokens=tokens.get("input"), output_tokens=tokens.get("output"),
        cache_read_tokens=tokens.get("cache_read"),
        cache_creation_tokens=tokens.get("cache_creation"),
        cost_usd=attr.number(attrs, "cost_usd"), source="event",
        error=clean_text(error_text) if failed and error_text else None,
        reasoning_tokens=tokens.get("reasoning"),
        ttft_ms=attr.number(attrs, "ttft_ms") if not failed else None,
    ))
    return out

"""Which spans carry model or tool timings, and what they say (pure).

Gemini CLI: ``llm_call`` (``gen_ai.request.model``) and ``tool_call`` (``gen_ai.tool.name``).
Codex: ``model_client.stream_responses_api`` (``model``) per model request, and the span
named after the tool (``tool_name`` with ``codex.tool.phase = dispatch``) per tool call.
GenAI conventions: ``gen_ai.operation.name`` ``chat``/``generate_content``/``text_completion``
and ``execute_tool``. Every other span (Codex sends hundreds per turn) is counted and dropped.
Spans feed the same figures as metrics and events, as the third source (see choose.py):
their ``gen_ai.usage.*`` tokens (current and coming GenAI names) follow the conventions'
counting (cached input inside input, reasoning inside output) and are made disjoint, so a
span's input (Claude Code: input + cache read + cache creation) never adds to its events'.
The provider is ``gen_ai.provider.name``, or ``gen_ai.system`` as older senders call it.
"""

from __future__ import annotations

from daemon.agents.decoding import attributes as attr
from daemon.agents.decoding.identity import split_model
from daemon.agents.decoding.metric_map import session_of
from daemon.agents.decoding.privacy import clean_text
from daemon.agents.decoding.records import Agent, ApiRequest, Record, TokenUsage, ToolCall
from daemon.agents.decoding.tokens import GEN_AI, RAW_SLOTS, disjoint

_STATUS_ERROR = 2  # Status.STATUS_CODE_ERROR
_MODEL_OPERATIONS = frozenset({"chat", "generate_content", "text_completion", "embeddings"})
_MODEL_SPANS = frozenset({"llm_call", "model_client.stream_responses_api"})
_USAGE_KEYS = tuple(key for key in RAW_SLOTS if key.startswith("gen_ai.usage."))


def map_span(
    name: str, ts: float, duration_ms: float, attrs: dict[str, attr.Scalar], status: int,
    agent: Agent,
) -> list[Record]:
    """Records for a span with model or tool timing; empty for any other span.

    >>> from daemon.agents.decoding.records import Agent
    >>> a = Agent("gemini", None, None, None)
    >>> map_span("tool_call", 1.0, 3.5, {"gen_ai.tool.name": "read_file"}, 1, a)[0].tool
    'read_file'
    >>> map_span("fs.read_file", 1.0, 0.1, {}, 0, a)
    []
    """
    failed = status == _STATUS_ERROR
    session = session_of(attrs, agent)
    operation = attr.text(attrs, "gen_ai.operation.name")
    model_name = attr.text(attrs, "gen_ai.request.model", "gen_ai.response.model", "model")
    if model_name and (name in _MODEL_SPANS or operation in _MODEL_OPERATIONS):
        model, window = split_model(clean_text(model_name, 64))
        provider = provider_of(attrs)
        out: list[Record] = [ApiRequest(ts, agent, session, model, 1, duration_ms,
                                        "other" if failed else None, source="span",
                                        provider=provider)]
        raw: dict[str, float] = {}
        for key in _USAGE_KEYS:
            value = attr.number(attrs, key)
            if value is not None:
                raw[RAW_SLOTS[key]] = value
        out.extend(TokenUsage(ts, agent, session, model, token_type, count, "span",
                              requests=1, context_window=window, provider=provider)
                   for token_type, count in disjoint(GEN_AI, raw).items())
        return out
    tool = attr.text(attrs, "gen_ai.tool.name")
    if tool is None and attr.text(attrs, "codex.tool.phase") == "dispatch":
        tool = attr.text(attrs, "tool_name")
    if tool and (name in ("tool_call", tool) or operation == "execute_tool"):
        return [ToolCall(ts, agent, session, clean_text(tool, 64), not failed, 1, duration_ms,
                         "span")]
    return []


def provider_of(attrs: dict[str, attr.Scalar]) -> str | None:
    """Who served the model: ``gen_ai.provider.name``, else the older ``gen_ai.system``.

    >>> provider_of({"gen_ai.system": "groq"}), provider_of({"gen_ai.provider.name": "openai",
    ...                                                      "gen_ai.system": "az.ai.openai"})
    ('groq', 'openai')
    >>> provider_of({}) is None
    True
    """
    found = attr.text(attrs, "gen_ai.provider.name", "gen_ai.system")
    return clean_text(found, 64) if found else None

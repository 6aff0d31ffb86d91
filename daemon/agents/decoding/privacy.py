"""What of an agent's telemetry may be stored: no content by default, bounded, redacted (pure).

Some agents put prompts, responses, system instructions and tool arguments or output into
attributes (Gemini CLI logs prompts and responses by default; Codex logs tool arguments and
output). Those keys are dropped unless ``[otlp] store_content = true``; pseudonymous user
ids are never kept; every other stored string is cut to ``MAX_STORED_CHARS`` and goes
through the command-line redaction (``crash_reports.event.redact.redact_text``).
Every record goes through ``redacted_record`` on its way into the store (``ingest.py``):
agent, service, model, tool, session and metric names, and attribute keys and values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import fields, replace
from functools import cache, lru_cache
from typing import Any, TypeVar

from crash_reports.event.redact import redact_name, redact_text
from daemon.agents.decoding.records import Agent, Record

MAX_STORED_CHARS = 120
MAX_STORED_ATTRIBUTES = 16
CONTENT_KEYS = frozenset(
    {
        "prompt", "response", "request_text", "response_text", "reasoning",
        "routing.reasoning", "function_args", "arguments", "output", "tool_input",
        "tool_output", "tool_result", "tool_parameters", "gen_ai.system_instructions",
        "gen_ai.tool.definitions", "gen_ai.input.messages", "gen_ai.output.messages",
        "gen_ai.prompt", "gen_ai.completion", "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result", "process.command_args", "process.command_line",
        "process.command", "cwd", "prompt_text", "user_prompt", "message.uuid",
    }
)
# Identifiers of a person or an installation, and attributes already kept as columns.
_NEVER_KEYS = frozenset(
    {
        "user.id", "user.email", "user.account_uuid", "organization.id", "installation.id",
        "session.id", "conversation.id", "event.name", "event.timestamp", "event.sequence",
        "process.owner", "prompt.id", "prompt_id",
    }
)


# Indexed or namespaced forms of the same content (OpenLLMetry, OpenInference, ...):
# gen_ai.prompt.0.content, llm.input_messages.0.message.content, input.value.
CONTENT_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages",
                    "llm.output_messages", "input.value", "output.value")
CONTENT_SUFFIXES = (".content", ".text", ".messages", ".arguments", ".prompt")


def is_content(key: str) -> bool:
    """Whether an attribute holds what the user or the model wrote.

    >>> is_content("prompt"), is_content("gen_ai.system_instructions"), is_content("model")
    (True, True, False)
    >>> is_content("gen_ai.prompt.0.content"), is_content("llm.input_messages.0.message.role")
    (True, True)
    """
    return (key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES)
            or key.endswith(CONTENT_SUFFIXES))


def clean_text(value: str, limit: int = MAX_STORED_CHARS) -> str:
    """A free-text value as it may be stored: redacted, then cut to ``limit`` characters.

    >>> clean_text("curl -H 'Authorization: Bearer sk-abcdefghijklmnopqrstuvwx' x")
    "curl -H 'Authorization: Bearer [redacted]' x"
    >>> len(clean_text("a" * 500)), clean_text("a" * 500) == clean_text("a" * 499)
    (120, False)
    """
    whole = len(value) <= limit * 4
    cleaned = redact_text(value if whole else value[: limit * 4])
    if whole and len(cleaned) <= limit:
        return cleaned
    # Cut with a digest of the whole (redacted) value: two long names that share a beginning
    # stay two, so a hostile tool or model never merges its figures into a real one.
    digest = hashlib.blake2b((cleaned if whole else redact_text(value)).encode(
        "utf-8", "surrogatepass"), digest_size=6).hexdigest()
    return cleaned[: max(0, limit - 13)] + "…" + digest


def stored_attributes(
    attrs: Mapping[str, object], store_content: bool
) -> tuple[tuple[str, str], ...]:
    """The attributes of an event that are kept, as sorted (key, cleaned text) pairs.

    >>> stored_attributes({"prompt": "hi", "model": "m", "user.id": "u"}, False)
    (('model', 'm'),)
    >>> stored_attributes({"prompt": "hi"}, True)
    (('prompt', 'hi'),)
    """
    kept: list[tuple[str, str]] = []
    for key in sorted(attrs):
        if key in _NEVER_KEYS or (is_content(key) and not store_content):
            continue
        value = attrs[key]
        if value is None:
            continue
        kept.append((key[:64], clean_text(str(value))))
        if len(kept) >= MAX_STORED_ATTRIBUTES:
            break
    return tuple(kept)


_TextRecord = TypeVar("_TextRecord", bound=Agent | Record)


@cache
def _text_fields(kind: type) -> tuple[str, ...]:
    """The fields of a record type that hold text from outside (names, ids, attributes)."""
    return tuple(f.name for f in fields(kind) if "str" in str(f.type))


def _redacted(value: object) -> object:
    if isinstance(value, str):
        return redact_name(value)
    if isinstance(value, tuple):
        return tuple(_redacted(item) for item in value)
    return value


def _with_text_redacted(item: _TextRecord) -> _TextRecord:
    kind: type = type(item)
    changes: dict[str, Any] = {}
    for name in _text_fields(kind):
        value = getattr(item, name)
        cleaned = _redacted(value)
        if cleaned != value:
            changes[name] = cleaned
    if not isinstance(item, Agent):
        agent = _redacted_agent(item.agent)
        if agent is not item.agent and agent != item.agent:
            changes["agent"] = agent
    return replace(item, **changes) if changes else item


@lru_cache(maxsize=1024)
def _redacted_agent(agent: Agent) -> Agent:
    """An agent's names redacted; remembered, since one agent sends many records."""
    return _with_text_redacted(agent)


def redacted_record(record: Record) -> Record:
    """A record as the store may keep it: every string it carries (agent, service, instance,
    session, host, version, model, tool and metric names, attribute keys and values) through
    ``redact_name``, the one redaction of names from outside, so the store, ``/metrics``,
    ``stats``, the page and reports all show the same redacted names.

    >>> from daemon.agents.decoding.records import ToolCall
    >>> agent = Agent("sk-ant-api03-abcdefghijkl", None, None, 1)
    >>> call = redacted_record(ToolCall(0.0, agent, "s", "ghp_" + "a1B2" * 9, True, 1, 2.0))
    >>> call.agent.name, call.tool, call.session_id
    ('[redacted]', '[redacted]', 's')
    """
    return _with_text_redacted(record)

"""What of an agent's telemetry may be stored: no content by default, bounded, redacted (pure).

Some agents put prompts, responses, system instructions and tool arguments or output into
attributes (Gemini CLI logs prompts and responses by default; Codex logs tool arguments and
output). Those keys are dropped unless ``[otlp] store_content = true``; pseudonymous user
ids are never kept; every other stored string is cut to ``MAX_STORED_CHARS`` and goes
through the command-line redaction (``crash_reports.event.redact.redact_text``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from crash_reports.event.redact import redact_text

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
        "process.command", "cwd",
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

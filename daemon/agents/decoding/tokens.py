"""Token counts as each agent reports them, made disjoint so the types add up (pure).

Claude Code reports cached input apart from input and no reasoning count. Gemini CLI counts
cached input inside input, thoughts apart from output, and tool-use prompt tokens apart.
Codex counts cached input inside input and reasoning inside output. telemetryd stores
input (uncached), cache_read, cache_creation, output (without reasoning) and reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from daemon.agents.decoding.records import TokenType

# Raw names as agents send them (metric ``type`` attribute values and event fields) -> slot.
RAW_SLOTS: dict[str, str] = {
    "input": "input", "input_tokens": "input", "input_token_count": "input",
    "output": "output", "output_tokens": "output", "output_token_count": "output",
    "cacheRead": "cache_read", "cache_read": "cache_read", "cache": "cache_read",
    "cache_read_tokens": "cache_read", "cached_input": "cache_read",
    "cached_token_count": "cache_read", "cached_content_token_count": "cache_read",
    "cacheCreation": "cache_creation", "cache_creation": "cache_creation",
    "cache_creation_tokens": "cache_creation", "cache_write_input": "cache_creation",
    "cache_write_token_count": "cache_creation", "cache_write": "cache_creation",
    # OpenTelemetry GenAI conventions, current and coming names (spans' gen_ai.usage.*).
    "gen_ai.usage.input_tokens": "input", "gen_ai.usage.output_tokens": "output",
    "gen_ai.usage.cache_read.input_tokens": "cache_read",
    "gen_ai.usage.cache_read_input_tokens": "cache_read",
    "gen_ai.usage.cache_creation.input_tokens": "cache_creation",
    "gen_ai.usage.cache_creation_input_tokens": "cache_creation",
    "gen_ai.usage.cache_write.input_tokens": "cache_creation",
    "gen_ai.usage.reasoning.output_tokens": "reasoning",
    "gen_ai.usage.reasoning_output_tokens": "reasoning",
    "thought": "reasoning", "reasoning": "reasoning", "reasoning_output": "reasoning",
    "reasoning_token_count": "reasoning", "thoughts_token_count": "reasoning",
    "tool": "tool", "tool_token_count": "tool",
}


GEN_AI = "gen_ai"  # the convention of spans' gen_ai.usage.* attributes, whoever sends them


@dataclass(frozen=True, slots=True)
class Convention:
    """How an agent's raw counts overlap."""

    cache_inside_input: bool = False
    cache_write_inside_input: bool = False
    reasoning_inside_output: bool = False
    tool_counts_as_input: bool = False
    tool_is_total: bool = False


_CONVENTIONS: dict[str, Convention] = {
    "claude-code": Convention(),
    "gemini": Convention(cache_inside_input=True, tool_counts_as_input=True),
    # Codex's tool_token_count is input + output, not tool tokens.
    "codex": Convention(cache_inside_input=True, reasoning_inside_output=True, tool_is_total=True),
    # The GenAI conventions count cached input, read or written, inside input tokens and
    # reasoning inside output (Claude Code's llm_request span: input = input + cache read +
    # cache creation of its events).
    GEN_AI: Convention(cache_inside_input=True, cache_write_inside_input=True,
                       reasoning_inside_output=True),
}


def convention_of(agent: str) -> Convention:
    """The counting convention of an agent (unknown agents: disjoint already)."""
    return _CONVENTIONS.get(agent, Convention())


def disjoint(agent: str, raw: Mapping[str, float]) -> dict[TokenType, int]:
    """Raw counts keyed by slot (``RAW_SLOTS`` values) to disjoint token types.

    >>> disjoint("gemini", {"input": 1200, "output": 35, "cache_read": 500, "reasoning": 20})
    {'input': 700, 'output': 35, 'cache_read': 500, 'reasoning': 20}
    >>> disjoint("codex", {"input": 1200, "output": 35, "cache_read": 500, "reasoning": 20,
    ...                    "tool": 1235})
    {'input': 700, 'output': 15, 'cache_read': 500, 'reasoning': 20}
    >>> disjoint("claude-code", {"input": 1200, "cache_read": 500, "cache_creation": 100})
    {'input': 1200, 'cache_read': 500, 'cache_creation': 100}
    >>> disjoint(GEN_AI, {"input": 2050, "output": 40, "cache_read": 600, "cache_creation": 150})
    {'input': 1300, 'output': 40, 'cache_read': 600, 'cache_creation': 150}
    """
    rule = convention_of(agent)
    values = {slot: float(v) for slot, v in raw.items()}
    inp = values.pop("input", None)
    out = values.pop("output", None)
    tool = values.pop("tool", None)
    cache = values.get("cache_read", 0.0)
    reasoning = values.get("reasoning", 0.0)
    if inp is not None and rule.cache_inside_input:
        inp = max(0.0, inp - cache)
    if inp is not None and rule.cache_write_inside_input:
        inp = max(0.0, inp - values.get("cache_creation", 0.0))
    if tool is not None and rule.tool_counts_as_input and not rule.tool_is_total:
        inp = (inp or 0.0) + tool
    if out is not None and rule.reasoning_inside_output:
        out = max(0.0, out - reasoning)
    result: dict[TokenType, int] = {}
    for slot, value in (("input", inp), ("output", out), *values.items()):
        if value is not None and slot in ("input", "output", "cache_read", "cache_creation",
                                          "reasoning"):
            result[slot] = round(value)  # type: ignore[index]
    return result

"""One name per agent: service names, watch names and model names reduced to one key (pure).

Agents report under several service names (Codex: ``codex_exec`` for ``codex exec``,
``codex_cli_rs`` for the terminal UI, ``codex-app-server`` for its background server) and
telemetryd's watches have their own names (``gemini-node`` watches Gemini CLI run by node).
Everything telemetryd shows about an agent (status, stats, budgets, ``/metrics``, crash
reports) uses the agent name this module returns.
"""

from __future__ import annotations

import re

# service.name (as agents send it) -> agent name
_SERVICE_AGENTS: dict[str, str] = {
    "claude-code": "claude-code",
    "claude_code": "claude-code",
    "codex_exec": "codex",
    "codex_cli_rs": "codex",
    "codex-app-server": "codex",
    "codex_app_server": "codex",
    "codex-tui": "codex",
    "codex": "codex",
    "gemini-cli": "gemini",
    "gemini_cli": "gemini",
    "gemini": "gemini",
}
# watch name (embedded default and common spellings) -> agent name
_WATCH_AGENTS: dict[str, str] = {
    "claude": "claude-code",
    "claude-code": "claude-code",
    "codex": "codex",
    "gemini": "gemini",
    "gemini-node": "gemini",
    "gemini-cli": "gemini",
}
_CONTEXT_SUFFIX = re.compile(r"\[([^\[\]]{1,16})\]$")


def agent_name(service_name: str) -> str:
    """The agent a ``service.name`` belongs to (unknown names are kept as they are).

    >>> agent_name("codex_cli_rs"), agent_name("gemini-cli"), agent_name("my-bot")
    ('codex', 'gemini', 'my-bot')
    """
    return _SERVICE_AGENTS.get(service_name, service_name)


def agent_for_watch(watch_name: str) -> str:
    """The agent a watch watches: the embedded default's names map onto agent names.

    >>> agent_for_watch("gemini-node"), agent_for_watch("claude-code"), agent_for_watch("aider")
    ('gemini', 'claude-code', 'aider')
    """
    return _WATCH_AGENTS.get(watch_name, agent_name(watch_name))


def split_model(model: str) -> tuple[str, str | None]:
    """A model name without its context-window variant, and the variant.

    Claude Code names the 1M-context variant ``claude-opus-4-8[1m]`` in metrics and
    ``claude-opus-4-8`` in most events: one model, the window is an attribute.

    >>> split_model("claude-opus-4-8[1m]"), split_model("gpt-6.2-sol")
    (('claude-opus-4-8', '1m'), ('gpt-6.2-sol', None))
    """
    found = _CONTEXT_SUFFIX.search(model)
    if found is None:
        return model, None
    return model[: found.start()], found.group(1).lower()


def context_window_tokens(variant: str | None) -> int | None:
    """Tokens of a context-window variant such as ``1m`` or ``200k``.

    >>> context_window_tokens("1m"), context_window_tokens("200k"), context_window_tokens(None)
    (1000000, 200000, None)
    """
    if not variant:
        return None
    match = re.fullmatch(r"(\d+)([km]?)", variant)
    if match is None:
        return None
    scale = {"": 1, "k": 1000, "m": 1_000_000}[match.group(2)]
    return int(match.group(1)) * scale

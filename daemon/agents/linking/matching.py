"""Which agent telemetry belongs to a watched process, and how it was matched (the one place
both crash reports and the `killed` report of `wrap` ask).

``pid``: telemetry carried the pid of the process or of one of its members (an agent started
through a wrapper such as `uv run` or `npx`). ``environ``: a member carries the agent's
session id in its environment (Claude Code's stdio MCP children: environ.py), so the
session is known exactly. ``agent+time``: nothing exact — Claude Code and
Codex send no ``process.pid`` — so the watch's agent, on this host, in the session most
recently active during the process's lifetime. Every context says how it was matched in
``match`` (the report's ``agent.match`` tag).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

from daemon.agents.decoding.identity import agent_for_watch
from daemon.agents.linking.environ import tree_session
from daemon.agents.store.queries import StoreReader

MAX_CONTEXT_PIDS = 32
MAX_SESSION_WINDOW_SECONDS = 86400.0


def process_context(reader: StoreReader, watch: str, pid: int, member_pids: Sequence[int],
                    started: float, now: float,
                    session_of_tree: Callable[[Sequence[int]], str | None] = tree_session,
                    ) -> dict[str, Any] | None:
    """What the agent behind a process was doing; None when nothing matched."""
    pids = (pid, *member_pids[:MAX_CONTEXT_PIDS])
    for candidate in pids:
        context = reader.agent_context(candidate, None, None, now)
        if context:
            if candidate != pid:
                context["matched_pid"] = candidate
            context["match"] = "pid"
            return context
    window = min(max(now - started, 900.0), MAX_SESSION_WINDOW_SECONDS)
    exact = session_of_tree(pids[1:]) if len(pids) > 1 else None
    if exact is not None:
        context = reader.agent_context(None, exact, None, now, window)
        if context:
            context["match"] = "environ"
            return context
    session = reader.recent_session(agent_for_watch(watch), socket.gethostname(), started,
                                    now + 60.0, pids)
    if session is None:
        return None
    context = reader.agent_context(None, session.session_id, None, now, window)
    if context:
        context.update(match="agent+time", agent=session.agent,
                       session_id=session.session_id, agent_version=session.version)
    return context

"""A Claude Code tree whose stdio MCP child carries CLAUDE_CODE_SESSION_ID is linked to that
session exactly (agent.match = environ), not to the session most recently active.

Telemetry: the two Claude Code 2.1.332 captures, session f2041705-… (03:57:24 UTC) and,
later, d3046274-… (03:57:41 UTC). The tree: a real process with a child started with the
earlier session's id in its environment, as Claude Code starts its MCP servers.
"""

from __future__ import annotations

import calendar
import collections
import os
import subprocess
import sys
from pathlib import Path

import psutil

from daemon.config.parse import parse_config_text
from daemon.runtime.agent_link import AgentLink
from daemon.runtime.paths import StatePaths
from daemon.watch.monitor import TrackedProcess
from daemon.watch.proc.sampler import TreeSample
from tests.support.captures import replay

EARLIER = "f2041705-6884-4c65-bf3c-182b28a0222f"
LATER = "d3046274-7a03-4916-8290-2b4fc600dd4e"
RUN_START = calendar.timegm((2026, 12, 7, 3, 57, 20, 0, 0, 0))


def tracked(pid: int, members: tuple[int, ...]) -> TrackedProcess:
    sample = TreeSample("claude-code", pid, (pid, 1), "claude", RUN_START, 1, 0.0, 1, 0.0,
                        1 + len(members), member_pids=members)
    return TrackedProcess("claude-code", (pid, 1), RUN_START, sample, collections.deque())


def test_mcp_child_environment_links_the_exact_session(tmp_path: Path) -> None:
    """The child's CLAUDE_CODE_SESSION_ID wins over the later session agent+time would pick;
    the context has that session's agent version; nothing else of the environment is kept."""
    config = parse_config_text(
        '[otlp]\nlisten = "127.0.0.1:0"\ntrust = "any"\nretention_days = 3650\n', "<t>", {},
        psutil.virtual_memory().total)
    paths = StatePaths(tmp_path)
    link = AgentLink(config, paths.events_db, paths.budgets)
    env = {**os.environ, "CLAUDE_CODE_SESSION_ID": EARLIER, "CLAUDECODE": "1",
           "SOME_SECRET_TOKEN": "sk-do-not-keep-me"}
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             env=env, stdin=subprocess.PIPE)
    link.start()
    try:
        for folder in ("claude-print-protobuf", "claude-print-traces-protobuf"):
            assert all(s == 200 for s in replay(link.telemetry.receiver.port, folder))
        assert link.telemetry.ingestor.flush(30.0)
        now = RUN_START + 120.0
        without = link.context_for(tracked(os.getpid(), ()), now)
        context = link.context_for(tracked(os.getpid(), (child.pid,)), now)
    finally:
        link.stop()
        child.communicate()
    assert without is not None and without["match"] == "agent+time"
    assert without["session_id"] == LATER
    assert context is not None
    assert (context["match"], context["session_id"]) == ("environ", EARLIER)
    assert context["agent_version"] == "2.1.332"
    assert context["requests"] == 3
    assert "sk-do-not-keep-me" not in repr(context)

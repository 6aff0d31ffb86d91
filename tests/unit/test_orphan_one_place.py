"""What a tree leaves behind is listed in one place: under the watch of the tree it left,
even when another watch's selectors match it, and still after the daemon restarts."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from daemon.config.parse import parse_config_text
from daemon.config.schema import Config
from daemon.watch.proc.proctable import default_process_table
from daemon.watch.proc.sampler import Sampler, TickSample
from daemon.watch.proc.trees import TreeMemory
from tests.support.waiting import wait_for

# The agent starts an "MCP server" in its own session, writes its pid, exits on stdin EOF.
AGENT = ("import subprocess, sys\n"
         "kid = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)',"
         " sys.argv[1]], start_new_session=True, stdin=subprocess.DEVNULL,"
         " stdout=subprocess.DEVNULL)\n"
         "print(kid.pid, flush=True)\n"
         "sys.stdin.read()\n")


@pytest.fixture
def markers() -> tuple[str, str]:
    """Command-line words no other process on the machine carries."""
    tag = uuid.uuid4().hex[:8]
    return f"agent-{tag}", f"mcp-server-{tag}"


def config_for(agent_marker: str, server_marker: str) -> Config:
    text = (f'[[watch]]\nname = "agent"\ninterpreter_cmdline = "{agent_marker}"\n'
            f'[[watch]]\nname = "mcp-server"\ninterpreter_cmdline = "{server_marker}"\n')
    return parse_config_text(text, "<test>", {}, psutil.virtual_memory().total)


@pytest.fixture
def left_behind(markers: tuple[str, str]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A running agent and the pid of the server it started."""
    agent_marker, server_marker = markers
    agent = subprocess.Popen([sys.executable, "-c", AGENT, server_marker, agent_marker],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert agent.stdout is not None
    server = int(agent.stdout.readline())
    try:
        yield agent, server
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        psutil.Process(server).kill()


def places(sample: TickSample, pid: int) -> list[str]:
    """Where a pid is listed: ``watch`` for a tree root, ``watch:orphan`` for an orphan."""
    found = [f"{w}" for w, trees in sample.by_watch.items() for t in trees if t.pid == pid]
    found += [f"{w}:orphan" for w, rows in sample.orphans.items() for o in rows if o.pid == pid]
    return found


def test_orphaned_server_is_listed_once_under_its_agents_watch(
        markers: tuple[str, str], left_behind: tuple[subprocess.Popen[str], int]) -> None:
    """While the agent runs the server is in its tree; after the agent exits it is the
    agent watch's orphan and not also a process of the mcp-server watch."""
    agent, server = left_behind
    sampler = Sampler(default_process_table(), config_for(*markers).watches)
    first = wait_for(lambda: (s := sampler.sample(0.0, 0.0)) and places(s, agent.pid) and s,
                     message="the agent's tree")
    assert places(first, server) == []  # a member of the agent's tree, not a root
    assert agent.communicate(timeout=30) is not None
    after = sampler.sample(1.0, 1.0)
    assert places(after, server) == ["agent:orphan"]
    assert after.by_watch["mcp-server"] == []


def test_orphan_is_still_an_orphan_after_a_restart(
        tmp_path: Path, markers: tuple[str, str],
        left_behind: tuple[subprocess.Popen[str], int]) -> None:
    """A daemon that restarts after the agent exited takes back what it knew about the tree
    from the state dir: the server is the agent watch's orphan, not an mcp-server process."""
    agent, server = left_behind
    watches = config_for(*markers).watches
    before = Sampler(default_process_table(), watches)
    memory = TreeMemory(tmp_path / "trees.json")
    wait_for(lambda: places(before.sample(0.0, 0.0), agent.pid), message="the agent's tree")
    memory.save_if_changed(before.origins)
    assert agent.communicate(timeout=30) is not None
    restarted = Sampler(default_process_table(), watches)
    restarted.restore(TreeMemory(tmp_path / "trees.json").load())
    after = restarted.sample(10.0, 10.0)
    assert places(after, server) == ["agent:orphan"]
    (orphan,) = after.orphans["agent"]
    assert orphan.agent_pid == agent.pid

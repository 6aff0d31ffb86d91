"""Agent processes meant to outlive the process that started them (pure).

An agent's tree can start a server that is designed to keep running after the terminal UI
quits; it is not left behind by accident, so it is never an orphan. When its starter exits
it stays what it is: an ordinary process of its agent's watch. Each helper is known by its
executable path and its command line, as recorded from real installs (see
``tests/fixtures/process_shapes.json``, roles ``app-server`` and ``helper``, and
docs/agents.md):

* Codex: ``codex app-server ...`` — the background server the terminal UI and the IDE
  extension talk to (``--listen unix:// --managed-daemon``), and its updater loop
  (``app-server pid-update-loop``). It outlives the UI on purpose.
* Claude Code: ``claude daemon run ...`` (the background-agents daemon) and the
  ``--bg-pty-host`` / ``--bg-spare`` sessions it keeps ready.

Only processes with one of the helpers' names are looked at (their command line is read
once per process image), so this costs nothing for the rest of a tree.

>>> long_lived("codex", "/h/.codex/packages/standalone/releases/0.171.0-x/bin/codex",
...            ("/h/.codex/packages/standalone/releases/0.171.0-x/bin/codex", "app-server",
...             "--listen", "unix://", "--managed-daemon"))
'codex app-server'
>>> long_lived("codex", "/usr/local/lib/node_modules/@openai/codex/vendor/x/codex/codex",
...            ("codex", "exec", "hello")) is None
True
>>> long_lived("2.1.197", "/h/.local/share/claude/versions/2.1.197",
...            ("/h/.local/share/claude/versions/2.1.197", "--bg-spare", "/tmp/s.sock"))
'claude-code background session'
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

_VERSION_NAME = re.compile(r"\d+\.\d+\.\d+")  # the native Claude Code runs as its version


@dataclass(frozen=True, slots=True)
class Helper:
    """One kind of long-lived helper: its agent, executable and first arguments."""

    label: str
    agent: str
    exe: re.Pattern[str]
    first_args: tuple[tuple[str, ...], ...]


HELPERS: tuple[Helper, ...] = (
    Helper("codex app-server", "codex",
           re.compile(r"(^|/)codex(-[^/]*)?(\.exe)?$"), (("app-server",),)),
    Helper("claude-code daemon", "claude-code",
           re.compile(r"(/claude/versions/[^/]+|/claude(\.exe)?)$"), (("daemon", "run"),)),
    Helper("claude-code background session", "claude-code",
           re.compile(r"(/claude/versions/[^/]+|/claude(\.exe)?)$"),
           (("--bg-pty-host",), ("--bg-spare",))),
)


def may_be_helper(comm: str) -> bool:
    """Whether a process name could be a helper's (cheap: decides whether to read argv)."""
    return comm.startswith(("codex", "claude")) or bool(_VERSION_NAME.fullmatch(comm))


def long_lived(comm: str, exe: str | None, cmdline: Sequence[str]) -> str | None:
    """Which long-lived helper a process is, or None."""
    if not may_be_helper(comm) or len(cmdline) < 2:
        return None
    path = exe or cmdline[0]
    names = (path, os.path.basename(cmdline[0]))
    for helper in HELPERS:
        if not any(helper.exe.search(name) for name in names):
            continue
        for first in helper.first_args:
            if tuple(cmdline[1:1 + len(first)]) == first:
                return helper.label
    return None

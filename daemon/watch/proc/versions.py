"""An agent's version, read from where it is installed (its path), never from its files.

Installers put the version in the path: ``~/.local/share/claude/versions/2.1.197``,
``.pnpm/@openai+codex@0.171.0-linux-x64/...``, ``Caskroom/codex/0.171.0/...``,
``~/.codex/packages/standalone/releases/0.171.0-x86_64-unknown-linux-musl/bin/codex``,
``extensions/anthropic.claude-code-2.1.197-linux-x64/...``. Reading a package.json
would cost a file read per process; the path is already in hand. For an interpreter
(node, python) the executable's path names the interpreter's version, so only the
script's path is looked at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

# One version: x.y.z with an optional pre-release word (not a platform suffix such as
# "-linux-x64"), or a date-stamped build (cursor-agent's 2025.12.17-996666f).
_VERSION = (r"[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,6}"
            r"(?:-(?:alpha|beta|rc|preview|nightly|next)[0-9.]{0,12}|-[0-9a-f]{7,12})?")
# Every alternative starts with a literal and none nests a quantifier: linear time.
_PATTERNS = (
    re.compile(r"/versions/(" + _VERSION + r")(?:/|$)"),
    re.compile(r"/releases/(" + _VERSION + r")(?:-|/|$)"),
    re.compile(r"/(?:Caskroom|Cellar)/[^/]{1,100}/(" + _VERSION + r")(?:_[0-9]{1,3})?/"),
    re.compile(r"[a-z]@(" + _VERSION + r")(?:-|/|$)"),
    re.compile(r"\.[a-z-]{1,40}-(" + _VERSION + r")-(?:linux|darwin|win32)"),
)
INTERPRETER = re.compile(r"node|nodejs|bun|deno|python[0-9.]{0,8}|Python|pypy[0-9.]{0,8}|uv"
                         r"|npm exec .{0,200}")
MAX_PATH_CHARS = 4096


def version_from_path(path: str) -> str | None:
    """The version a path names, if it names one.

    >>> version_from_path("/home/u/.local/share/claude/versions/2.1.197")
    '2.1.197'
    >>> version_from_path("/h/.pnpm/@openai+codex@0.171.0-linux-x64/node_modules/x/codex")
    '0.171.0'
    >>> version_from_path("/h/.local/share/cursor-agent/versions/2025.12.17-996666f/node")
    '2025.12.17-996666f'
    >>> version_from_path("/usr/local/bin/codex") is None
    True
    """
    text = path[:MAX_PATH_CHARS]
    for pattern in _PATTERNS:
        found = pattern.search(text)
        if found:
            return found.group(1)
    return None


def is_interpreter(name: str, exe: str | None) -> bool:
    """Whether a process is an interpreter running a script (by its name or executable).

    >>> is_interpreter("node", "/usr/bin/node"), is_interpreter("npm exec @anthr", None)
    (True, True)
    >>> is_interpreter("claude", "/h/.local/share/claude/versions/2.1.197")
    False
    """
    if INTERPRETER.fullmatch(name):
        return True
    return exe is not None and INTERPRETER.fullmatch(os.path.basename(exe)) is not None


def agent_version(name: str, exe: str | None, cmdline: Sequence[str]) -> str | None:
    """The version of the agent a process runs: from its executable, or its script's path."""
    if not is_interpreter(name, exe):
        if exe:
            found = version_from_path(exe)
            if found:
                return found
        return version_from_path(cmdline[0]) if cmdline else None
    for arg in cmdline[1:4]:
        if not arg.startswith("-"):
            return version_from_path(arg)
    return None

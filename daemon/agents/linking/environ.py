"""The exact agent session of a process tree, from one environment variable (the edge).

Since 2.1.154 Claude Code starts its stdio MCP servers with ``CLAUDE_CODE_SESSION_ID`` (and
``CLAUDECODE=1``) in their environment. Reading that one variable from a child's
``/proc/PID/environ`` links the tree to its session exactly, where otherwise only the agent
and the time could. Nothing else of the environment is looked at, kept or logged: it holds
the user's secrets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

SESSION_VARIABLE = b"CLAUDE_CODE_SESSION_ID="
MAX_ENVIRON_BYTES = 256 * 1024
_SESSION_SHAPE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")


def session_in_environ(raw: bytes) -> str | None:
    """The value of CLAUDE_CODE_SESSION_ID in a NUL-separated environment block, if it has
    the shape of a session id; nothing else is read.

    >>> session_in_environ(b"HOME=/h\\0CLAUDE_CODE_SESSION_ID=f2041705-6884\\0TOKEN=x\\0")
    'f2041705-6884'
    >>> session_in_environ(b"X_CLAUDE_CODE_SESSION_ID=a\\0") is None
    True
    >>> session_in_environ(b"CLAUDE_CODE_SESSION_ID=$(rm -rf)\\0") is None
    True
    """
    for entry in raw.split(b"\0"):
        if entry.startswith(SESSION_VARIABLE):
            value = entry[len(SESSION_VARIABLE):].decode("ascii", "replace")
            return value if _SESSION_SHAPE.fullmatch(value) else None
    return None


def read_session(pid: int, proc_root: str = "/proc") -> str | None:
    """CLAUDE_CODE_SESSION_ID of one process (None when absent, gone or not readable)."""
    try:
        fd = os.open(f"{proc_root}/{pid}/environ", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = os.read(fd, MAX_ENVIRON_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    return session_in_environ(raw)


def tree_session(pids: Iterable[int], proc_root: str = "/proc") -> str | None:
    """The first session id found among a tree's processes (its MCP children carry it)."""
    for pid in pids:
        session = read_session(pid, proc_root)
        if session:
            return session
    return None

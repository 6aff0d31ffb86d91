"""The guard's blocks on disk: the daemon writes the open tool_loop / cost_surge episodes,
``budget check --hook`` reads them. Light imports: the hook runs before every tool call.

The file lists each blocked session with the wall time its block ends by itself, so a
daemon that stopped cannot block an agent for longer than one window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILE_NAME = "guard-blocks.json"
MAX_FILE_BYTES = 4 * 1024 * 1024


def blocks_path(state_dir: Path) -> Path:
    """Where the daemon writes its blocks."""
    return state_dir / FILE_NAME


def encode_blocks(blocks: list[dict[str, Any]], now: float) -> bytes:
    """The file's content (pure): ``blocks`` are {rule, agent, session, reason, until}.

    >>> encode_blocks([], 5.0)
    b'{"written_at":5.0,"blocks":[]}'
    """
    return json.dumps({"written_at": now, "blocks": blocks}, separators=(",", ":")).encode()


def blocked_reason(data: Any, session: str | None, now: float) -> str | None:
    """The reason a session is blocked now, from the decoded file; None lets it pass (pure).

    >>> d = {"blocks": [{"session": "s1", "reason": "tool_loop: Read", "until": 10.0}]}
    >>> blocked_reason(d, "s1", 5.0), blocked_reason(d, "s2", 5.0), blocked_reason(d, "s1", 11)
    ('tool_loop: Read', None, None)
    """
    if session is None or not isinstance(data, dict):
        return None
    for block in data.get("blocks") or ():
        if not isinstance(block, dict) or block.get("session") != session:
            continue
        until = block.get("until")
        if isinstance(until, int | float) and until > now:
            return str(block.get("reason") or block.get("rule") or "guard")
    return None


def read_blocked_reason(state_dir: Path, session: str | None, now: float) -> str | None:
    """``blocked_reason`` of the daemon's file; no file or an unreadable one blocks nothing."""
    if session is None:
        return None
    try:
        with blocks_path(state_dir).open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_FILE_BYTES:
        return None
    try:
        return blocked_reason(json.loads(raw), session, now)
    except ValueError:
        return None

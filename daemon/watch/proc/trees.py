"""What the daemon knows about its trees, kept across restarts (the edge: one small file).

Each process that was in a watched tree is recorded by pid and start time with the watch and
the agent (pid and start time) at its root. After a restart the sampler takes it back, so a
process the agent left behind is still that agent's orphan rather than an ordinary process
(or another watch's). A file that cannot be read only means starting without that memory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import structlog

from crash_reports.common.atomic import write_atomic
from crash_reports.common.files import read_regular
from daemon.watch.proc.sampler import Origin

log = structlog.get_logger(component="tick")

MAX_BYTES = 4 * 1024 * 1024
Key = tuple[int, int]


def load_origins(path: Path) -> dict[Key, Origin]:
    """The origins the last run saved; empty when there is no file or it is unreadable."""
    try:
        rows = json.loads(read_regular(path, MAX_BYTES))
        return {(int(r["pid"]), int(r["start"])): Origin(
                    str(r["watch"]), (int(r["agent_pid"]), int(r["agent_start"])))
                for r in rows}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("trees.unreadable", path=str(path), error=repr(exc))
        return {}


def save_origins(path: Path, origins: Mapping[Key, Origin]) -> None:
    """Write the origins atomically (not fsynced: losing the last tick's change is harmless)."""
    rows = [{"pid": pid, "start": start, "watch": o.watch, "agent_pid": o.agent_key[0],
             "agent_start": o.agent_key[1]} for (pid, start), o in sorted(origins.items())]
    try:
        write_atomic(path, json.dumps(rows).encode(), durable=False)
    except OSError as exc:
        log.warning("trees.write_failed", path=str(path), error=str(exc))


class TreeMemory:
    """Saves the sampler's origins whenever they change; loads them once at start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: dict[Key, Origin] = {}

    def load(self) -> dict[Key, Origin]:
        """What the last run knew."""
        self._saved = load_origins(self.path)
        return dict(self._saved)

    def save_if_changed(self, origins: Mapping[Key, Origin]) -> None:
        """Write only when the trees changed since the last write."""
        if origins != self._saved:
            save_origins(self.path, origins)
            self._saved = dict(origins)

"""Children started by ``telemetryd wrap``: the files that announce them to the daemon.

``wrap`` writes ``wrapped/<wrap id>.json`` (atomically, 0600) before its child runs and
removes it when the child is gone; the daemon reads the folder each tick and watches each
live child under the watch it names, whatever the watches' selectors say. A watch named
``wrapped`` (the default of ``wrap --watch``) exists even when the config has none.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from crash_reports.storage.atomic import write_atomic
from daemon.config.schema import WatchRule, parse_config

DEFAULT_WATCH = "wrapped"
MAX_ENTRIES = 256  # a folder flooded by a runaway script costs one bounded listdir a tick
MAX_FILE_BYTES = 4096
log = structlog.get_logger("telemetryd.wrapped")


@dataclass(frozen=True, slots=True)
class WrappedChild:
    """One announced child: its pid, the watch it joins and the wrap that started it."""

    wrap_id: str
    pid: int
    watch: str
    started_at: float

    def to_json(self) -> bytes:
        """The file's content."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":")).encode()


def announce(folder: Path, child: WrappedChild) -> Path:
    """Write the child's file (the folder is created 0700); return its path."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{child.wrap_id}.json"
    write_atomic(path, child.to_json(), durable=False)
    return path


def read_announced(folder: Path) -> list[WrappedChild]:
    """Every well-formed file in the folder (bounded); bad or foreign files are skipped."""
    try:
        names = sorted(os.listdir(folder))[:MAX_ENTRIES]
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("wrapped.unreadable", path=str(folder), error=str(exc))
        return []
    found = []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            with open(folder / name, "rb") as handle:
                data = json.loads(handle.read(MAX_FILE_BYTES))
            found.append(WrappedChild(str(data["wrap_id"]), int(data["pid"]),
                                      str(data["watch"]), float(data["started_at"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def pids_by_watch(children: Sequence[WrappedChild]) -> dict[str, list[int]]:
    """Watch name -> announced pids.

    >>> pids_by_watch([WrappedChild("a", 5, "w", 0.0), WrappedChild("b", 7, "w", 0.0)])
    {'w': [5, 7]}
    """
    out: dict[str, list[int]] = {}
    for child in children:
        out.setdefault(child.watch, []).append(child.pid)
    return out


def with_wrapped_watch(watches: tuple[WatchRule, ...], total_memory_bytes: int
                       ) -> tuple[WatchRule, ...]:
    """The watches plus the default ``wrapped`` watch unless the config names one.

    It has the schema's default levels and no selector that can match (pid 0 is never a
    process): only wrapped children join it.
    """
    if any(rule.name == DEFAULT_WATCH for rule in watches):
        return watches
    parsed = parse_config({"watch": [{"name": DEFAULT_WATCH, "pid": 1}]}, "<wrapped>", {},
                          total_memory_bytes)
    return (*watches, dataclasses.replace(parsed.watches[0], pid=0))

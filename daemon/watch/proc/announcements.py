"""Children started by ``telemetryd wrap``: the files that announce them to the daemon.

``wrap`` writes ``wrapped/<wrap id>.json`` (atomically, 0600) before its child runs and
removes it when the child is gone; the daemon reads the folder each tick and watches each
live child under the watch it names, whatever the watches' selectors say. A watch named
``wrapped`` (the default of ``wrap --watch``) exists even when the config has none. A file
whose child and ``wrap`` process are both gone (``wrap`` was SIGKILLed) is removed by the
daemon (``stale``).

The folder is in the state dir, which anything running as the user can write into: a FIFO,
symlink, socket or directory named ``*.json`` is never opened (opening a FIFO blocks until a
writer comes: it would stop the tick for good). It is renamed to a dot name the reader
skips (``.<name>.refused-<ns>``), with one ``wrapped.refused`` log line.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from crash_reports.common.atomic import write_atomic
from crash_reports.common.files import (
    UnsafeFileError,
    describe_mode,
    read_regular,
    rename_aside,
)
from daemon.config.parse import parse_config
from daemon.config.schema import WatchRule

DEFAULT_WATCH = "wrapped"
MAX_ENTRIES = 256  # a folder flooded by a runaway script costs one bounded listdir a tick
MAX_FILE_BYTES = 4096
log = structlog.get_logger(component="wrap")


@dataclass(frozen=True, slots=True)
class WrappedChild:
    """One announced child: its pid, the watch it joins and the wrap that started it."""

    wrap_id: str
    pid: int
    watch: str
    started_at: float
    wrap_pid: int = 0  # the `telemetryd wrap` process; 0 in files that do not say
    last_rss_bytes: int | None = None  # wrap's latest sample of the tree, rewritten as it runs
    last_sample_at: float | None = None

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
    """Every well-formed file in the folder (bounded); bad or foreign files are skipped,
    special files moved aside (``refuse``). Never blocks: no FIFO is ever opened."""
    try:
        with os.scandir(folder) as scan:
            entries = sorted((entry for entry in scan
                              if entry.name.endswith(".json") and not entry.name.startswith(".")),
                             key=lambda entry: entry.name)[:MAX_ENTRIES]
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        refuse(folder.parent, folder.name, "is not a directory")
        return []
    except OSError as exc:
        log.warning("wrapped.unreadable", path=str(folder), error=str(exc))
        return []
    found = []
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                raise UnsafeFileError(folder / entry.name,
                                      f"is not a regular file ({_kind_of(entry)})")
            # Non-blocking and checked on the descriptor: a FIFO swapped in after the
            # listing is refused here too.
            data = json.loads(read_regular(folder / entry.name, MAX_FILE_BYTES))
            found.append(WrappedChild(str(data["wrap_id"]), int(data["pid"]),
                                      str(data["watch"]), float(data["started_at"]),
                                      int(data.get("wrap_pid", 0))))
        except UnsafeFileError as exc:
            refuse(folder, entry.name, exc.reason)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def refuse(folder: Path, name: str, reason: str) -> None:
    """Rename a file no ``wrap`` wrote to a dot name the reader skips; log it (once: the
    name is gone from the listing afterwards)."""
    try:
        aside = rename_aside(folder / name)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("wrapped.refused", file=name, reason=reason, moved_to=None,
                    error=str(exc))
        return
    log.warning("wrapped.refused", file=name, reason=reason, moved_to=str(aside))


def _kind_of(entry: os.DirEntry[str]) -> str:
    try:
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError:
        return "gone"
    return describe_mode(mode)


def stale(children: Sequence[WrappedChild], alive: Callable[[int], bool]) -> list[WrappedChild]:
    """Announcements whose child and whose ``wrap`` process are both gone (pure).

    >>> kids = [WrappedChild("a", 5, "w", 0.0, 4), WrappedChild("b", 7, "w", 0.0, 6)]
    >>> [c.wrap_id for c in stale(kids, alive=lambda pid: pid == 6)]
    ['a']
    """
    return [child for child in children
            if not alive(child.pid) and (child.wrap_pid <= 0 or not alive(child.wrap_pid))]


def remove_stale(folder: Path, children: Sequence[WrappedChild],
                 alive: Callable[[int], bool]) -> list[WrappedChild]:
    """Delete the files of ``stale`` announcements; return those removed."""
    removed = []
    for child in stale(children, alive):
        try:
            (folder / f"{child.wrap_id}.json").unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("wrapped.stale_unremovable", wrap_id=child.wrap_id, error=str(exc))
            continue
        log.info("wrapped.stale_removed", wrap_id=child.wrap_id, pid=child.pid,
                 wrap_pid=child.wrap_pid)
        removed.append(child)
    return removed


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

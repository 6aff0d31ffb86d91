"""Which processes a watch matches: name, executable path, command line, pid, pidfile, user.

A watch identifies its processes by any one of ``process_name`` (one or several names),
``exe`` (a pattern searched in the executable's path) and ``interpreter_cmdline`` (a
pattern searched in the command line of an interpreter: node, python, bun, uv, ...);
``cmdline``, ``pid``, ``pidfile`` and ``user`` narrow what matched (AND), and
``exclude_exe`` / ``exclude_cmdline`` take look-alikes out.

The verdict for each (pid, start time, name) is computed once and cached; a tick then
costs one dict lookup per process.  A process can re-exec, or rewrite its command line,
without changing its name: so each tick a slice of the cached identities (all of them
every ``REVALIDATE_TICKS`` ticks) is checked against a fingerprint (a hash of the first
4 KiB of the command line and of the exe link) and a verdict whose fingerprint changed
is dropped. An exec always changes the stat line (memory figures, page faults): while a
process's line stays the same its fingerprint is read only every
``RECHECK_IDLE_VISITS``-th time round. A re-exec under the same name is seen within 10
ticks in a watched tree and 20 outside one (the table reads such processes every 10th
scan), an argument rewrite by a process that otherwise sleeps within 60.

The cache is bounded (``SelectorCache``): identities hold a bounded prefix of the
command line (``identity.py``), exited images are pruned, and past a cap in entries or
bytes the oldest are evicted and counted.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from crash_reports.common.files import read_regular
from daemon.config.schema import WatchRule
from daemon.watch.proc.identity import (
    Fingerprint,
    FingerprintReader,
    IdentityReader,
    ProcessIdentity,
    default_readers,
)
from daemon.watch.proc.proctable import ProcStat
from daemon.watch.proc.versions import is_interpreter

__all__ = ["ProcessIdentity", "Selector", "SelectorCache", "name_matches", "read_pidfile",
           "rule_matches_static"]

REVALIDATE_TICKS = 10
RECHECK_IDLE_VISITS = 6  # a process whose stat line stays the same: every 60 ticks
# What the cache of process images may hold whatever runs on the machine: far more
# entries than a process table has, and bytes for that many bounded identities.
MAX_CACHED_IMAGES = 16_384
MAX_CACHED_BYTES = 32 * 1024**2
# Images of exited processes are dropped once this many have gathered (a pass over the
# cache; pruning every tick would cost one for nothing).
PRUNE_SLACK = 64
_MAX_PIDFILE_BYTES = 64
_VERDICT_BYTES = 160  # a cache slot, its key and a short verdict tuple

ImageKey = tuple[int, int, str]  # pid, start time, name: one process image


def name_matches(wanted: str, stat: ProcStat, identity: ProcessIdentity | None) -> bool:
    """Exact match on the process name or the basename of its executable.

    The kernel keeps only 15 characters of a name, so a long name is also checked
    against the first word of the command line.

    >>> st = ProcStat(1, 0, "claude", "S", 0.0, 0, 0, 1)
    >>> name_matches("claude", st, None)
    True
    >>> name_matches("claud", st, None)
    False
    """
    if stat.comm == wanted:
        return True
    if identity is None:
        return False
    if identity.exe_name == wanted:
        return True
    if identity.cmdline:
        first = os.path.basename(identity.cmdline[0].split(" ")[0])
        if first == wanted:
            return True
    return False


def _needs_identity(rule: WatchRule, stat: ProcStat) -> bool:
    if (rule.cmdline is not None or rule.user is not None or rule.exe is not None
            or rule.exclude_exe is not None or rule.exclude_cmdline is not None):
        return True
    if rule.interpreter_cmdline is not None:
        return True
    return bool(rule.process_names) and stat.comm not in rule.process_names


def identified(rule: WatchRule, stat: ProcStat, identity: ProcessIdentity | None) -> bool:
    """Whether any of the rule's identifying selectors (name, exe, interpreter_cmdline) agrees.

    A rule with none of them identifies every process (its filters then decide).
    """
    if not rule.process_names and rule.exe is None and rule.interpreter_cmdline is None:
        return True
    if any(name_matches(name, stat, identity) for name in rule.process_names):
        return True
    if identity is None:
        return False
    if rule.exe is not None and identity.exe and rule.exe.search(identity.exe_text):
        return True
    return (rule.interpreter_cmdline is not None
            and is_interpreter(stat.comm, identity.exe)
            and rule.interpreter_cmdline.search(identity.cmdline_text) is not None)


def rule_matches_static(
    rule: WatchRule, stat: ProcStat, identity: ProcessIdentity | None
) -> bool:
    """The rule identifies the process, every filter but the pidfile agrees, no exclusion hits."""
    if rule.pid is not None and stat.pid != rule.pid:
        return False
    if not identified(rule, stat, identity):
        return False
    if rule.user is not None and (identity is None or identity.username != rule.user):
        return False
    if rule.cmdline is not None and (
            identity is None or rule.cmdline.search(identity.cmdline_text) is None):
        return False
    if identity is not None:
        if rule.exclude_exe is not None and rule.exclude_exe.search(identity.exe_text):
            return False
        if rule.exclude_cmdline is not None and \
                rule.exclude_cmdline.search(identity.cmdline_text):
            return False
    return True


def read_pidfile(path: Path) -> int | None:
    """The pid in a pidfile, or None when it is missing, not a pid, or not a regular file.

    Read without blocking (a FIFO is refused, not waited on), without following a
    symlink's target into a device, and at most 64 bytes (``/dev/zero`` is refused).
    """
    try:
        text = read_regular(path, _MAX_PIDFILE_BYTES).decode("ascii", "replace").strip()
    except OSError:
        return None
    first = text.split()[0] if text else ""
    return int(first) if first.isdigit() else None


@dataclass(slots=True)
class _Image:
    """What the selector remembers of one process image."""

    verdict: tuple[int, ...] | None = None
    identity: ProcessIdentity | None = None
    identity_read: bool = False
    fingerprint: Fingerprint | None = None
    size_bytes: int = _VERDICT_BYTES
    checked: ProcStat | None = None  # the stat line its fingerprint was last taken with
    unchanged_visits: int = 0


class SelectorCache:
    """Verdicts and identities by process image, bounded in entries and bytes.

    Images of exited processes are pruned once ``PRUNE_SLACK`` of them gathered; if the
    live ones alone pass a cap, the oldest are evicted (counted in ``evicted``) and read
    again when next needed.
    """

    def __init__(self, max_images: int = MAX_CACHED_IMAGES,
                 max_bytes: int = MAX_CACHED_BYTES) -> None:
        self.max_images = max_images
        self.max_bytes = max_bytes
        self.images: dict[ImageKey, _Image] = {}
        self.bytes = 0
        self.evicted = 0
        self.recheck: deque[ImageKey] = deque()

    def get(self, key: ImageKey) -> _Image:
        """The image's slot, created empty on first use."""
        image = self.images.get(key)
        if image is None:
            image = self.images[key] = _Image()
            self.bytes += image.size_bytes
        return image

    def set_identity(self, key: ImageKey, identity: ProcessIdentity | None,
                     fingerprint: Fingerprint | None) -> None:
        """Remember what was read of an image."""
        image = self.get(key)
        size = _VERDICT_BYTES + (identity.size_bytes if identity is not None else 0)
        self.bytes += size - image.size_bytes
        image.identity, image.identity_read = identity, True
        image.fingerprint, image.size_bytes = fingerprint, size
        self.recheck.append(key)

    def drop(self, key: ImageKey) -> None:
        """Forget one image (its verdict is computed, and its identity read, again)."""
        image = self.images.pop(key, None)
        if image is not None:
            self.bytes -= image.size_bytes

    def bound(self, live: Callable[[], set[ImageKey]], live_count: int) -> None:
        """Drop exited images when enough gathered; evict the oldest past a cap."""
        over = len(self.images) > self.max_images or self.bytes > self.max_bytes
        if not over and len(self.images) <= live_count + PRUNE_SLACK:
            return
        alive = live()
        self.images = {k: v for k, v in self.images.items() if k in alive}
        self.bytes = sum(image.size_bytes for image in self.images.values())
        while self.images and (len(self.images) > self.max_images
                               or self.bytes > self.max_bytes):
            self.drop(next(iter(self.images)))
            self.evicted += 1
        self.recheck = deque(k for k in self.recheck if k in self.images)


class Selector:
    """Matches the process table against the watches, caching per process image."""

    def __init__(
        self,
        rules: Sequence[WatchRule],
        identity_reader: IdentityReader | None = None,
        pidfile_reader: Callable[[Path], int | None] = read_pidfile,
        fingerprint_reader: FingerprintReader | None = None,
        cache: SelectorCache | None = None,
    ) -> None:
        self.rules = tuple(rules)
        read_identity, read_fingerprint = default_readers(
            with_user=any(rule.user is not None for rule in self.rules))
        self._read_identity = identity_reader or read_identity
        self._read_pidfile = pidfile_reader
        self._read_fingerprint = fingerprint_reader or read_fingerprint
        self.cache = cache or SelectorCache()
        self._self_pid = os.getpid()

    @property
    def evicted(self) -> int:
        """Process images evicted from the cache because live ones passed a cap."""
        return self.cache.evicted

    def identity(self, stat: ProcStat) -> ProcessIdentity | None:
        """The cached identity of a process image, read on first use."""
        key = (stat.pid, stat.start_ticks, stat.comm)
        image = self.cache.get(key)
        if not image.identity_read:
            found = self._read_identity(stat.pid)
            identity, fingerprint = found if found is not None else (None, None)
            self.cache.set_identity(key, identity, fingerprint)
            image.checked = stat
        return image.identity

    def _revalidate(self, table: Mapping[int, ProcStat]) -> None:
        """Drop cached verdicts of processes whose command line or exe changed."""
        cache = self.cache
        recheck = cache.recheck
        budget = max(8, -(-len(recheck) // REVALIDATE_TICKS))
        for _ in range(min(budget, len(recheck))):
            key = recheck.popleft()
            image = cache.images.get(key)
            if image is None:
                continue
            stat = table.get(key[0])
            if stat is None or (stat.pid, stat.start_ticks, stat.comm) != key:
                continue  # gone or replaced: pruned by the cache's bound
            # A process that has not run since (the reader hands back the very same stat
            # when its line did not change) cannot have re-exec'd: its fingerprint is read
            # only every RECHECK_IDLE_VISITS-th visit.
            if stat is image.checked and image.unchanged_visits < RECHECK_IDLE_VISITS - 1:
                image.unchanged_visits += 1
                recheck.append(key)
                continue
            image.checked, image.unchanged_visits = stat, 0
            if self._read_fingerprint(key[0]) != image.fingerprint:
                cache.drop(key)
                continue
            recheck.append(key)

    def known(self, stat: ProcStat) -> bool:
        """Whether the identity of this process image has been read already."""
        image = self.cache.images.get((stat.pid, stat.start_ticks, stat.comm))
        return image is not None and image.identity_read

    def _static_matches(self, stat: ProcStat) -> tuple[int, ...]:
        key = (stat.pid, stat.start_ticks, stat.comm)
        image = self.cache.images.get(key)
        if image is not None and image.verdict is not None:
            return image.verdict
        matched: list[int] = []
        for index, rule in enumerate(self.rules):
            if rule.pid is not None and rule.pid != stat.pid:
                continue
            identity = self.identity(stat) if _needs_identity(rule, stat) else None
            if rule_matches_static(rule, stat, identity):
                matched.append(index)
        verdict = tuple(matched)
        self.cache.get(key).verdict = verdict
        return verdict

    def match(self, table: Mapping[int, ProcStat]) -> list[list[int]]:
        """For each rule, the pids it matches now (the daemon itself is never matched).

        A process belongs to the first rule (in config order) that matches it, so two
        watches never count the same process.
        """
        self._revalidate(table)
        result: list[list[int]] = [[] for _ in self.rules]
        pidfile_pids: dict[int, int | None] = {}
        for index, rule in enumerate(self.rules):
            if rule.pidfile is not None:
                pidfile_pids[index] = self._read_pidfile(rule.pidfile)
        for pid, stat in table.items():
            if pid == self._self_pid:
                continue
            for index in self._static_matches(stat):
                if index in pidfile_pids and pidfile_pids[index] != pid:
                    continue
                result[index].append(pid)
                break
        self.cache.bound(lambda: {(s.pid, s.start_ticks, s.comm) for s in table.values()},
                         len(table))
        return result

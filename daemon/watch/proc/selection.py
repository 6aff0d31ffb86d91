"""Which processes a watch matches: name, executable path, command line, pid, pidfile, user.

A watch identifies its processes by any one of ``process_name`` (one or several names),
``exe`` (a pattern searched in the executable's path) and ``interpreter_cmdline`` (a
pattern searched in the command line of an interpreter: node, python, bun, uv, ...);
``cmdline``, ``pid``, ``pidfile`` and ``user`` narrow what matched (AND), and
``exclude_exe`` / ``exclude_cmdline`` take look-alikes out.

The verdict for each (pid, start time, name) is computed once and cached; a tick then
costs one dict lookup per process.  A process can re-exec, or rewrite its command line,
without changing its name: so each tick a slice of the cached identities (all of them
every ``REVALIDATE_TICKS`` ticks) is checked against a cheap fingerprint (the raw
command line and the exe link) and a verdict whose fingerprint changed is dropped.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from crash_reports.common.files import read_regular
from daemon.config.patterns import MAX_SUBJECT_CHARS
from daemon.config.schema import WatchRule
from daemon.watch.proc.proctable import ProcStat
from daemon.watch.proc.versions import agent_version, is_interpreter


@dataclass(frozen=True)
class ProcessIdentity:
    """What selectors need beyond /proc/PID/stat, read once per process image."""

    cmdline: tuple[str, ...]
    exe: str | None
    username: str | None
    access_denied: bool = False
    # Versions already read from the install path, by process name: asked every tick for
    # every tree, the same for the life of the image (a new image is a new identity).
    _versions: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    @property
    def exe_name(self) -> str | None:
        """The executable's file name."""
        return os.path.basename(self.exe) or None if self.exe else None

    @property
    def cmdline_text(self) -> str:
        """The command line joined with spaces, as a regex sees it (bounded in length)."""
        return " ".join(self.cmdline)[:MAX_SUBJECT_CHARS]

    @property
    def exe_text(self) -> str:
        """The executable's path as a regex sees it ("" when unknown)."""
        return (self.exe or "")[:MAX_SUBJECT_CHARS]

    def version(self, comm: str) -> str | None:
        """The agent version its install path names, if any."""
        if comm not in self._versions:
            if len(self._versions) >= 4:  # a process renaming itself forever stays bounded
                self._versions.clear()
            self._versions[comm] = agent_version(comm, self.exe, self.cmdline)
        return self._versions[comm]


IdentityReader = Callable[[int], ProcessIdentity | None]
FingerprintReader = Callable[[int], bytes | None]
REVALIDATE_TICKS = 10
_MAX_PIDFILE_BYTES = 64
_FINGERPRINT_BYTES = 4096


def read_fingerprint(pid: int, proc_root: str = "/proc") -> bytes | None:
    """What changes when a process re-execs or rewrites its argv: command line and exe."""
    try:
        fd = os.open(f"{proc_root}/{pid}/cmdline", os.O_RDONLY | os.O_CLOEXEC)
        try:
            cmdline = os.read(fd, _FINGERPRINT_BYTES)
        finally:
            os.close(fd)
    except OSError:
        return None
    try:
        exe = os.readlink(f"{proc_root}/{pid}/exe").encode(errors="replace")
    except OSError:
        exe = b""
    return cmdline + b"\0exe=" + exe


def read_identity(pid: int) -> ProcessIdentity | None:
    """Read cmdline, exe and user of a process with psutil; None if it is gone."""
    try:
        proc = psutil.Process(pid)
        denied = False
        with proc.oneshot():
            try:
                cmdline = tuple(proc.cmdline())
            except psutil.AccessDenied:
                cmdline, denied = (), True
            try:
                exe: str | None = proc.exe() or None
            except (psutil.AccessDenied, OSError):
                exe, denied = None, True
            try:
                username: str | None = proc.username()
            except (psutil.AccessDenied, KeyError):
                username = None
        return ProcessIdentity(cmdline, exe, username, denied)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None


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


class Selector:
    """Matches the process table against the watches, caching per process image."""

    def __init__(
        self,
        rules: Sequence[WatchRule],
        identity_reader: IdentityReader = read_identity,
        pidfile_reader: Callable[[Path], int | None] = read_pidfile,
        fingerprint_reader: FingerprintReader = read_fingerprint,
    ) -> None:
        self.rules = tuple(rules)
        self._read_identity = identity_reader
        self._read_pidfile = pidfile_reader
        self._read_fingerprint = fingerprint_reader
        self._fingerprints: dict[tuple[int, int, str], bytes | None] = {}
        self._recheck: deque[tuple[int, int, str]] = deque()
        self._verdicts: dict[tuple[int, int, str], tuple[int, ...]] = {}
        self._identities: dict[tuple[int, int, str], ProcessIdentity | None] = {}
        self._self_pid = os.getpid()

    def identity(self, stat: ProcStat) -> ProcessIdentity | None:
        """The cached identity of a process image, read on first use."""
        key = (stat.pid, stat.start_ticks, stat.comm)
        if key not in self._identities:
            self._fingerprints[key] = self._read_fingerprint(stat.pid)
            self._identities[key] = self._read_identity(stat.pid)
            self._recheck.append(key)
        return self._identities[key]

    def _revalidate(self, table: Mapping[int, ProcStat]) -> None:
        """Drop cached verdicts of processes whose command line or exe changed."""
        budget = max(8, -(-len(self._recheck) // REVALIDATE_TICKS))
        for _ in range(min(budget, len(self._recheck))):
            key = self._recheck.popleft()
            if key not in self._identities:
                continue
            stat = table.get(key[0])
            if stat is None or (stat.pid, stat.start_ticks, stat.comm) != key:
                continue  # gone or replaced: pruned by _forget_gone
            if self._read_fingerprint(key[0]) != self._fingerprints.get(key):
                self._verdicts.pop(key, None)
                self._identities.pop(key, None)
                self._fingerprints.pop(key, None)
                continue
            self._recheck.append(key)

    def known(self, stat: ProcStat) -> bool:
        """Whether the identity of this process image has been read already."""
        return (stat.pid, stat.start_ticks, stat.comm) in self._identities

    def _static_matches(self, stat: ProcStat) -> tuple[int, ...]:
        key = (stat.pid, stat.start_ticks, stat.comm)
        cached = self._verdicts.get(key)
        if cached is not None:
            return cached
        matched: list[int] = []
        for index, rule in enumerate(self.rules):
            if rule.pid is not None and rule.pid != stat.pid:
                continue
            identity = self.identity(stat) if _needs_identity(rule, stat) else None
            if rule_matches_static(rule, stat, identity):
                matched.append(index)
        verdict = tuple(matched)
        self._verdicts[key] = verdict
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
        self._forget_gone(table)
        return result

    def _forget_gone(self, table: Mapping[int, ProcStat]) -> None:
        # Pruning every tick would cost a pass over the cache; do it when it has grown.
        if len(self._verdicts) > 2 * len(table) + 64:
            live = {(s.pid, s.start_ticks, s.comm) for s in table.values()}
            self._verdicts = {k: v for k, v in self._verdicts.items() if k in live}
            self._identities = {k: v for k, v in self._identities.items() if k in live}
            self._fingerprints = {k: v for k, v in self._fingerprints.items() if k in live}
            self._recheck = deque(k for k in self._recheck if k in live)

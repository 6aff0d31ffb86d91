"""What selectors know of a process beyond its stat line: command line, executable, user.

Read once per process image and cached by the selector, so what is kept is bounded:
the command line is read at most ``CMDLINE_READ_BYTES`` (any process may carry up to
2 MiB of arguments), and only the text a pattern sees (``MAX_SUBJECT_CHARS``) and the
first ``MAX_ARGS`` arguments are kept. Whether a process re-exec'd or rewrote its
arguments is told by a hash of the first ``FINGERPRINT_BYTES`` of its command line and
its exe link (``Fingerprint``), never by keeping the bytes.

On Linux everything is read from ``/proc`` directly (a psutil ``Process`` costs a stat
read and an object per process); elsewhere psutil is asked and its answer bounded the
same way.
"""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import psutil

from daemon.config.patterns import MAX_SUBJECT_CHARS
from daemon.watch.proc.versions import agent_version

# A UTF-8 character takes at most 4 bytes: this is enough for MAX_SUBJECT_CHARS of text.
CMDLINE_READ_BYTES = 4 * MAX_SUBJECT_CHARS
FINGERPRINT_BYTES = 4096
MAX_ARGS = 64  # arguments kept (a name and a version need the first four)
MAX_ARG_CHARS = MAX_SUBJECT_CHARS
MAX_EXE_CHARS = MAX_SUBJECT_CHARS
_ARG_OVERHEAD_BYTES = 64  # what a str object and its tuple slot cost beyond the characters
_IDENTITY_OVERHEAD_BYTES = 512

Fingerprint = int  # a hash of the command line's first bytes and the exe link


@dataclass(frozen=True)
class ProcessIdentity:
    """What selectors need beyond /proc/PID/stat, read once per process image (bounded).

    ``cmdline`` holds at most ``MAX_ARGS`` arguments of at most ``MAX_ARG_CHARS`` each;
    ``cmdline_text`` is the command line as a pattern sees it (given, or joined from
    ``cmdline``), at most ``MAX_SUBJECT_CHARS``.

    >>> ident = ProcessIdentity(("node", "/x/bin/claude", "--print"), "/usr/bin/node", None)
    >>> ident.cmdline_text, ident.exe_name
    ('node /x/bin/claude --print', 'node')
    """

    cmdline: tuple[str, ...]
    exe: str | None
    username: str | None
    access_denied: bool = False
    text: str | None = field(default=None, repr=False)
    # Versions already read from the install path, by process name: asked every tick for
    # every tree, the same for the life of the image (a new image is a new identity).
    _versions: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def exe_name(self) -> str | None:
        """The executable's file name."""
        return os.path.basename(self.exe) or None if self.exe else None

    @cached_property
    def cmdline_text(self) -> str:
        """The command line joined with spaces, as a regex sees it (bounded in length)."""
        if self.text is not None:
            return self.text[:MAX_SUBJECT_CHARS]
        return " ".join(self.cmdline)[:MAX_SUBJECT_CHARS]

    @cached_property
    def exe_text(self) -> str:
        """The executable's path as a regex sees it ("" when unknown)."""
        return (self.exe or "")[:MAX_SUBJECT_CHARS]

    @property
    def size_bytes(self) -> int:
        """About what this identity holds in memory (for the selector cache's byte cap)."""
        return (_IDENTITY_OVERHEAD_BYTES + len(self.text or "") + len(self.exe or "")
                + sum(len(arg) + _ARG_OVERHEAD_BYTES for arg in self.cmdline))

    def version(self, comm: str) -> str | None:
        """The agent version its install path names, if any."""
        if comm not in self._versions:
            if len(self._versions) >= 4:  # a process renaming itself forever stays bounded
                self._versions.clear()
            self._versions[comm] = agent_version(comm, self.exe, self.cmdline)
        return self._versions[comm]


def bounded(argv: Sequence[str], exe: str | None, username: str | None,
            access_denied: bool = False) -> ProcessIdentity:
    """An identity holding only what a pattern can see of ``argv``.

    >>> ident = bounded(["sh", "-c", "x" * 10_000] + ["y"] * 500, "/bin/sh", None)
    >>> len(ident.cmdline), max(map(len, ident.cmdline)), len(ident.cmdline_text)
    (64, 4096, 4096)
    """
    text = " ".join(argv)[:MAX_SUBJECT_CHARS] if len(argv) > MAX_ARGS or any(
        len(arg) > MAX_ARG_CHARS for arg in argv) else None
    kept = tuple(arg[:MAX_ARG_CHARS] for arg in argv[:MAX_ARGS])
    return ProcessIdentity(kept, exe[:MAX_EXE_CHARS] if exe else exe, username, access_denied,
                           text)


def split_cmdline(data: bytes, truncated: bool) -> list[str]:
    """The arguments in the bytes of ``/proc/PID/cmdline``, as psutil splits them.

    A process that rewrote its arguments into one space-separated string (a process
    title) has no NUL between them: it is split on spaces. A truncated read keeps its
    NUL separators even though it does not end with one.

    >>> split_cmdline(b"node\\x00/x/cli.js\\x00", False)
    ['node', '/x/cli.js']
    >>> split_cmdline(b"claude --resume abc", False)
    ['claude', '--resume', 'abc']
    >>> split_cmdline(b"a\\x00bbbb", True)
    ['a', 'bbbb']
    """
    if not data:
        return []
    text = data.decode("utf-8", "surrogateescape")
    sep = "\x00" if text.endswith("\x00") or (truncated and "\x00" in text) else " "
    if text.endswith(sep):
        text = text[:-1]
    args = text.split(sep)
    if sep == "\x00" and len(args) == 1 and " " in text:
        args = text.split(" ")
    return args


def read_cmdline_bytes(pid: int, limit: int, proc_root: str = "/proc") -> bytes:
    """At most ``limit`` bytes of ``/proc/PID/cmdline`` (raises OSError if it is gone)."""
    fd = os.open(f"{proc_root}/{pid}/cmdline", os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def _readlink_exe(pid: int, proc_root: str) -> str:
    """The exe link's target ("" for kernel threads and zombies), as psutil reads it."""
    try:
        target = os.readlink(f"{proc_root}/{pid}/exe")
    except (FileNotFoundError, ProcessLookupError):
        return ""
    target = target.split("\x00")[0]
    if target.endswith(" (deleted)") and not os.path.exists(target):
        target = target[: -len(" (deleted)")]
    return target


def fingerprint_of(cmdline_head: bytes, exe: str) -> Fingerprint:
    """What changes when a process re-execs or rewrites its arguments (a hash, 8 bytes)."""
    return hash((cmdline_head, exe))


def read_fingerprint(pid: int, proc_root: str = "/proc") -> Fingerprint | None:
    """The fingerprint of a process now, or None if it is gone."""
    try:
        head = read_cmdline_bytes(pid, FINGERPRINT_BYTES, proc_root)
    except OSError:
        return None
    try:
        exe = _readlink_exe(pid, proc_root)
    except OSError:
        exe = ""
    return fingerprint_of(head, exe)


_USERS: dict[int, str | None] = {}


def _username(uid: int) -> str | None:
    if uid not in _USERS:
        if len(_USERS) >= 256:
            _USERS.clear()
        try:
            _USERS[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _USERS[uid] = None
    return _USERS[uid]


def _real_uid(pid: int, proc_root: str) -> int | None:
    try:
        with open(f"{proc_root}/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def read_proc_identity(pid: int, proc_root: str = "/proc", with_user: bool = True
                       ) -> tuple[ProcessIdentity, Fingerprint] | None:
    """Identity and fingerprint of a process from ``/proc``, bounded; None if it is gone."""
    denied = False
    try:
        data = read_cmdline_bytes(pid, CMDLINE_READ_BYTES, proc_root)
    except PermissionError:
        data, denied = b"", True
    except OSError:
        return None
    try:
        exe = _readlink_exe(pid, proc_root)
    except PermissionError:
        exe, denied = "", True
    except OSError:
        exe = ""
    username = None
    if with_user:
        uid = _real_uid(pid, proc_root)
        username = _username(uid) if uid is not None else None
    argv = split_cmdline(data, len(data) >= CMDLINE_READ_BYTES)
    return (bounded(argv, exe or None, username, denied),
            fingerprint_of(data[:FINGERPRINT_BYTES], exe))


def read_psutil_identity(pid: int, with_user: bool = True
                         ) -> tuple[ProcessIdentity, Fingerprint] | None:
    """The same through psutil (macOS, BSD), bounded once read."""
    try:
        proc = psutil.Process(pid)
        denied = False
        with proc.oneshot():
            try:
                argv = proc.cmdline()
            except psutil.AccessDenied:
                argv, denied = [], True
            try:
                exe: str | None = proc.exe() or None
            except (psutil.AccessDenied, OSError):
                exe, denied = None, True
            username: str | None = None
            if with_user:
                try:
                    username = proc.username()
                except (psutil.AccessDenied, KeyError):
                    username = None
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    identity = bounded(argv, exe, username, denied)
    head = "\x00".join(identity.cmdline).encode("utf-8", "surrogateescape")
    return identity, fingerprint_of(head[:FINGERPRINT_BYTES], exe or "")


IdentityReader = Callable[[int], "tuple[ProcessIdentity, Fingerprint] | None"]
FingerprintReader = Callable[[int], "Fingerprint | None"]


def default_readers(with_user: bool) -> tuple[IdentityReader, FingerprintReader]:
    """The identity and fingerprint readers for this platform."""
    if sys.platform.startswith("linux") and os.path.exists("/proc/self/cmdline"):
        return (lambda pid: read_proc_identity(pid, with_user=with_user)), read_fingerprint

    def psutil_fingerprint(pid: int) -> Fingerprint | None:
        found = read_psutil_identity(pid, with_user=False)
        return None if found is None else found[1]

    return (lambda pid: read_psutil_identity(pid, with_user)), psutil_fingerprint

"""Who is at the other end of a loopback TCP connection: its socket, process and ancestors.

As ``ss -p`` does it: the connection's addresses give the client socket's line in
``<proc>/net/tcp`` (or ``tcp6``) with its inode and owner uid; the process holding
``socket:[inode]`` is found among the ``<proc>/PID/fd`` links; its ancestors come from
``<proc>/PID/stat``. The /proc root is an argument, so tests can point it anywhere.

Bounded, because it runs for requests anyone on the machine can send: the socket tables are
read in pieces and only until the line is found (at most ``max_table_bytes``), at most
``max_pids`` processes are scanned (the watched trees' members first: a watched sender is
found among them), and all of it within ``deadline_seconds``; past a bound the answer is
"undecided" (the receiver says 503, retry). Lookups take at most ``MAX_DUTY`` of a core
(``ready``), so a flood of new connections cannot starve the tick of CPU. A connection's
answer is cached: the next request on it costs one ``readlink`` that checks the socket is
still that process's. The receiver runs lookups on a thread of their own, never on its
event loop.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from daemon.watch.proc.proctable import parse_stat_line

Endpoint = tuple[str, int]  # (host, port) as the ASGI scope gives them
ProcKey = tuple[int, int]
MAX_TABLE_BYTES = 16 * 1024 * 1024  # ~100,000 sockets
MAX_PIDS = 4096
DEADLINE_SECONDS = 0.25
MAX_DEPTH = 64
CACHE_SIZE = 1024
# An answer that names no process cannot be re-checked by its socket: kept this long only.
NO_OWNER_TTL_SECONDS = 2.0
# Share of one core lookups may take, whatever the rate of new connections: after a lookup
# of d seconds the next waits d * (1 / MAX_DUTY - 1) (the receiver answers 503 meanwhile).
MAX_DUTY = 0.2
_READ_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Peer:
    """What a lookup found; ``complete`` is False when a bound stopped it first."""

    complete: bool
    inode: int | None = None
    uid: int | None = None
    pid: int | None = None
    fd: int | None = None
    ancestry: tuple[ProcKey, ...] = ()


def _word_hex(packed: bytes) -> str:
    # The kernel prints each 32-bit word of an address as a number in host byte order.
    return "".join(format(int.from_bytes(packed[i:i + 4], sys.byteorder), "08X")
                   for i in range(0, len(packed), 4))


def table_address(host: str, port: int, table: str) -> str | None:
    """How ``host:port`` is written in ``/proc/net/<table>`` (None: not in that table).

    >>> import sys
    >>> sys.byteorder == "little" and table_address("127.0.0.1", 4318, "tcp")
    '0100007F:10DE'
    >>> sys.byteorder == "little" and table_address("::1", 80, "tcp6")
    '00000000000000000000000001000000:0050'
    >>> table_address("::1", 80, "tcp") is None
    True
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if table == "tcp":
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is None:
                return None
            ip = ip.ipv4_mapped
        return f"{_word_hex(ip.packed)}:{port:04X}"
    if isinstance(ip, ipaddress.IPv4Address):
        ip = ipaddress.IPv6Address(f"::ffff:{ip}")
    return f"{_word_hex(ip.packed)}:{port:04X}"


def find_socket(proc: Path, client: Endpoint, server: Endpoint, deadline: float,
                max_bytes: int = MAX_TABLE_BYTES,
                clock: Callable[[], float] = time.monotonic) -> tuple[tuple[int, int] | None,
                                                                       bool]:
    """The client socket's (inode, uid), and whether the search ran to its end."""
    budget = max_bytes
    for table in ("tcp", "tcp6"):
        local = table_address(*client, table)
        remote = table_address(*server, table)
        if local is None or remote is None:
            continue
        found, budget, complete = _search(proc / "net" / table, f" {local} {remote} ".encode(),
                                          budget, deadline, clock)
        if found is not None:
            return found, True
        if not complete:
            return None, False
    return None, True


def _search(path: Path, needle: bytes, budget: int, deadline: float,
            clock: Callable[[], float]) -> tuple[tuple[int, int] | None, int, bool]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None, budget, True
    try:
        pending = b""
        while True:
            chunk = os.read(fd, _READ_BYTES)
            budget -= len(chunk)
            pending += chunk
            # Only whole lines are searched; a line cut by the read waits for its end.
            cut = pending.rfind(b"\n") + 1 if chunk else len(pending)
            lines, pending = pending[:cut], pending[cut:]
            at = lines.find(needle)
            while at >= 0:
                # local, remote, state, tx:rx, tr:when, retransmits, uid, timeout, inode
                end = lines.find(b"\n", at)
                fields = (lines[at:end] if end >= 0 else lines[at:]).split()
                if len(fields) >= 9 and fields[8] != b"0":  # 0: a TIME_WAIT leftover
                    return (int(fields[8]), int(fields[6])), budget, True
                at = lines.find(needle, at + 1)
            if not chunk:
                return None, budget, True
            if budget <= 0 or clock() > deadline:
                return None, budget, False
    finally:
        os.close(fd)


def find_owner(proc: Path, inode: int, candidates: Iterable[int], deadline: float,
               max_pids: int = MAX_PIDS, clock: Callable[[], float] = time.monotonic
               ) -> tuple[tuple[int, int] | None, bool]:
    """The (pid, fd) holding ``socket:[inode]``, candidates first, and whether every
    visible process was looked at (False: a bound stopped the scan)."""
    target = f"socket:[{inode}]"
    seen: set[int] = set()
    root = str(proc)

    def order() -> Iterable[int]:
        yield from candidates
        try:
            names = os.listdir(root)
        except OSError:
            return
        yield from sorted((int(n) for n in names if n.isdigit()), reverse=True)

    for pid in order():
        if pid in seen:
            continue
        seen.add(pid)
        if len(seen) > max_pids or clock() > deadline:
            return None, False
        folder = f"{root}/{pid}/fd"
        try:
            names = os.listdir(folder)
        except OSError:  # gone, or another user's process
            continue
        for name in names:
            try:
                if os.readlink(f"{folder}/{name}") == target:
                    return (pid, int(name)), True
            except (OSError, ValueError):
                continue
    return None, True


def ancestry(proc: Path, pid: int, max_depth: int = MAX_DEPTH) -> tuple[ProcKey, ...]:
    """The process and its ancestors as (pid, start ticks), up to pid 1 (or ``max_depth``)."""
    found: list[ProcKey] = []
    while pid > 0 and len(found) < max_depth:
        try:
            with open(proc / str(pid) / "stat", "rb") as handle:
                stat = parse_stat_line(pid, handle.read().decode("utf-8", "replace"), 100, 4096)
        except (OSError, ValueError, IndexError):
            break
        found.append(stat.key)
        pid = stat.ppid
    return tuple(found)


def still_owned(proc: Path, peer: Peer) -> bool:
    """Whether the process found still holds the socket at the descriptor found."""
    if peer.pid is None or peer.fd is None:
        return False
    try:
        return os.readlink(proc / str(peer.pid) / "fd" / str(peer.fd)) == f"socket:[{peer.inode}]"
    except OSError:
        return False


class PeerFinder:
    """Lookups with a per-connection cache; ``cached`` is cheap, ``lookup`` is bounded."""

    def __init__(self, proc_root: Path = Path("/proc"), *,
                 deadline_seconds: float = DEADLINE_SECONDS, max_pids: int = MAX_PIDS,
                 max_table_bytes: int = MAX_TABLE_BYTES, cache_size: int = CACHE_SIZE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.proc = proc_root
        self.deadline_seconds = deadline_seconds
        self.max_pids = max_pids
        self.max_table_bytes = max_table_bytes
        self.cache_size = cache_size
        self.clock = clock
        self._cache: OrderedDict[tuple[Endpoint, Endpoint], tuple[Peer, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.lookups = 0
        self.lookup_seconds_max = 0.0
        self._rest_until = float("-inf")

    def ready(self) -> bool:
        """Whether a lookup may start now (the duty cycle's rest is over)."""
        return self.clock() >= self._rest_until

    def cached(self, client: Endpoint, server: Endpoint) -> Peer | None:
        """The answer for this connection if one is known and still true."""
        with self._lock:
            entry = self._cache.get((client, server))
        if entry is None:
            return None
        peer, expires = entry
        # A socket is checked at its descriptor; "no owner" only ages out.
        fresh = still_owned(self.proc, peer) if peer.pid is not None else self.clock() < expires
        if not fresh:
            with self._lock:
                self._cache.pop((client, server), None)
            return None
        return peer

    def lookup(self, client: Endpoint, server: Endpoint, candidates: Iterable[int] = ()
               ) -> Peer:
        """Find the sending process (blocking, bounded); complete answers are cached."""
        started = self.clock()
        if started < self._rest_until:
            return Peer(False)  # queued behind a long lookup: the duty cycle says rest
        deadline = started + self.deadline_seconds
        found, complete = find_socket(self.proc, client, server, deadline,
                                      self.max_table_bytes, self.clock)
        peer = Peer(complete)
        if found is not None:
            inode, uid = found
            owner, complete = find_owner(self.proc, inode, candidates, deadline, self.max_pids,
                                         self.clock)
            if owner is None:
                peer = Peer(complete, inode, uid)
            else:
                pid, fd = owner
                peer = Peer(True, inode, uid, pid, fd, ancestry(self.proc, pid))
        ended = self.clock()
        elapsed = ended - started
        self._rest_until = ended + elapsed * (1.0 / MAX_DUTY - 1.0)
        with self._lock:
            self.lookups += 1
            self.lookup_seconds_max = max(self.lookup_seconds_max, elapsed)
            if peer.complete:
                ttl = float("inf") if peer.pid is not None else NO_OWNER_TTL_SECONDS
                self._cache[(client, server)] = (peer, self.clock() + ttl)
                self._cache.move_to_end((client, server))
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return peer

"""Evidence of what leaks, gathered at the edge for critical and killed reports.

The members of the tree, largest growth over the trend window first (pid, name, redacted
command line); ``smaps_rollup`` figures for the top few (read only here, past critical: it
takes the target's memory-map lock); a ``py-spy dump`` of Python members when py-spy is
installed (``pip install 'telemetryd[evidence]'``); a Node heap snapshot where the member
asked for one (``node_heap``). Each piece is bounded in time and size, and all of it by the
``seconds`` given. The daemon runs this off the tick (``evidence_worker``): reading another
process's smaps or command line takes its memory-map lock, and a snapshot takes seconds.
What could not be collected is listed with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from crash_reports.event.redact import redact_args
from daemon.runtime.reports import node_heap
from daemon.runtime.reports.node_heap import NodeHeap
from daemon.watch.proc.members import MemberGrowth

TOP_MEMBERS = 3
LISTED_MEMBERS = 20
CMDLINE_CHARS = 512
SMAPS_BYTES = 8192
PY_SPY_SECONDS = 2.0
PY_SPY_BYTES = 16 * 1024
DEADLINE_SECONDS = 3.0
EVIDENCE_SECONDS = DEADLINE_SECONDS + node_heap.HEAP_SECONDS
SMAPS_FIELDS = {"Pss": "pss_bytes", "Pss_Anon": "anon_bytes", "Pss_File": "file_bytes",
                "Pss_Shmem": "shmem_bytes", "Swap": "swap_bytes"}


@dataclass(frozen=True, slots=True)
class NotCollected:
    """One piece of evidence that is missing, and why."""

    what: str
    pid: int
    why: str


@dataclass
class LeakEvidence:
    """What a report says about which member grew."""

    members: list[dict[str, Any]] = field(default_factory=list)
    not_collected: list[NotCollected] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report's ``leak`` section."""
        return {"members": self.members,
                "not_collected": [{"what": n.what, "pid": n.pid, "why": n.why}
                                  for n in self.not_collected]}


def smaps_rollup(text: str) -> dict[str, int]:
    """The figures of a ``/proc/PID/smaps_rollup`` text, in bytes.

    >>> smaps_rollup("Rss: 10 kB\\nPss: 8 kB\\nPss_Anon: 6 kB\\nSwap: 0 kB\\n")
    {'pss_bytes': 8192, 'anon_bytes': 6144, 'swap_bytes': 0}
    """
    found = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in SMAPS_FIELDS:
            parts = rest.split()
            if parts and parts[0].isdigit():
                found[SMAPS_FIELDS[key]] = int(parts[0]) * 1024
    return found


def collect(members: Sequence[MemberGrowth], *, proc: Path = Path("/proc"),
            py_spy: str | None = None, monotonic: Callable[[], float] = time.monotonic,
            heap: NodeHeap | None = None, seconds: float = EVIDENCE_SECONDS) -> LeakEvidence:
    """Members largest growth first; smaps_rollup and py-spy dumps for the top ones.

    With ``heap`` (a tree of the daemon's), a heap snapshot of the top growing Node member
    if it asked for one. All within ``seconds``: smaps and py-spy within the first
    ``DEADLINE_SECONDS`` of it, the snapshot within what is left.
    """
    evidence = listed_only(members, None)
    started = monotonic()
    deadline = started + min(DEADLINE_SECONDS, seconds)
    py_spy = py_spy if py_spy is not None else shutil.which("py-spy")
    for index, (member, item) in enumerate(zip(members, evidence.members, strict=False)):
        item["cmdline"] = _cmdline(member.pid)
        if index >= TOP_MEMBERS:
            continue
        try:
            with open(proc / str(member.pid) / "smaps_rollup", "rb") as handle:
                item["smaps"] = smaps_rollup(handle.read(SMAPS_BYTES).decode(errors="replace"))
        except OSError as exc:
            evidence.not_collected.append(NotCollected(
                "smaps_rollup", member.pid, exc.strerror or type(exc).__name__))
        if member.name.startswith("python"):
            item["py_spy"] = _py_spy(py_spy, member.pid, deadline - monotonic(),
                                     evidence.not_collected)
    if heap is not None:
        left = min(node_heap.HEAP_SECONDS, started + seconds - monotonic())
        _node_heap(heap, evidence, proc, left)
    return evidence


def listed_only(members: Sequence[MemberGrowth], why: str | None) -> LeakEvidence:
    """The members as the tick knows them (no /proc read); ``why`` nothing more was gathered.

    >>> grown = MemberGrowth(7, "node", 300, 200, 60.0)
    >>> listed_only([grown], "evidence deadline reached").as_dict()["not_collected"]
    [{'what': 'evidence', 'pid': 7, 'why': 'evidence deadline reached'}]
    """
    evidence = LeakEvidence(members=[
        {"pid": m.pid, "name": m.name, "rss_bytes": m.rss_bytes,
         "growth_bytes": m.growth_bytes, "over_seconds": m.seen_seconds}
        for m in members[:LISTED_MEMBERS]])
    if why is not None and members:
        evidence.not_collected.append(NotCollected("evidence", members[0].pid, why))
    return evidence


def _node_heap(heap: NodeHeap, evidence: LeakEvidence, proc: Path, seconds: float) -> None:
    node = next((item for item in evidence.members if node_heap.is_node(item["name"])), None)
    if node is None:
        if heap.folder is not None and evidence.members:
            evidence.not_collected.append(NotCollected(
                "node_heap", evidence.members[0]["pid"], "no Node member in the tree"))
        return
    if heap.folder is None:
        evidence.not_collected.append(NotCollected("node_heap", node["pid"], heap.why_not))
        return
    if seconds <= 0:
        evidence.not_collected.append(NotCollected("node_heap", node["pid"],
                                                   "evidence deadline reached"))
        return
    try:
        taken = node_heap.take(heap.folder, node["pid"], seconds=seconds, proc=proc)
    except (node_heap.HeapSnapshotError, OSError) as exc:
        evidence.not_collected.append(NotCollected("node_heap", node["pid"], str(exc)))
        return
    node["heap_snapshot"] = {"path": str(taken.path), "size_bytes": taken.size_bytes}


def _cmdline(pid: int) -> str | None:
    try:
        return " ".join(redact_args(psutil.Process(pid).cmdline()))[:CMDLINE_CHARS]
    except psutil.Error:
        return None


def _py_spy(py_spy: str | None, pid: int, seconds_left: float,
            not_collected: list[NotCollected]) -> str | None:
    if not py_spy:
        not_collected.append(NotCollected(
            "py_spy", pid, "py-spy not installed (pip install 'telemetryd[evidence]')"))
        return None
    timeout = min(PY_SPY_SECONDS, seconds_left)
    if timeout <= 0:
        not_collected.append(NotCollected("py_spy", pid, "evidence deadline reached"))
        return None
    try:
        # --nonblocking: read the stack without pausing a process already in trouble.
        result = subprocess.run([py_spy, "dump", "--nonblocking", "--pid", str(pid)],
                                capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        not_collected.append(NotCollected("py_spy", pid, f"timed out after {timeout:.1f} s"))
        return None
    except OSError as exc:
        not_collected.append(NotCollected("py_spy", pid, exc.strerror or str(exc)))
        return None
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip()[:200]
        not_collected.append(NotCollected("py_spy", pid, reason or "py-spy failed"))
        return None
    return result.stdout[:PY_SPY_BYTES].decode(errors="replace")

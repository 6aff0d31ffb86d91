"""Leak evidence gathered off the tick: one worker thread, one job at a time, each with a deadline.

The tick hands over what it already knows (the members' growth, from memory) and goes on
sampling. The worker reads ``/proc``, runs py-spy and waits for a heap snapshot
(``evidence.collect``), each step bounded. A later tick writes the report with the evidence
once it is in; past the job's deadline (a worker stuck in a read that never returns, a full
queue) it writes the report with the members it knows and says what is missing. So no
evidence step can hold up a tick, and no report waits on evidence for ever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from crash_reports.common.worker import QueueWorker
from daemon.runtime.reports.evidence import EVIDENCE_SECONDS, LeakEvidence, collect, listed_only
from daemon.runtime.reports.node_heap import NodeHeap
from daemon.watch.proc.members import MemberGrowth

MARGIN_SECONDS = 2.0  # for the job's turn in the queue and its own overrun
JOB_SECONDS = EVIDENCE_SECONDS + MARGIN_SECONDS
QUEUE_SIZE = 8
Gather = Callable[[Sequence[MemberGrowth], NodeHeap | None, float], LeakEvidence]


def gather(members: Sequence[MemberGrowth], heap: NodeHeap | None,
           seconds: float) -> LeakEvidence:
    """The real gathering (``evidence.collect``)."""
    return collect(members, heap=heap, seconds=seconds)


@dataclass(eq=False)
class EvidenceJob:
    """Evidence for one report: pending until the worker is done or the deadline passes."""

    members: tuple[MemberGrowth, ...]
    heap: NodeHeap | None
    deadline: float
    done: threading.Event = field(default_factory=threading.Event)
    evidence: LeakEvidence | None = None

    def finish(self, evidence: LeakEvidence) -> None:
        """Called once, by whoever settles the job."""
        self.evidence = evidence
        self.done.set()

    def result(self, now: float, stopping: bool = False) -> LeakEvidence | None:
        """The evidence if gathered; past the deadline (or when ``stopping``), the members
        without it; None while it may still come."""
        if self.done.is_set() and self.evidence is not None:
            return self.evidence
        if stopping:
            return listed_only(self.members, "not gathered before the daemon stopped")
        if now < self.deadline:
            return None
        return listed_only(self.members, f"evidence deadline reached ({JOB_SECONDS:g} s)")


class EvidenceWorker:
    """The thread that gathers evidence, fed by a bounded queue; ``submit`` never blocks."""

    def __init__(self, gather_with: Gather = gather,
                 monotonic: Callable[[], float] = time.monotonic,
                 job_seconds: float = JOB_SECONDS, queue_size: int = QUEUE_SIZE) -> None:
        self._gather = gather_with
        self._monotonic = monotonic
        self._job_seconds = job_seconds
        self._worker = QueueWorker("telemetryd-evidence", self._run, queue_size)

    def submit(self, members: Sequence[MemberGrowth], heap: NodeHeap | None) -> EvidenceJob:
        """Start gathering; a full queue settles the job at once with the members only."""
        job = EvidenceJob(tuple(members), heap, self._monotonic() + self._job_seconds)
        if not self._worker.submit(job):
            job.finish(listed_only(job.members, "evidence worker busy"))
        return job

    def stop(self, timeout: float) -> None:
        """Ask the worker to end after its job, waiting at most ``timeout`` (daemon thread)."""
        self._worker.stop(timeout)

    def _run(self, job: EvidenceJob) -> None:
        left = job.deadline - self._monotonic()
        if left <= 0:
            job.finish(listed_only(job.members, "evidence deadline reached before its turn"))
            return
        try:
            evidence = self._gather(job.members, job.heap,
                                    min(EVIDENCE_SECONDS, max(0.0, left - MARGIN_SECONDS)))
        except Exception as exc:  # a failed gathering is told in the report, never raised
            evidence = listed_only(job.members, f"evidence failed: {exc!r}")
        job.finish(evidence)

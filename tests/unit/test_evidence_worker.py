"""Evidence off the tick: submit never blocks, a stuck gathering ends at its deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from daemon.runtime.reports.evidence import LeakEvidence
from daemon.runtime.reports.evidence_worker import EvidenceWorker
from daemon.runtime.reports.node_heap import NodeHeap
from daemon.watch.proc.members import MemberGrowth
from tests.support.waiting import wait_for

GROWN = (MemberGrowth(7, "node", 300 << 20, 200 << 20, 60.0),)


class StuckGathering:
    """Fault injection: a gathering that never returns until the test lets it go."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, members: Sequence[MemberGrowth], heap: NodeHeap | None,
                 seconds: float) -> LeakEvidence:
        self.calls += 1
        self.release.wait(60)
        return LeakEvidence(members=[{"pid": 7, "gathered": True}])


def test_a_stuck_gathering_yields_the_members_at_its_deadline() -> None:
    """While stuck: pending, submit returns at once; past the deadline: members, and why."""
    stuck = StuckGathering()
    worker = EvidenceWorker(stuck, job_seconds=30.0, queue_size=1)
    try:
        first = worker.submit(GROWN, None)
        wait_for(lambda: stuck.calls == 1, message="the worker on the first job")
        started = time.monotonic()
        second = worker.submit(GROWN, None)  # queued behind the stuck one
        third = worker.submit(GROWN, None)  # the queue is full: settled at once
        assert time.monotonic() - started < 1.0
        assert first.result(time.monotonic()) is None
        busy = third.result(time.monotonic())
        assert busy is not None and busy.not_collected[0].why == "evidence worker busy"
        late = first.result(first.deadline + 0.1)
        assert late is not None and late.members[0]["pid"] == 7
        assert "deadline" in late.not_collected[0].why
        stopped = second.result(time.monotonic(), stopping=True)
        assert stopped is not None and "stopped" in stopped.not_collected[0].why
    finally:
        stuck.release.set()
        worker.stop(10.0)
    assert first.done.is_set() and first.evidence is not None
    assert first.evidence.members == [{"pid": 7, "gathered": True}]

"""The daemon's own failures are spooled as Sentry events and the daemon keeps sampling."""

from __future__ import annotations

import threading
from collections.abc import Set as AbstractSet
from pathlib import Path

import psutil
import pytest
from sentry_sdk.envelope import Envelope

from daemon.config.parse import parse_config_text
from daemon.runtime.service import Service
from daemon.watch.proc.proctable import LinuxProcTable, ProcStat
from tests.support.waiting import wait_for


class FailingOnceTable(LinuxProcTable):
    """A real /proc reader that fails on its second scan (fault injection)."""

    def __init__(self) -> None:
        super().__init__()
        self.scans = 0

    def scan(self, keep_fresh: AbstractSet[int] | None = None) -> dict[int, ProcStat]:
        self.scans += 1
        if self.scans == 2:
            raise RuntimeError("injected scan failure")
        return super().scan(keep_fresh)


def make_service(tmp_path: Path, table: LinuxProcTable) -> Service:
    config = parse_config_text(
        f'[daemon]\ninterval = 0.1\nstate_dir = "{tmp_path}"\n[[watch]]\nname = "init"\npid = 1\n',
        "<test>", {}, psutil.virtual_memory().total,
    )
    return Service(config, process_table=table)


def spooled_events(service: Service) -> list[dict]:
    assert service.running is not None
    events = []
    for entry in service.running.spool.pending():
        event = Envelope.deserialize(service.running.spool.read(entry.id)).get_event()
        if event is not None:
            events.append(event)
    return events


def test_scheduler_job_error_is_spooled_and_ticks_continue(tmp_path):
    """A tick that raises becomes a spooled error event; the next ticks still run."""
    table = FailingOnceTable()
    service = make_service(tmp_path, table)
    service.startup()
    try:
        wait_for(lambda: service.tick_count >= 3, message="ticks after the failure")
        events = wait_for(lambda: spooled_events(service), message="spooled error event")
    finally:
        service.shutdown()
    event = events[0]
    assert event["tags"]["component"] == "scheduler"
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["exception"]["values"][-1]["value"] == "injected scan failure"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_crashed_thread_is_spooled(tmp_path):
    """An unhandled exception in any daemon thread is captured into the spool."""
    service = make_service(tmp_path, LinuxProcTable())
    service.startup()
    try:
        def boom() -> None:
            raise ValueError("thread went wrong")

        thread = threading.Thread(target=boom, name="worker-x")
        thread.start()
        thread.join()
        events = wait_for(lambda: spooled_events(service), message="spooled thread crash")
        wait_for(lambda: service.tick_count >= 2, message="ticks go on after the crash")
    finally:
        service.shutdown()
    assert events[0]["tags"]["component"] == "thread:worker-x"
    assert events[0]["exception"]["values"][-1]["value"] == "thread went wrong"


class AlwaysFailingTable(LinuxProcTable):
    """A real /proc reader that fails every scan (fault injection)."""

    scans = 0

    def scan(self, keep_fresh: AbstractSet[int] | None = None) -> dict[int, ProcStat]:
        AlwaysFailingTable.scans += 1
        raise OSError("injected: /proc unreadable")


def test_a_failure_repeating_every_tick_is_spooled_once(tmp_path):
    """The same error on every tick becomes one event, so it cannot push reports out."""
    service = make_service(tmp_path, AlwaysFailingTable())
    service.startup()
    try:
        wait_for(lambda: len(spooled_events(service)) >= 1, message="first error spooled")
        seen = AlwaysFailingTable.scans
        wait_for(lambda: AlwaysFailingTable.scans >= seen + 5, message="five more failed ticks")
        errors = spooled_events(service)
    finally:
        service.shutdown()
    assert len(errors) == 1
    assert errors[0]["exception"]["values"][-1]["value"] == "injected: /proc unreadable"


def test_unhandled_exception_in_the_main_thread_is_spooled(tmp_path):
    """sys.excepthook, as installed by the daemon, spools an uncaught main-thread exception."""
    import sys

    service = make_service(tmp_path, LinuxProcTable())
    service.startup()
    try:
        try:
            raise LookupError("main thread gave up")
        except LookupError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        events = wait_for(lambda: spooled_events(service), message="spooled main crash")
    finally:
        service.shutdown()
    assert events[0]["tags"]["component"] == "main"
    assert events[0]["exception"]["values"][-1]["type"] == "LookupError"

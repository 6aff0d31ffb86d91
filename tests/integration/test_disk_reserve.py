"""Reports have room before telemetry: on a real small tmpfs, an OTLP flood that would fill
the disk stops at the reserve (counted, logged once), and the crash report that follows is
written, not held in memory and lost at stop (``report.lost``)."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from crash_reports.common.reserve import DiskReserve
from daemon.agents.decoding.counters import OtlpCounter
from daemon.config.parse import parse_config_text
from daemon.config.schema import SpoolSettings
from daemon.runtime.service import Service
from tests.integration.agents.conftest import post
from tests.integration.agents.test_events_db_size import big_request
from tests.integration.test_disk_full import sleeper, small_tmpfs
from tests.support.waiting import wait_for

RESERVE = SpoolSettings.disk_reserve_bytes  # the default: the test uses no new key
MARGIN = 4 * 1024 * 1024  # free space above the reserve when the flood starts
MAX_REQUESTS = 80  # about 1 MiB of stored events each: far more than the tmpfs holds


def free_bytes(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def leave_free(mnt: Path, free: int) -> None:
    """One filler file so that about ``free`` bytes are left on the filesystem."""
    with open(mnt / "filler", "wb") as handle:
        handle.truncate(0)
        remaining = free_bytes(mnt) - free
        block = b"\0" * (1 << 20)
        while remaining > 0:
            remaining -= handle.write(block[:remaining])


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_otlp_flood_stops_at_the_reserve_and_the_next_report_is_written(tmp_path: Path
                                                                        ) -> None:
    """64 MiB tmpfs, free space 4 MiB above the default reserve, a flood of OTLP metrics:
    the event store stops writing at the reserve (``records_dropped.disk_reserve``, one
    ``disk.reserve_reached`` line for it), a watch then crosses critical, and its report
    lands in the spool; nothing is held, nothing lost at stop."""
    child = sleeper()
    try:
        with small_tmpfs(tmp_path / "mnt", size="64m") as mnt:
            state = mnt / "state"
            pidfile = tmp_path / "agent.pid"
            text = (f'[daemon]\ninterval = 0.2\nstate_dir = "{state}"\n'
                    '[metrics]\nenabled = false\n'
                    '[otlp]\nlisten = "127.0.0.1:0"\ntrust = "any"\n'
                    'max_series_per_metric = 1000000\nmax_series = 1000000\n'
                    f'[[watch]]\nname = "agent"\npidfile = "{pidfile}"\n'
                    'rss_warning = "512KB"\nrss_critical = "1MB"\nsustained = 1\n')
            config = parse_config_text(text, "<t>", {}, psutil.virtual_memory().total)
            service = Service(config)
            with capture_logs() as logs:
                service.startup()
                try:
                    running = service.running
                    assert running is not None
                    telemetry = running.agents.telemetry
                    leave_free(mnt, RESERVE + MARGIN)
                    for seed in range(MAX_REQUESTS):
                        post(telemetry.receiver.port, "/v1/metrics", big_request(seed))
                        assert telemetry.ingestor.flush(60.0)
                        counters = telemetry.ingestor.stats()
                        if counters.get(OtlpCounter.POINTS_DROPPED, ("disk_reserve",)) or \
                                counters.get(OtlpCounter.WRITE_ERRORS):
                            break
                    pidfile.write_text(f"{child.pid}\n")
                    wait_for(lambda: running.spool.pending_count() >= 1 or
                             running.transport.held_count >= 1, timeout=60,
                             message="the report written or held")
                finally:
                    service.shutdown()
            counters = telemetry.ingestor.stats()
            left = free_bytes(mnt)
    finally:
        child.kill()
        child.wait()
    lost = [e for e in logs if e["event"] == "report.lost"]
    assert lost == [], (lost, counters, left)
    assert counters.get(OtlpCounter.POINTS_DROPPED, ("disk_reserve",)) > 0, counters
    assert counters.get("write_errors", 0) == 0, counters
    reached = [e for e in logs if e["event"] == "disk.reserve_reached" and
               e["writer"] == "events"]
    assert len(reached) == 1, reached
    assert left > RESERVE // 2, left  # the report took little of what was kept for it


def test_reserve_refuses_counts_and_logs_once_per_episode(tmp_path: Path) -> None:
    """Refused while free space is under reserve + write (each refusal counted, one line),
    allowed again when room returns (one line), for each writer on its own."""
    free = [100]

    def statvfs(_path: Path) -> os.statvfs_result:
        return os.statvfs_result((4096, 1, 0, 0, free[0], 0, 0, 0, 0, 255))  # bavail, frsize 1

    reserve = DiskReserve(tmp_path, lambda: 50, statvfs=statvfs)
    with capture_logs() as logs:
        assert reserve.allows("events", 40)
        assert not reserve.allows("events", 60)
        assert not reserve.allows("events", 60)
        assert reserve.allows("stats")
        free[0] = 200
        assert reserve.allows("events", 60)
    assert reserve.refused() == {"events": 2}
    assert [(e["event"], e["writer"]) for e in logs] == [
        ("disk.reserve_reached", "events"), ("disk.reserve_released", "events")]

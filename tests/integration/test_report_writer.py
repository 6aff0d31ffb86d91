"""The report writer learns what the spool stored from the write itself."""

from __future__ import annotations

import errno
from pathlib import Path

import psutil
import pytest

from crash_reports.event.evidence import Evidence
from crash_reports.event.system_facts import SystemFacts
from crash_reports.spool.store import Spool, StoredReport
from crash_reports.spool.transport import SpoolTransport
from daemon.config.parse import parse_config_text
from daemon.runtime.reports.reporting import ReportWriter
from daemon.runtime.running import make_sentry_client
from daemon.watch.monitor import Monitor, ReportRequest
from daemon.watch.proc.sampler import TickSample, TreeSample

MIB = 1024**2
CONFIG = ('[[watch]]\nname = "agent"\nprocess_name = "agent"\nrss_warning = "100MiB"\n'
          'rss_critical = "200MiB"\nsustained = 1\n')


def critical_request() -> ReportRequest:
    """An rss_critical request for a (made-up) tree, as the monitor makes it."""
    config = parse_config_text(CONFIG, "<t>", {}, psutil.virtual_memory().total)
    monitor = Monitor(config.watches, 10, 60.0)
    tree = TreeSample(watch="agent", pid=4242, key=(4242, 1), name="agent", create_time=1.0,
                      rss_bytes=250 * MIB, cpu_percent=0.0, root_rss_bytes=250 * MIB,
                      root_cpu_percent=0.0, members=1)
    (request,) = [a for a in monitor.observe(TickSample(1e9, 5.0, {"agent": [tree]}, 1))
                  if isinstance(a, ReportRequest)]
    return request


def writer_for(spool: Spool, transport: SpoolTransport) -> ReportWriter:
    config = parse_config_text(CONFIG, "<t>", {}, psutil.virtual_memory().total)
    return ReportWriter(make_sentry_client(transport, config), transport, SystemFacts(), "test")


def test_a_written_report_comes_back_with_its_id_and_pending_file(tmp_path: Path) -> None:
    """The write returns the stored id and the very file that holds it."""
    spool = Spool(tmp_path / "spool")
    transport = SpoolTransport(spool)
    stored = writer_for(spool, transport).write(critical_request(), Evidence())
    assert stored is not None
    (entry,) = spool.pending()
    assert (stored.id, stored.path) == (entry.id, spool.pending_dir / entry.name)
    assert stored.path.is_file()
    assert transport.take_stored(stored.id) is None  # handed out once


def test_a_report_delivered_before_the_writer_looks_still_counts_as_written(
    tmp_path: Path,
) -> None:
    """Delivered at once (a flush racing the write): written, not 'deferred'."""
    spool = Spool(tmp_path / "spool")
    transport = SpoolTransport(spool, on_put=lambda report_id: spool.mark_delivered(report_id))
    stored = writer_for(spool, transport).write(critical_request(), Evidence())
    assert stored is not None and spool.pending() == []


def test_a_failed_write_is_none_and_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk: nothing stored, the envelope held in memory for a retry."""
    spool = Spool(tmp_path / "spool")
    transport = SpoolTransport(spool)

    def full(_: bytes) -> StoredReport:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "store", full)
    assert writer_for(spool, transport).write(critical_request(), Evidence()) is None
    assert transport.held_count == 1

"""The ingest writer: batching into the real store, counted write failures, periodic retention."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.agents.decoding.counters import OtlpCounter
from daemon.agents.decoding.records import Agent, ApiRequest, Record
from daemon.agents.store.event_store import EventStore
from daemon.agents.store.ingest import Ingestor
from daemon.agents.store.queries import StoreReader
from daemon.web.http.wire import PayloadError, decompress

NOW = 1_800_000_000.0
BOT = Agent("bot", None, None, 1)


class FailingStore(EventStore):
    """A store whose disk is full (fault injection)."""

    def append(self, records: Sequence[Record]) -> int:
        """Fail like SQLite does on a full disk."""
        raise OSError("database or disk is full")


def test_writer_stores_everything_submitted(tmp_path: Path) -> None:
    """Many small submissions end up in the store, in order, counted as written."""
    store = EventStore(tmp_path / "s.sqlite3", 30.0, 1 << 30)
    ingestor = Ingestor(store, queue_size=1000, batch_max_records=7)
    ingestor.start()
    for i in range(50):
        assert ingestor.submit([ApiRequest(NOW + i, BOT, None, "m", 1, float(i))], 1)
    assert ingestor.flush(10.0)
    ingestor.stop()
    store.close()
    events = StoreReader(tmp_path / "s.sqlite3").events("bot/pid-1")
    assert [e.data["duration_ms"] for e in events] == [float(i) for i in range(50)]
    assert ingestor.stats().get(OtlpCounter.EVENTS_WRITTEN) == 50


def test_write_failures_are_counted_and_logged_and_the_writer_goes_on(tmp_path: Path) -> None:
    """A failing append drops its batch visibly (counter + log), and later batches still run."""
    store = FailingStore(tmp_path / "s.sqlite3", 30.0, 1 << 30)
    ingestor = Ingestor(store, queue_size=10)
    ingestor.start()
    with capture_logs() as logs:
        assert ingestor.submit([ApiRequest(NOW, BOT, None, "m", 1, 1.0)] * 3, 3)
        assert ingestor.flush(10.0)
        assert ingestor.submit([ApiRequest(NOW, BOT, None, "m", 1, 1.0)], 1)
        assert ingestor.flush(10.0)
    ingestor.stop()
    stats = ingestor.stats()
    assert (stats.get(OtlpCounter.WRITE_ERRORS),
            stats.get(OtlpCounter.POINTS_DROPPED, ("write_error",))) == (2, 4)
    assert logs[0] == {
        "component": "agents.ingest",
        "event": "agents.store.write_failed",
        "error": "OSError",
        "records": 3,
        "log_level": "error",
    }


def test_retention_runs_on_the_writer_clock(tmp_path: Path) -> None:
    """When the clock passes the retention interval, old events are deleted by the writer."""
    now = [NOW]
    store = EventStore(tmp_path / "s.sqlite3", retention_days=1.0, retention_bytes=1 << 30)
    store.append([ApiRequest(NOW - 5 * 86400, BOT, None, "m", 1, 1.0)])
    ingestor = Ingestor(store, 10, clock=lambda: now[0], retention_interval_seconds=60.0)
    ingestor.start()
    now[0] = NOW + 61
    with capture_logs() as logs:
        assert ingestor.submit([ApiRequest(NOW, BOT, None, "m", 1, 1.0)], 1)
        assert ingestor.flush(10.0)
    ingestor.stop()
    store.close()
    assert [e.ts for e in StoreReader(tmp_path / "s.sqlite3").events("bot/pid-1")] == [NOW]
    assert any(e["event"] == "agents.store.retention" and e["deleted_events"] == 1 for e in logs)


def test_decompress_handles_deflate_and_refuses_broken_gzip() -> None:
    """deflate bodies inflate; a cut gzip stream is a 400, garbage a 400."""
    assert decompress(zlib.compress(b"hello"), "deflate", 100) == b"hello"
    with pytest.raises(PayloadError) as cut:
        decompress(gzip.compress(b"x" * 1000)[:-10], "gzip", 10_000)
    assert cut.value.status == 400
    with pytest.raises(PayloadError) as garbage:
        decompress(b"not gzip at all", "gzip", 10_000)
    assert garbage.value.status == 400


def test_the_queue_is_bounded_by_records_not_only_requests(tmp_path: Path) -> None:
    """Past max_queued_records a request is refused (429, counted); once written, room is back."""
    store = EventStore(tmp_path / "s.sqlite3", 30.0, 1 << 30)
    ingestor = Ingestor(store, queue_size=1000, max_queued_records=1000)
    big = [ApiRequest(NOW, BOT, None, "m", 1, 1.0)] * 1500
    assert ingestor.submit(big, 1500)  # an empty queue takes any request
    assert not ingestor.submit(big[:10], 10)
    assert ingestor.stats().get(OtlpCounter.POINTS_DROPPED, ("queue_full",)) == 10
    ingestor.start()
    assert ingestor.flush(30.0)
    assert ingestor.submit(big[:900], 900)
    assert ingestor.flush(30.0)
    ingestor.stop()
    store.close()
    assert ingestor.stats().get(OtlpCounter.EVENTS_WRITTEN) == 2400

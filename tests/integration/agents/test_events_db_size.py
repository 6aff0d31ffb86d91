"""``events.db`` gives deleted space back to the filesystem and stays within retention_bytes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from structlog.testing import capture_logs

from daemon.agents.decoding.counters import OtlpCounter
from daemon.agents.decoding.records import Agent, GenericPoint
from daemon.agents.store.event_store import EventStore
from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.integration.agents.conftest import post
from tests.support.agents import loopback_otlp
from tests.support.waiting import wait_for
from tests.unit.agents.payloads import metrics_request, sum_metric

BOUND = 2 * 1024 * 1024


def on_disk(path: Path) -> int:
    """Bytes the store takes on disk: the file and its write-ahead log."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def big_request(seed: int) -> bytes:
    """2000 points with wide attributes from one agent (about 1 MiB of stored events)."""
    now = time.time_ns()
    points = [({"k": f"{i % 500}", "pad": f"{seed}-{i}-" + "x" * 300}, 1, now - 10**9, now)
              for i in range(2000)]
    metric = sum_metric("flood.metric", points)
    return bytes(metrics_request({"service.name": "flooder"}, [metric]).SerializeToString())


def test_a_flood_past_retention_bytes_comes_back_under_the_bound_on_disk(tmp_path: Path) -> None:
    """Ten times retention_bytes sent through the receiver: the file on disk ends under it."""
    path = tmp_path / "events.db"
    settings = loopback_otlp(retention_bytes=BOUND, retention_check_seconds=1.0,
                             max_series_per_metric=1_000_000, max_series=1_000_000,
                             max_queued_bytes=1 << 30)  # the store's bound, not the queue's
    telemetry = AgentTelemetry(settings, path)
    telemetry.start()
    try:
        peak = 0
        for seed in range(25):
            assert post(telemetry.receiver.port, "/v1/metrics", big_request(seed)).status == 200
            peak = max(peak, on_disk(path))
        assert telemetry.ingestor.flush(60.0)
        written = telemetry.ingestor.stats().get(OtlpCounter.EVENTS_WRITTEN)
        assert written == 50_000, written
        wait_for(lambda: on_disk(path) <= BOUND, 60.0,
                 message=f"events.db on disk under {BOUND} bytes (peak {peak})")
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] > 0  # newest kept
    finally:
        telemetry.stop()
    assert on_disk(path) <= BOUND


def test_a_file_made_without_auto_vacuum_is_converted_once_at_open(tmp_path: Path) -> None:
    """An older events.db (auto_vacuum off) is rewritten once with VACUUM, then shrinks."""
    path = tmp_path / "events.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE filler (x TEXT)")
    old.executemany("INSERT INTO filler VALUES (?)", [("y" * 1000,)] * 2000)
    old.execute("DROP TABLE filler")  # 2 MB of free pages the old file never gives back
    old.commit()
    old.close()
    before = path.stat().st_size
    with capture_logs() as logs:
        store = EventStore(path, 30.0, 1 << 30)
    store.append([GenericPoint(time.time(), Agent("a", None, None, None), None, "m", "sum",
                               1.0, 0, ())])
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert [e["event"] for e in logs if e["event"] == "agents.store.vacuumed"]
    assert path.stat().st_size < before / 4
    with capture_logs() as logs:
        EventStore(path, 30.0, 1 << 30).close()
    assert not [e for e in logs if e["event"] == "agents.store.vacuumed"]  # only once

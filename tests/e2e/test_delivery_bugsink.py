"""End to end: a report written while Sentry is unreachable reaches a real Bugsink after restart."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from daemon.stats.events import stats_event_id
from daemon.stats.figures import Counter, PeriodKey, hour_start
from daemon.stats.store import StatsStore
from tests.e2e.test_watchdog import memory_watch, pending_envelopes, write_config
from tests.support.agents import Agent
from tests.support.bugsink import BugsinkProject, BugsinkServer, normalize_event_id
from tests.support.daemon_proc import DaemonProcess, cli
from tests.support.waiting import wait_for

pytestmark = pytest.mark.bugsink


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_dsn(config: Path, dsn: str, flush_interval: int = 2) -> None:
    """Point an existing config at a DSN."""
    text = config.read_text()
    head, _, watches = text.partition("[otlp]")
    head = head.split("[sentry]")[0]
    config.write_text(
        f'{head}[sentry]\ndsn = "{dsn}"\nflush_interval = {flush_interval}\ntimeout = 5\n\n'
        f"[otlp]{watches}"
    )


def test_report_written_offline_is_delivered_to_bugsink_after_restart(
    tmp_path: Path, bugsink_server: BugsinkServer, bugsink_project: BugsinkProject
) -> None:
    """Critical while no DSN answers, stop, start with Bugsink's DSN: the report is in Bugsink."""
    with Agent() as agent:
        config = write_config(tmp_path, memory_watch(agent, 30, 60))
        with_dsn(config, f"http://deadbeef@127.0.0.1:{closed_loopback_port()}/1")
        offline = DaemonProcess(config, tmp_path / "offline.jsonl")
        try:
            offline.wait_event("process.seen", pid=agent.pid)
            agent.command("grow 90")
            written = offline.wait_event("report.written", pid=agent.pid)
            outage = offline.wait_event("flush.outage")
            assert "refused" in outage["reason"].lower()
        finally:
            assert offline.stop() == 0
    # Nothing left the machine, and the key never reached the log.
    assert [e.get_event()["event_id"] for e in pending_envelopes(tmp_path / "state")] == [
        written["id"]
    ]
    assert "deadbeef" not in (tmp_path / "offline.jsonl").read_text()

    # An earlier run's closed hour, persisted but never shipped, goes out on this start too.
    earlier = time.time() - 2 * 3600
    store = StatsStore.open(tmp_path / "state" / "stats.db")
    store.record_sample("leaky", earlier, 123 * 1024 * 1024, 42.0)
    store.incr("leaky", Counter.WARNINGS, earlier)
    store.close()
    stats_id = stats_event_id(socket.gethostname(), PeriodKey("leaky", hour_start(earlier)))

    with_dsn(config, bugsink_project.dsn)
    online = DaemonProcess(config, tmp_path / "online.jsonl")
    try:
        online.wait_event("flush.done", timeout=60)
        wait_for(lambda: not pending_envelopes(tmp_path / "state"), timeout=60,
                 message="spool drained")
        stored = wait_for(lambda: bugsink_server.lookup_event(written["id"], bugsink_project.id),
                          timeout=30, message="event in Bugsink")
        stats_stored = wait_for(
            lambda: bugsink_server.lookup_event(stats_id, bugsink_project.id), timeout=30,
            message="stats event in Bugsink")
        status = json.loads(cli("--config", str(config), "status", "--json").stdout)
    finally:
        assert online.stop() == 0
    assert normalize_event_id(stored["event_id"]) == written["id"]
    data = stored["data"]
    assert data["message"] == written["title"] or data.get("logentry", {}).get(
        "message") == written["title"]
    tags = data["tags"] if isinstance(data["tags"], dict) else dict(data["tags"])
    assert tags["watch"] == "leaky" and tags["kind"] == "rss_critical"
    assert data["contexts"]["process"]["pid"] == agent.pid
    assert data["contexts"]["thresholds"]["rss_critical_bytes"] > 0
    assert data["fingerprint"] == ["telemetryd", "leaky", "rss_critical"]
    stats_data = stats_stored["data"]
    assert stats_data["level"] == "info"
    assert stats_data["fingerprint"] == ["telemetryd-stats", socket.gethostname()]
    figures = stats_data["contexts"]["telemetryd_stats"]
    assert figures["rss_max_bytes"] == 123 * 1024 * 1024 and figures["warnings"] == 1
    # The local copy is remembered as delivered, and status shows the host, never the key.
    listing = json.loads(cli("--config", str(config), "reports", "list", "--json").stdout)
    assert (written["id"], "delivered") in [(r["id"], r["state"]) for r in listing]
    assert status["flush"]["delivered_total"] >= 1
    key = bugsink_project.dsn.split("//")[1].split("@")[0]
    assert key not in json.dumps(status)
    assert key not in (tmp_path / "online.jsonl").read_text()

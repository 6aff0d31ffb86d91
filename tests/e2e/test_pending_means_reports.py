"""With a DSN nobody answers, "pending" means crash reports everywhere; stats summaries
waiting for Sentry are a figure of their own (issue 15, "Reports nobody should get")."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from daemon.stats.figures import Counter
from daemon.stats.store import StatsStore
from tests.e2e.test_delivery_bugsink import closed_loopback_port, with_dsn
from tests.e2e.test_watchdog import memory_watch, write_config
from tests.support.agents import Agent
from tests.support.daemon_proc import DaemonProcess, cli
from tests.support.views import get, listener_url
from tests.support.waiting import wait_for


def test_status_list_page_and_metrics_agree_on_pending_crash_reports(tmp_path: Path) -> None:
    """One crash report and the stats of a closed hour wait (Sentry unreachable): status,
    status --json, reports list, /api/status, the page and /metrics all say 1 pending, and
    the stats summaries are shown apart, never added to it."""
    with Agent() as agent:
        config = write_config(tmp_path, memory_watch(agent, 30, 60))
        with_dsn(config, f"http://deadbeef@127.0.0.1:{closed_loopback_port()}/1")
        # An earlier run's closed hour, never shipped: this start puts it in the spool.
        earlier = time.time() - 2 * 3600
        store = StatsStore.open(tmp_path / "state" / "stats.db")
        store.record_sample("leaky", earlier, 123 * 1024 * 1024, 42.0)
        store.incr("leaky", Counter.WARNINGS, earlier)
        store.close()
        daemon = DaemonProcess(config, tmp_path / "log.jsonl")
        try:
            daemon.wait_event("stats.queued")
            daemon.wait_event("process.seen", pid=agent.pid)
            agent.command("grow 90")
            written = daemon.wait_event("report.written", pid=agent.pid)
            daemon.wait_event("flush.outage")

            def published() -> dict | None:
                doc = json.loads(cli("--config", str(config), "status", "--json").stdout)
                reports = doc["reports"]
                return doc if reports["pending"] == 1 and reports["stats_waiting"] else None

            status = wait_for(published, timeout=60, message="report and stats published")
            stats_waiting = status["reports"]["stats_waiting"]
            text = cli("--config", str(config), "status").stdout
            listing = json.loads(cli("--config", str(config), "reports", "list", "--json").stdout)
            everything = json.loads(
                cli("--config", str(config), "reports", "list", "--json", "--all").stdout)
            human = cli("--config", str(config), "reports", "list").stdout
            base = listener_url(config)
            api = json.loads(get(base + "/api/status"))
            page = get(base + "/").decode()
            metrics = get(base + "/metrics").decode()
        finally:
            assert daemon.stop() == 0
    assert stats_waiting >= 1
    # status: the crash report alone is pending; the stats summaries are their own figure.
    assert re.search(r"pending=1\b", text) and f"stats_waiting={stats_waiting}" in text, text
    # reports list: the one crash report, pending; --all shows the stats envelopes too.
    assert [(e["id"], e["state"]) for e in listing] == [(written["id"], "pending")]
    assert len([e for e in everything if e["state"] == "pending"]) == 1 + stats_waiting
    assert f"stats waiting: {stats_waiting}" in human
    # The page's JSON and HTML, and /metrics, agree.
    assert api["daemon"]["reports_pending"] == 1
    assert api["daemon"]["stats_waiting"] == stats_waiting
    assert [(r["id"], r["state"]) for r in api["reports"]] == [(written["id"], "pending")]
    assert "1 crash report(s) pending" in page and f"stats waiting: {stats_waiting}" in page
    assert re.search(r"^telemetryd_reports_pending 1(\.0)?$", metrics, re.M), metrics
    assert re.search(rf"^telemetryd_stats_waiting {stats_waiting}(\.0)?$", metrics, re.M)

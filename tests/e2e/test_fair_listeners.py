"""The real daemon's listeners against a web page and against clients that starve them.

DNS rebinding (``Host: rebind.attacker.example``) and cross-origin requests reach nothing;
under connection churn and slow bodies a well-behaved exporter still gets at least half of
its exports accepted. Attacks run in a child process (tests/support/listener_attacks.py);
the exporter here uses a fresh connection per export and a 10 s timeout, as OTLP exporters
do.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_tick_under_flood import ticks
from tests.e2e.test_tick_under_other_floods import listen_port
from tests.e2e.test_watchdog import write_config
from tests.support.cdp import Browser
from tests.support.daemon_proc import DaemonProcess
from tests.support.listener_attacks import Attack, exchange, well_behaved
from tests.support.waiting import wait_for
from tests.unit.agents.payloads import claude_code_metrics, claude_resource

pytestmark = pytest.mark.slow
REBIND = "rebind.attacker.example"


@dataclass
class Running:
    """The daemon and its two listeners' ports."""

    daemon: DaemonProcess
    otlp: int
    metrics: int


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """``telemetryd run`` with both listeners on loopback, default limits."""
    watch = f'name = "self"\npid = {os.getpid()}\nrss_warning = "100GiB"\nrss_critical = "200GiB"'
    config = write_config(tmp_path, watch, interval=0.25)
    state = tmp_path / "state"
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: ticks(state), message="first tick")
        yield Running(daemon, listen_port(state, "otlp"), listen_port(state, "metrics"))
    finally:
        daemon.stop()


def export(agent: str, cost_usd: float) -> bytes:
    """A Claude Code export for ``agent`` reporting ``cost_usd``."""
    request = claude_code_metrics(claude_resource(**{"service.name": agent}), f"s-{agent}",
                                  "claude-haiku-4-5", {"input": 10}, cost_usd, time.time_ns())
    return bytes(request.SerializeToString())


def request(port: int, method: str, path: str, host: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request with the given Host header: status and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def agents_on_page(running: Running) -> dict[str, float]:
    """Today's cost per agent, as the status page's API shows it."""
    status, body = request(running.metrics, "GET", "/api/status", f"127.0.0.1:{running.metrics}")
    assert status == 200
    return {a["agent"]: a["cost_today_usd"] for a in json.loads(body)["agents"]}


def test_a_rebinding_page_reaches_nothing(running: Running) -> None:
    """Host: rebind.attacker.example: /api/status, /metrics and a POST of 1000 USD to
    /v1/metrics are all refused (421); the POST is never counted."""
    for port, path in ((running.metrics, "/api/status"), (running.metrics, "/metrics"),
                       (running.metrics, "/")):
        status, body = request(port, "GET", path, f"{REBIND}:{port}")
        assert status == 421, path
        assert b"pid" not in body and b"telemetryd_" not in body
    status, _ = request(running.otlp, "POST", "/v1/metrics", f"{REBIND}:{running.otlp}",
                        export("rebound-agent", 1000.0),
                        {"Content-Type": "application/x-protobuf"})
    assert status == 421
    # A loopback export sent after it goes through the same queue: once it shows, the
    # refused one would have shown too.
    status, _ = request(running.otlp, "POST", "/v1/metrics", f"127.0.0.1:{running.otlp}",
                        export("loopback-agent", 0.25),
                        {"Content-Type": "application/x-protobuf"})
    assert status == 200
    seen = wait_for(lambda: agents_on_page(running).get("loopback-agent") and
                    agents_on_page(running), timeout=30, message="the loopback export shown")
    assert "rebound-agent" not in seen
    assert sum(seen.values()) < 1.0


def test_a_cross_origin_page_reaches_nothing(running: Running) -> None:
    """A request carrying another site's Origin: 403 on the API, the scrape and the receiver;
    the listener's own origin is served."""
    evil = {"Origin": "http://evil.example"}
    own_metrics = f"127.0.0.1:{running.metrics}"
    assert request(running.metrics, "GET", "/api/status", own_metrics, headers=evil)[0] == 403
    assert request(running.metrics, "GET", "/metrics", own_metrics, headers=evil)[0] == 403
    status, _ = request(running.otlp, "POST", "/v1/metrics", f"127.0.0.1:{running.otlp}",
                        export("cross-agent", 1000.0),
                        {"Content-Type": "application/x-protobuf", **evil})
    assert status == 403
    own = {"Origin": f"http://{own_metrics}"}
    assert request(running.metrics, "GET", "/api/status", own_metrics, headers=own)[0] == 200


def exporter(port: int) -> int:
    """One well-behaved export: its status (0: no answer within 10 s)."""
    return exchange(port, "POST", "/v1/metrics", export("well-behaved", 0.01),
                    {"Content-Type": "application/x-protobuf"})


def test_connection_churn_does_not_keep_exports_out(running: Running) -> None:
    """8 threads opening connections back to back, each held 2 s: at least half of a
    well-behaved client's exports are accepted."""
    with Attack("churn", running.otlp, threads=8, hold_seconds=2.0) as attack:
        wait_for(lambda: attack.progress >= 5000, timeout=60, message="churn under way")
        tally = well_behaved(lambda: exporter(running.otlp), requests=10, every_seconds=0.25)
    assert tally.ok >= 5, f"exports under connection churn: {tally}"
    # What was dropped is counted, by reason, in the daemon's own metrics.
    wait_for(lambda: dropped(running, "shed") > 0, message="shed connections in /metrics")


def test_half_written_requests_dropped_back_to_back_do_not_stall_the_listener(
        running: Running) -> None:
    """4 threads writing half a request head and closing: the listener keeps
    answering a well-behaved exporter during the churn and at once after it (a listener that
    let such connections past its cap spent each new one's time on all the others)."""
    with Attack("half_heads", running.otlp, threads=4) as attack:
        wait_for(lambda: attack.progress >= 2000, timeout=60, message="churn under way")
        during = well_behaved(lambda: exporter(running.otlp), requests=10, every_seconds=0.5)
    started = time.monotonic()
    after = exporter(running.otlp)
    answered_in = time.monotonic() - started
    assert during.ok >= 5, f"exports during the churn: {during}"
    assert after == 200 and answered_in < 5.0, (after, answered_in)


def dropped(running: Running, reason: str) -> float:
    """telemetryd_otlp_connections_dropped_total{reason} from the daemon's /metrics."""
    status, body = request(running.metrics, "GET", "/metrics", f"127.0.0.1:{running.metrics}")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if (sample.name == "telemetryd_otlp_connections_dropped_total"
                    and sample.labels.get("reason") == reason):
                return float(sample.value)
    return 0.0


def test_slow_bodies_do_not_keep_exports_out(running: Running) -> None:
    """40 requests whose body comes at 1 byte a second (more than the 32 connections
    allowed): at least half of a well-behaved client's exports are accepted."""
    with Attack("slow_bodies", running.otlp, clients=40) as attack:
        # Every one of the 40 has sent two body bytes: the listener is full of them.
        wait_for(lambda: attack.progress >= 80, timeout=60, message="slow bodies under way")
        tally = well_behaved(lambda: exporter(running.otlp), requests=8, every_seconds=0.25)
    assert tally.ok >= 4, f"exports under 40 slow bodies: {tally}"


FETCH = """fetch(%s, %s).then(async r => ({status: r.status, body: await r.text()}))"""


def test_what_a_rebinding_page_gets_in_a_real_browser(running: Running, tmp_path: Path) -> None:
    """Chromium resolving rebind.attacker.example to 127.0.0.1 (as a rebound name does): the
    page's same-origin fetch of /api/status reads a 421 and no data; a fetch to the
    listener's own address from that page fails as a cross-origin request (403, no CORS)."""
    rule = f"--host-resolver-rules=MAP {REBIND} 127.0.0.1"
    with Browser(tmp_path / "profile", extra_flags=(rule,)) as browser:
        browser.open(f"http://{REBIND}:{running.metrics}/")
        assert "misdirected_host" in browser.evaluate("document.body.innerText")
        got = browser.evaluate_async(FETCH % ("'/api/status'", "{}"))
        assert got == {"status": 421, "body": "misdirected_host\n"}
        direct = json.dumps(f"http://127.0.0.1:{running.metrics}/api/status")
        got = browser.evaluate_async(FETCH % (direct, "{}"))
        assert "Failed to fetch" in str(got.get("error")), got

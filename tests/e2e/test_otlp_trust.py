"""End to end: whose telemetry a real daemon takes ([otlp] trust), and what others get.

The senders are real processes using the OpenTelemetry SDK's OTLP/HTTP exporter; the
budget's answer is the real ``budget check`` hook command.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from google.rpc import status_pb2

from tests.e2e.test_agent_telemetry import otlp_port, scrape
from tests.e2e.test_budget_hook import hook
from tests.e2e.test_watchdog import write_config
from tests.e2e.test_wrap import wrap
from tests.support.daemon_proc import REPO, DaemonProcess, clean_env, cli
from tests.support.waiting import wait_for
from tests.unit.agents.payloads import claude_resource, metrics_request, sum_metric

MODEL = "claude-sonnet-4-5"
BUDGET = '\n[[budget]]\nagent = "claude-code"\ndaily_usd = 10.0\n'
# Exports one cost point through the SDK exporter once a line comes on stdin: the endpoint,
# or "env" for the exporter's own configuration from the environment (OTEL_EXPORTER_OTLP_*,
# as `wrap` sets it). Headers always come from OTEL_EXPORTER_OTLP_HEADERS.
SENDER = textwrap.dedent("""
    import os, sys
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.resources import Resource
    print(os.getpid(), flush=True)
    endpoint = sys.stdin.readline().strip()
    exporter = OTLPMetricExporter() if endpoint == "env" else OTLPMetricExporter(endpoint)
    reader = PeriodicExportingMetricReader(exporter, 3_600_000)
    meters = MeterProvider(resource=Resource.create({"service.name": "claude-code"}),
                           metric_readers=[reader])
    meters.get_meter("c").create_counter("claude_code.cost.usage").add(
        float(sys.argv[1]), {"model": "claude-sonnet-4-5", "session.id": sys.argv[2]})
    meters.force_flush(10_000)
    meters.shutdown()
""")


def cost_request(usd: float, session: str) -> bytes:
    """An ExportMetricsServiceRequest with one claude_code.cost.usage point."""
    point = ({"model": MODEL, "session.id": session}, usd, 0, 1)
    return metrics_request(claude_resource(), [sum_metric("claude_code.cost.usage", [point])]
                           ).SerializeToString()


def post(port: int, body: bytes) -> tuple[int, str]:
    """POST to /v1/metrics from this process; the status and the google.rpc.Status text."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/metrics", body=body,
                     headers={"Content-Type": "application/x-protobuf"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status == 200:
        return 200, ""
    return response.status, status_pb2.Status.FromString(data).message


def spent(config: Path) -> float:
    """What `stats` says claude-code spent."""
    rows = json.loads(cli("--config", str(config), "stats", "--json").stdout)["agents"]
    return sum(r.get("cost_usd") or 0.0 for r in rows.get("rows") or [])


def sample(exposition: str, name: str, **labels: str) -> float:
    """One sample of a /metrics exposition (0 when absent)."""
    for line in exposition.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_unwatched_local_process_cannot_move_a_budget(tmp_path: Path) -> None:
    """Default trust: the watched agent's own export counts; the same export of 1000 USD from
    a process outside every watched tree gets 403 with a reason, is counted, and the hook
    still lets the agent's tool calls through."""
    sender = subprocess.Popen([sys.executable, "-c", SENDER, "0.5", "sess-real"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=clean_env(), cwd=REPO)
    assert sender.stdout is not None and sender.stdin is not None
    pid = int(sender.stdout.readline())
    config = write_config(tmp_path, f'name = "claude-code"\npid = {pid}', extra=BUDGET,
                          trust=None)
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        port = otlp_port(config)
        daemon.wait_event("process.seen", pid=pid)
        sender.stdin.write(f"http://127.0.0.1:{port}/v1/metrics\n")
        sender.stdin.close()
        assert sender.wait(timeout=60) == 0
        wait_for(lambda: spent(config) == 0.5, message="the watched agent's cost stored")

        status, message = post(port, cost_request(1000.0, "sess-real"))
        code, stderr = hook(config, "sess-real")
        exposition = scrape(config)
        otlp = json.loads(cli("--config", str(config), "status", "--json").stdout)["otlp"]
    finally:
        if sender.poll() is None:
            sender.kill()
        assert daemon.stop() == 0
    assert status == 403, message
    assert message.startswith("untrusted_sender: the sending process (pid ")
    assert "not in a watched agent's tree" in message
    assert code == 0, stderr
    assert spent(config) == 0.5
    assert sample(exposition, "telemetryd_otlp_requests_refused_total", status="403",
                  reason="untrusted_sender") == 1
    assert sample(exposition, "telemetryd_otlp_requests_trusted_total", how="watched") >= 1
    assert otlp["dropped_or_refused"] >= 1


def test_wrap_gives_its_agent_a_token_the_receiver_verifies(tmp_path: Path) -> None:
    """trust = "token": the agent `telemetryd wrap` started is taken, verified by the token
    wrap put in its OTEL_EXPORTER_OTLP_HEADERS; the same program started by hand, pointed at
    the same receiver, gets 401 and its cost is not counted."""
    config = write_config(tmp_path, 'name = "nobody"\nprocess_name = "no-such-process-x"',
                          extra=BUDGET, trust="token")
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        port = otlp_port(config)
        wrapped = wrap(config, sys.executable, "-c", SENDER, "0.25", "sess-wrapped",
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert wrapped.stdout is not None and wrapped.stdin is not None
        wrapped.stdout.readline()
        wrapped.stdin.write(b"env\n")
        wrapped.stdin.close()
        assert wrapped.wait(timeout=120) == 0
        wait_for(lambda: spent(config) == 0.25, message="the wrapped agent's cost stored")

        plain = subprocess.run(
            [sys.executable, "-c", SENDER, "0.75", "sess-plain"], input="env\n", text=True,
            capture_output=True, timeout=120, cwd=REPO,
            env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}"))

        def refused() -> str | None:
            text = scrape(config)
            return text if sample(text, "telemetryd_otlp_requests_refused_total",
                                  status="401", reason="token_required") else None
        exposition = wait_for(refused, message="the plain sender refused")
    finally:
        assert daemon.stop() == 0
    assert plain.returncode == 0
    assert "401" in plain.stderr  # the SDK exporter logs the refusal it got
    assert spent(config) == 0.25
    assert sample(exposition, "telemetryd_otlp_requests_trusted_total", how="token") >= 1
    assert (tmp_path / "state" / "otlp-token.key").stat().st_mode & 0o777 == 0o600

"""Series one host costs a central Prometheus: a real daemon at the default config.

A real ``telemetryd run`` with the embedded default watches and every other key at its
default (only the state dir, ephemeral ports and ``[otlp] trust = "any"``, so this process
may send on the agents' behalf, are set). Measured in one run, each a real scrape of
``/metrics`` counted sample by sample:

- baseline: no agent running;
- 5 agents: five processes the default watches match (claude-code, codex, gemini, aider,
  opencode: an interpreter running ``.../bin/NAME``), each a tree of one process;
- 5 agents with telemetry: each also sends what Claude Code exports (tokens of three types
  and cost for one model, an API request, a failed tool call and an API error) through the
  real OpenTelemetry SDK over OTLP/HTTP.

Usage: .venv/bin/python benchmarks/bench_fleet_series.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from daemon.config.files.embedded import DEFAULT_CONFIG_TOML

AGENTS = ("claude", "codex", "gemini", "aider", "opencode")
WATCHES = ("claude-code", "codex", "gemini", "aider", "opencode")
REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def listening(log: Path, listener: str) -> int | None:
    for line in log.read_text(errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if item.get("event") == "http.listening" and item.get("listener") == listener:
            return int(item["port"])
    return None


def scrape(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text: str = answer.read().decode()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def family(sample: str) -> str:
    name = re.split(r"[{ ]", sample, maxsplit=1)[0]
    if name.startswith("process_"):
        return "process_* (the daemon itself)"
    if name.startswith("telemetryd_watch_"):
        return "telemetryd_watch_* (per watch)"
    if name.startswith(("telemetryd_agent_", "telemetryd_budget_")):
        return "agent telemetry"
    return "telemetryd_* (daemon)"


def send_telemetry(port: int, service: str, pid: int) -> None:
    resource = Resource.create({"service.name": service, "service.instance.id": f"{service}-1",
                                "session.id": f"{service}-session", "process.pid": pid})
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}/v1/metrics"),
        export_interval_millis=3_600_000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meters.get_meter("com.anthropic.claude_code")
    tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
    cost = meter.create_counter("claude_code.cost.usage", unit="USD")
    model = "claude-sonnet-4-5"
    for kind, count in (("input", 12_000), ("output", 800), ("cacheRead", 50_000)):
        tokens.add(count, {"type": kind, "model": model})
    cost.add(0.0912, {"model": model})
    meters.force_flush(10_000)
    meters.shutdown()
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs")))
    logger = logs.get_logger("com.anthropic.claude_code.events")
    logger.emit(body="claude_code.api_request", attributes={
        "event.name": "api_request", "model": model, "duration_ms": 2300, "cost_usd": 0.0912,
        "input_tokens": 12_000, "output_tokens": 800})
    logger.emit(body="claude_code.tool_result", attributes={
        "event.name": "tool_result", "tool_name": "Bash", "success": "false",
        "duration_ms": 1500})
    logger.emit(body="claude_code.api_error", attributes={
        "event.name": "api_error", "model": model, "status_code": 429,
        "error": "rate_limit_error: too many requests"})
    logs.force_flush(10_000)
    logs.shutdown()


def report(title: str, samples: list[str], baseline: int) -> None:
    ratio = f"  ({len(samples) / baseline:.2f}x baseline)" if baseline else ""
    print(f"{title}: {len(samples)} series{ratio}")
    for name, count in sorted(Counter(family(s) for s in samples).items()):
        print(f"    {name:34} {count}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tdseries-") as folder:
        root = Path(folder)
        (root / "bin").mkdir()
        config = root / "telemetryd.toml"
        config.write_text(
            f'[daemon]\nstate_dir = "{root / "state"}"\nlog_format = "json"\n'
            '[otlp]\nlisten = "127.0.0.1:0"\ntrust = "any"\n'
            '[metrics]\nlisten = "127.0.0.1:0"\n' + DEFAULT_CONFIG_TOML)
        log = root / "daemon.log"
        procs: list[subprocess.Popen[bytes]] = []
        try:
            with log.open("wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "daemon", "--config", str(config), "run"],
                    stdout=out, stderr=subprocess.STDOUT, cwd=REPO))
            port = wait(lambda: listening(log, "metrics"), 60, "the metrics listener")
            otlp = wait(lambda: listening(log, "otlp"), 60, "the OTLP receiver")
            wait(lambda: any("telemetryd_last_tick" in s for s in scrape(port)), 60, "a tick")
            time.sleep(3)  # a few ticks, so every daemon series has been set once
            baseline = scrape(port)
            report("baseline (default config, no agent running)", baseline, 0)

            pids = {}
            for name, watch in zip(AGENTS, WATCHES, strict=True):
                script = root / "bin" / name
                script.write_text("import time\nwhile True:\n    time.sleep(60)\n")
                proc = subprocess.Popen([sys.executable, str(script)])
                procs.append(proc)
                pids[watch] = proc.pid

            def all_seen() -> list[str] | None:
                samples = scrape(port)
                seen = {w for w in WATCHES for s in samples
                        if s.startswith(f'telemetryd_watch_processes{{watch="{w}"}} 1')}
                return samples if len(seen) == len(WATCHES) else None
            watched = wait(all_seen, 60, "five watched agents")
            report("5 watched agents", watched, len(baseline))

            for watch, pid in pids.items():
                send_telemetry(otlp, watch, pid)

            def with_agents() -> list[str] | None:
                samples = scrape(port)
                named = {w for w in WATCHES for s in samples
                         if f'agent="{w}"' in s and s.startswith("telemetryd_agent_tokens")}
                return samples if len(named) == len(WATCHES) else None
            time.sleep(2)
            telemetry = wait(with_agents, 60, "telemetry of five agents in the scrape")
            report("5 watched agents sending telemetry", telemetry, len(baseline))
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    main()

"""End to end: `budget check --hook` blocks a Claude Code session whose OTLP cost passed its cap."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.e2e.test_agent_telemetry import otlp_port
from tests.e2e.test_watchdog import write_config
from tests.support.daemon_proc import DaemonProcess, cli
from tests.support.waiting import wait_for

MODEL = "claude-sonnet-4-5"


def hook(config: Path, session: str, tool: str = "Bash") -> tuple[int, str]:
    """Run the hook as Claude Code would: its JSON on stdin; exit code and stderr back."""
    payload = {"session_id": session, "hook_event_name": "PreToolUse", "tool_name": tool,
               "tool_input": {"command": "ls"}, "cwd": "/tmp", "transcript_path": "/dev/null"}
    result = cli("--config", str(config), "budget", "check", "--hook",
                 input_text=json.dumps(payload))
    return result.returncode, result.stderr


def test_hook_blocks_the_session_over_its_budget_and_not_another(tmp_path: Path) -> None:
    """Cost pushed over OTLP past session_usd blocks that session's tools; another goes on."""
    config = write_config(
        tmp_path, 'name = "init"\npid = 1',
        extra='\n[[budget]]\nagent = "claude-code"\nsession_usd = 1.0\n',
    )
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        port = otlp_port(config)
        meters = {}
        costs = {}
        for session in ("sess-spender", "sess-frugal"):
            resource = Resource.create({"service.name": "claude-code", "session.id": session,
                                        "service.instance.id": f"i-{session}"})
            reader = PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}/v1/metrics"),
                export_interval_millis=3_600_000)
            meters[session] = MeterProvider(resource=resource, metric_readers=[reader])
            costs[session] = meters[session].get_meter("com.anthropic.claude_code") \
                .create_counter("claude_code.cost.usage", unit="USD")
        costs["sess-spender"].add(0.6, {"model": MODEL})
        costs["sess-frugal"].add(0.3, {"model": MODEL})
        for provider in meters.values():
            assert provider.force_flush(10_000)

        def stored(expected: float) -> bool:
            result = cli("--config", str(config), "stats", "--json")
            rows = json.loads(result.stdout)["agents"].get("rows") or []
            return any(abs((r.get("cost_usd") or 0) - expected) < 1e-9 for r in rows)
        wait_for(lambda: stored(0.9), message="first cost stored")
        assert hook(config, "sess-spender")[0] == 0  # 0.60 of 1.00: within

        costs["sess-spender"].add(0.55, {"model": MODEL})  # 1.15 of 1.00: over
        assert meters["sess-spender"].force_flush(10_000)
        wait_for(lambda: stored(1.45), message="second cost stored")
        code, stderr = hook(config, "sess-spender", tool="Write")
        other_code, other_stderr = hook(config, "sess-frugal")
        plain = cli("--config", str(config), "budget", "check", "--session", "sess-spender")
        for provider in meters.values():
            provider.shutdown()
    finally:
        assert daemon.stop() == 0
    assert code == 2, stderr
    [line] = stderr.strip().splitlines()
    assert "session sess-spender" in line and "1.15 USD of its 1.00 USD session budget" in line
    assert "Write" in line
    assert other_code == 0, other_stderr
    assert plain.returncode == 2 and "over budget" in plain.stderr

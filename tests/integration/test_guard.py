"""The behaviour guard end to end: a real fork storm of real processes, a real spinning
process, and real-shaped OTLP replayed from captured agents into a real daemon; each rule's
report with its evidence, its on_guard action, and `budget check --hook`'s decision."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from sentry_sdk.envelope import Envelope

from crash_reports.event.kinds import GUARD_KINDS
from crash_reports.spool.store import Spool
from daemon.agents.decoding.counters import OtlpCounter
from daemon.config.parse import parse_config_text
from daemon.runtime.service import Service
from tests.support.daemon_proc import cli
from tests.support.guard_otlp import (
    CLAUDE_SESSION,
    JSON,
    PROTOBUF,
    fixture,
    post,
    repeat_codex_json,
    repeat_protobuf,
    with_session,
)
from tests.support.waiting import wait_for

# A parent that starts N `sleep` children when told to, and kills and reaps them all.
STORM = r"""
import subprocess, sys
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit(0)
kids = [subprocess.Popen(["sleep", "60"]) for _ in range(int(sys.argv[1]))]
print("spawned", flush=True)
sys.stdin.readline()
for kid in kids:
    kid.kill()
for kid in kids:
    kid.wait()
"""
GUARD_KIND_VALUES = frozenset(kind.value for kind in GUARD_KINDS)
SPIN = "import sys\nwhile True:\n    pass\n"


class StormParent:
    """A real process that starts ``children`` real processes on demand (all reaped)."""

    def __init__(self, marker: str, children: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", STORM, str(children), marker],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def spawn(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "spawned"

    def stop(self) -> None:
        children = psutil.Process(self.proc.pid).children()
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        wait_for(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE
                                 for c in children), message="every child reaped")


def config_text(tmp_path: Path, watches: str = "", guard: str = "") -> str:
    return (f'[daemon]\ninterval = 0.25\nstate_dir = "{tmp_path / "state"}"\n'
            '[metrics]\nlisten = "127.0.0.1:0"\n'
            # The test process replays the agents' telemetry: it is no watched agent.
            '[otlp]\nlisten = "127.0.0.1:0"\ntrust = "any"\n'
            f'[guard]\n{guard}\n{watches}')


@contextmanager
def daemon(tmp_path: Path, watches: str = "", guard: str = "") -> Iterator[Service]:
    text = config_text(tmp_path, watches, guard)
    (tmp_path / "config.toml").write_text(text)
    service = Service(parse_config_text(text, str(tmp_path / "config.toml"), {},
                                        psutil.virtual_memory().total))
    service.startup()
    try:
        yield service
    finally:
        service.shutdown()


def action_watch(name: str, marker: str, out: Path) -> str:
    """A watch whose on_guard action appends the trigger, the rule and the report id."""
    return (f'[[watch]]\nname = "{name}"\ncmdline = "{marker}"\n'
            'on_guard = [{ exec = ["sh", "-c", "echo $TELEMETRYD_TRIGGER $TELEMETRYD_LEVEL '
            f'$TELEMETRYD_REPORT_ID >> {out}"] }}]\n')


def running_of(service: Service) -> Any:
    assert service.running is not None
    return service.running


def guard_events(spool: Spool, kind: str | None = None) -> list[dict[str, Any]]:
    found = []
    for entry in spool.pending():
        event = Envelope.deserialize(spool.read(entry.id)).get_event()
        assert event is not None
        tag = event["tags"].get("kind", "")
        if tag in GUARD_KIND_VALUES and (kind is None or tag == kind):
            found.append(event)
    return found


def otlp_port(service: Service) -> int:
    return int(running_of(service).agents.telemetry.receiver.port)


def hook(tmp_path: Path, session: str, tool: str = "Bash") -> subprocess.CompletedProcess[str]:
    payload = json.dumps({"session_id": session, "tool_name": tool})
    return cli("--config", str(tmp_path / "config.toml"), "budget", "check", "--hook",
               input_text=payload)


def scrape(service: Service) -> str:
    port = running_of(service).metrics_server.port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def sleeper(marker: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["bash", "-c", f"exec -a {marker} sleep 600"])


def test_fork_storm_of_real_processes_is_reported_once_with_its_spawner(tmp_path):
    """A tree that starts 220 real processes within a minute (default: 200 in 60 s): one
    fork_storm report naming the count, the rate, the spawner's redacted command line and
    the process count over time; on_guard runs; a later tick raises nothing more."""
    marker = f"storm-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "actions.txt"
    parent = StormParent(marker, 220)
    try:
        with daemon(tmp_path, action_watch("storm", marker, out), "block = true") as service:
            spool = running_of(service).spool
            wait_for(lambda: service.tick_count >= 2, message="the tree seen")
            parent.spawn()
            [event] = wait_for(lambda: guard_events(spool, "fork_storm"), message="report")
            wait_for(out.exists, message="on_guard ran")
            ticks = service.tick_count
            wait_for(lambda: service.tick_count >= ticks + 4, message="four more ticks")
            again = guard_events(spool, "fork_storm")
            metrics = scrape(service)
            strip = [e.text for e in running_of(service).tally.recent.items()]
            decision = hook(tmp_path, "any-session")
    finally:
        parent.stop()
    assert len(again) == 1, [e["message"] for e in again]
    guard = event["contexts"]["guard"]
    assert guard["new_processes"] >= 200
    assert guard["rate_per_second"] > 0
    assert guard["spawner"]["pid"] == parent.proc.pid
    assert guard["spawner"]["children_among_new"] >= 200
    assert marker in " ".join(guard["spawner"]["cmdline"])
    over_time = guard["members_over_time"]
    assert over_time[0]["members"] == 1 and over_time[-1]["members"] >= 201
    assert event["tags"]["watch"] == "storm" and "fork storm" in event["message"]
    assert out.read_text().split()[:2] == ["guard", "fork_storm"]
    assert out.read_text().split()[2] == event["event_id"]
    assert 'telemetryd_guard_reports_total{rule="fork_storm"} 1.0' in metrics
    listed = cli("--config", str(tmp_path / "config.toml"), "reports", "list")
    assert "fork_storm" in listed.stdout
    assert any("fork_storm report written" in text for text in strip)  # the page and top
    assert decision.returncode == 0, decision.stderr  # a fork storm never blocks a session


def test_calm_session_and_a_tree_of_20_children_raise_nothing(tmp_path):
    """No false alarm: a tree starting 20 children, and a calm session of each captured
    agent (a handful of requests, different tool calls, a few cents) raise no report."""
    marker = f"calm-{uuid.uuid4().hex[:8]}"
    parent = StormParent(marker, 20)
    try:
        with daemon(tmp_path, f'[[watch]]\nname = "calm"\ncmdline = "{marker}"\n',
                    "block = true") as service:
            running = running_of(service)
            wait_for(lambda: service.tick_count >= 2, message="the tree seen")
            parent.spawn()
            port = otlp_port(service)
            assert post(port, "/v1/logs", fixture("claude-print-logs.pb"), PROTOBUF) == 200
            assert post(port, "/v1/metrics", fixture("claude-print-metrics.pb"),
                        PROTOBUF) == 200
            assert post(port, "/v1/logs", fixture("codex-exec-logs.json"), JSON) == 200
            assert running.agents.telemetry.ingestor.flush(10)
            wait_for(lambda: running.agents.telemetry.stats().get(OtlpCounter.EVENTS_WRITTEN) > 0,
                     message="events stored")
            ticks = service.tick_count
            wait_for(lambda: service.tick_count >= ticks + 6, message="six more ticks")
            events = guard_events(running.spool)
            counts = running.guard.counts()
            decision = hook(tmp_path, CLAUDE_SESSION)
    finally:
        parent.stop()
    assert events == []
    assert all(value == 0 for _, value in counts.raised)
    assert decision.returncode == 0, decision.stderr


def test_tool_loop_from_real_shaped_claude_events_reports_acts_and_blocks(tmp_path):
    """Claude Code's failing Read, ten times in a row in one session (Claude sends no tool
    input: the same tool failing): one tool_loop report naming agent, session, tool, count
    and span; the agent's watch runs on_guard; with block = true the hook exits 2 for that
    session with the rule named, and 0 for another session."""
    marker = f"claude-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "actions.txt"
    agent = sleeper(marker)
    try:
        with daemon(tmp_path, action_watch("claude-code", marker, out),
                    "block = true") as service:
            running = running_of(service)
            wait_for(lambda: service.tick_count >= 2, message="the agent's tree seen")
            body = repeat_protobuf("claude-print-logs.pb", "tool_result", 10,
                                   where=lambda r: "Read" in str(r.attributes))
            assert post(otlp_port(service), "/v1/logs", body, PROTOBUF) == 200
            [event] = wait_for(lambda: guard_events(running.spool, "tool_loop"),
                               message="report")
            wait_for(out.exists, message="on_guard ran")
            blocked = hook(tmp_path, CLAUDE_SESSION, "Read")
            other = hook(tmp_path, "another-session")
            metrics = scrape(service)
    finally:
        agent.kill()
        agent.wait()
    guard = event["contexts"]["guard"]
    assert (guard["agent"], guard["session"], guard["tool"]) == (
        "claude-code", CLAUDE_SESSION, "Read")
    assert guard["calls_in_a_row"] == 10 and guard["compared_by"] == "failure"
    assert guard["span_seconds"] >= 0 and guard["last_at"] >= guard["first_at"]
    assert out.read_text().split()[:2] == ["guard", "tool_loop"]
    assert blocked.returncode == 2, blocked.stderr
    assert "tool_loop" in blocked.stderr and "Read" in blocked.stderr
    assert blocked.stderr.count("\n") == 1
    assert other.returncode == 0, other.stderr
    assert 'telemetryd_guard_active{rule="tool_loop"} 1.0' in metrics


def test_tool_loop_compares_codex_inputs_by_digest(tmp_path):
    """Codex sends the input: ten identical `cat` calls (success or not) are a loop, and the
    report keeps no input, not even its digest."""
    with daemon(tmp_path) as service:
        running = running_of(service)
        body = repeat_codex_json("codex.tool_result", 10,
                                 lambda a: "does-not-exist" in str(a.get("arguments")))
        assert post(otlp_port(service), "/v1/logs", body, JSON) == 200
        [event] = wait_for(lambda: guard_events(running.spool, "tool_loop"), message="report")
    guard = event["contexts"]["guard"]
    assert guard["agent"] == "codex" and guard["tool"] == "exec_command"
    assert guard["compared_by"] == "input" and guard["calls_in_a_row"] == 10
    assert "does-not-exist" not in json.dumps(event)


def test_error_storm_from_real_shaped_claude_api_errors(tmp_path):
    """Twenty of Claude Code's captured `api_error` ("Connection error.") within five minutes:
    one error_storm report naming the error classes, status codes and the model; the hook
    does not block for an error storm."""
    marker = f"claude-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "actions.txt"
    agent = sleeper(marker)
    try:
        with daemon(tmp_path, action_watch("claude-code", marker, out), "block = true") as service:
            running = running_of(service)
            wait_for(lambda: service.tick_count >= 2, message="the agent's tree seen")
            body = repeat_protobuf("claude-api-error-logs.pb", "api_error", 19)
            assert post(otlp_port(service), "/v1/logs", body, PROTOBUF) == 200
            assert running.agents.telemetry.ingestor.flush(10)
            ticks = service.tick_count
            wait_for(lambda: service.tick_count >= ticks + 2, message="two ticks")
            assert guard_events(running.spool, "error_storm") == []  # 19: not yet
            body = repeat_protobuf("claude-api-error-logs.pb", "api_error", 1)
            assert post(otlp_port(service), "/v1/logs", body, PROTOBUF) == 200
            [event] = wait_for(lambda: guard_events(running.spool, "error_storm"),
                               message="report")
            wait_for(out.exists, message="on_guard ran")
            decision = hook(tmp_path, "8c929116-9892-43ea-838a-781680a1321b")
    finally:
        agent.kill()
        agent.wait()
    assert out.read_text().split()[:2] == ["guard", "error_storm"]
    guard = event["contexts"]["guard"]
    assert guard["agent"] == "claude-code" and guard["failed_requests"] == 20
    assert guard["error_classes"] == {"network": 20}
    assert guard["status_codes"] == {"none": 20}
    assert guard["models"] == {"claude-opus-4-8": 20}  # the model without its window
    assert decision.returncode == 0, decision.stderr


def test_cost_surge_from_real_shaped_claude_requests_reports_and_blocks(tmp_path):
    """150 of Claude Code's captured `api_request` events ($0.00687 each, $1.03) within the
    two-minute window, $30.9/h: one cost_surge report naming session, spend, rate and model;
    the hook blocks that session, naming the rule, and lets another pass."""
    session = f"surge-{uuid.uuid4().hex[:8]}"
    marker = f"claude-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "actions.txt"
    agent = sleeper(marker)
    try:
        with daemon(tmp_path, action_watch("claude-code", marker, out), "block = true") as service:
            running = running_of(service)
            wait_for(lambda: service.tick_count >= 2, message="the agent's tree seen")
            body = repeat_protobuf("claude-print-logs.pb", "api_request", 150, session=session)
            assert post(otlp_port(service), "/v1/logs", body, PROTOBUF) == 200
            [event] = wait_for(lambda: guard_events(running.spool, "cost_surge"), message="report")
            wait_for(lambda: hook(tmp_path, session).returncode == 2, message="hook blocks")
            blocked = hook(tmp_path, session)
            calm = with_session("claude-print-logs.pb", "calm-session")
            assert post(otlp_port(service), "/v1/logs", calm, PROTOBUF) == 200
            other = hook(tmp_path, "calm-session")
            wait_for(out.exists, message="on_guard ran")
    finally:
        agent.kill()
        agent.wait()
    assert out.read_text().split()[:2] == ["guard", "cost_surge"]
    guard = event["contexts"]["guard"]
    assert guard["session"] == session and guard["measured"] == "usd"
    # Raised the moment the window held $1.00 (30 $/h over 2 min), part way through the batch.
    assert 1.0 <= guard["session_usd"] <= 150 * 0.00687 + 1e-9
    assert 30.0 <= guard["rate_per_hour"] <= 31.0
    assert guard["models"] == ["claude-opus-5-5"]
    assert "cost_surge" in blocked.stderr and blocked.stderr.count("\n") == 1
    assert other.returncode == 0, other.stderr


def test_idle_spin_of_a_real_spinning_process(tmp_path):
    """A real process spinning on a core: with no telemetry from its agent, idle_spin after
    the longer CPU-only window, saying so; with telemetry whose last activity is older than
    the window, after the shorter one, saying the agent sent no activity."""
    marker = f"spin-{uuid.uuid4().hex[:8]}"
    spinner = subprocess.Popen([sys.executable, "-c", SPIN, marker])
    out = tmp_path / "actions.txt"
    try:
        with daemon(tmp_path, action_watch("spinner", marker, out) +
                    f'[[watch]]\nname = "claude-code"\ncmdline = "{marker}-claude"\n',
                    'idle_spin_window = "1s"\nidle_spin_fallback_window = "2s"\n'
                    'idle_spin_cpu = 10') as service:
            running = running_of(service)
            [event] = wait_for(lambda: guard_events(running.spool, "idle_spin"),
                               message="report", timeout=60)
            wait_for(out.exists, message="on_guard ran")
    finally:
        spinner.kill()
        spinner.wait()
    guard = event["contexts"]["guard"]
    assert guard["telemetry"] is False and "cpu alone" in guard["basis"]
    assert guard["spinning_seconds"] >= 2.0 and guard["cpu_percent_mean"] >= 10
    assert guard["pid"] == spinner.pid
    assert out.read_text().split()[:2] == ["guard", "idle_spin"]


def test_idle_spin_with_telemetry_uses_the_agent_window(tmp_path):
    """The agent (claude-code) sent telemetry, then nothing: its spinning tree is reported
    after the short window, with the time since its last activity."""
    marker = f"claude-{uuid.uuid4().hex[:8]}"
    spinner = subprocess.Popen([sys.executable, "-c", SPIN, marker])
    try:
        with daemon(tmp_path, f'[[watch]]\nname = "claude-code"\ncmdline = "{marker}"\n',
                    'idle_spin_window = "1s"\nidle_spin_fallback_window = "1h"\n'
                    'idle_spin_cpu = 10') as service:
            running = running_of(service)
            assert post(otlp_port(service), "/v1/logs", fixture("claude-print-logs.pb"),
                        PROTOBUF) == 200
            [event] = wait_for(lambda: guard_events(running.spool, "idle_spin"),
                               message="report", timeout=60)
    finally:
        spinner.kill()
        spinner.wait()
    guard = event["contexts"]["guard"]
    assert guard["telemetry"] is True and guard["last_activity_seconds_ago"] >= 1.0


def test_version_regression_between_two_real_installed_versions(tmp_path):
    """Two real processes installed as Claude Code 2.1.104 (idle) and 2.1.108 (spinning),
    their versions read from the install path, the hour of use shortened to 2 s by config:
    one version_regression naming both versions and both figures; on_guard runs; the
    figures are kept in the state dir."""
    marker = f"verreg-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "actions.txt"
    scripts = {}
    for version, body in (("2.1.104", "import time\ntime.sleep(600)\n"), ("2.1.108", SPIN)):
        script = tmp_path / marker / "claude" / "versions" / version / "cli.py"
        script.parent.mkdir(parents=True)
        script.write_text(body)
        scripts[version] = script
    guard_table = ('version_regression_use = "2s"\nidle_spin_cpu = 100000\n')
    old = subprocess.Popen([sys.executable, str(scripts["2.1.104"])])
    new: subprocess.Popen[bytes] | None = None
    try:
        with daemon(tmp_path, action_watch("claude-code", marker, out), guard_table) as service:
            running = running_of(service)
            book = running.guard.versions
            wait_for(lambda: book.agents.get("claude-code", {}).get("2.1.104") is not None
                     and book.agents["claude-code"]["2.1.104"].settled,
                     message="2.1.104 settled")
            old.kill()
            old.wait()
            new = subprocess.Popen([sys.executable, str(scripts["2.1.108"])])
            [event] = wait_for(lambda: guard_events(running.spool, "version_regression"),
                               message="report")
            wait_for(out.exists, message="on_guard ran")
            kept = json.loads((tmp_path / "state" / "guard-versions.json").read_text())
    finally:
        for proc in (old, new):
            if proc is not None:
                proc.kill()
                proc.wait()
    guard = event["contexts"]["guard"]
    assert guard["previous"]["version"] == "2.1.104"
    assert guard["current"]["version"] == "2.1.108"
    assert "idle_cpu" in guard["worse"]
    assert guard["current"]["idle_cpu_percent"] >= 3 * max(
        guard["previous"]["idle_cpu_percent"], 1.0)
    assert "2.1.108 regressed against 2.1.104" in event["message"]
    assert out.read_text().split()[:2] == ["guard", "version_regression"]
    assert kept["claude-code"]["2.1.108"]["reported"] is True

"""The real daemon against real misbehaving processes: thresholds, reports, status, signals."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import pytest
from sentry_sdk.envelope import Envelope

from tests.support.agents import Agent
from tests.support.daemon_proc import DaemonProcess, clean_env, cli
from tests.support.waiting import wait_for

MiB = 1024 * 1024


def write_config(tmp_path: Path, watch: str, interval: float = 0.2, extra: str = "",
                 trust: str | None = "any") -> Path:
    """A config with a temp state dir and the given [[watch]] body.

    The test process plays the agents' part on the wire, from outside the watched trees:
    the receiver takes ``any`` sender unless ``trust`` says otherwise (None: the default).
    """
    state = tmp_path / "state"
    path = tmp_path / "telemetryd.toml"
    trust_line = f'trust = "{trust}"\n' if trust else ""
    path.write_text(
        f'[daemon]\ninterval = {interval}\nstate_dir = "{state}"\nlog_format = "json"\n'
        f'trend_window = "3s"\ntrend_startup = "1s"\n{extra}\n'
        # Ephemeral ports, so tests running side by side never collide.
        f'[otlp]\nlisten = "127.0.0.1:0"\n{trust_line}[metrics]\nlisten = "127.0.0.1:0"\n'
        f"[[watch]]\n{watch}\n"
    )
    return path


def memory_watch(agent: Agent, warning_mib: int, critical_mib: int, **extra: object) -> str:
    """A watch on one agent by pid with RSS levels above its current size."""
    base = agent.rss_bytes() // MiB
    lines = [
        'name = "leaky"',
        f"pid = {agent.pid}",
        f'rss_warning = "{base + warning_mib}MiB"',
        f'rss_critical = "{base + critical_mib}MiB"',
        "cpu_warning = 900",
        "cpu_critical = 1000",
        "sustained = 2",
        "cooldown = 600",
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines)


def pending_envelopes(state: Path) -> list[Envelope]:
    """Every envelope waiting in the spool (one delivered while we list it is left out)."""
    folder = state / "spool" / "pending"
    if not folder.exists():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix != ".env":
            continue
        try:
            found.append(Envelope.deserialize(path.read_bytes()))
        except FileNotFoundError:
            continue  # the daemon delivered and removed it between listing and reading
    return found


def status(config: Path) -> tuple[int, dict]:
    """Run `telemetryd status --json`."""
    result = cli("--config", str(config), "status", "--json")
    return result.returncode, json.loads(result.stdout)


def notify_socket(path: Path) -> socket.socket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(20)
    return server


@pytest.fixture
def agent():
    """A controllable agent process, killed at the end."""
    with Agent() as proc:
        yield proc


def test_leak_goes_warning_then_critical_and_writes_one_report(tmp_path, agent):
    """A real process growing past both levels is logged once per crossing and reported once."""
    config = write_config(tmp_path, memory_watch(agent, 40, 100))
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        daemon.wait_event("process.seen", pid=agent.pid)
        agent.command("grow 60")
        warning = daemon.wait_event("threshold.warning", pid=agent.pid)
        assert warning["metric"] == "rss" and warning["rss_bytes"] >= warning["level_bytes"]
        code, snap = wait_for(lambda: (lambda r: r if r[0] == 1 else None)(status(config)),
                              message="status exit 1 at warning")
        assert snap["watches"][0]["processes"][0]["state"] == "warning"
        agent.command("grow 60")
        daemon.wait_event("threshold.critical", pid=agent.pid)
        written = daemon.wait_event("report.written", pid=agent.pid)
        assert written["kind"] == "rss_critical"
        code, snap = status(config)
        assert code == 2
        # Stay critical for many more ticks: still one report, one warning line.
        ticks_before = snap["last_tick"]["count"]
        wait_for(lambda: status(config)[1]["last_tick"]["count"] >= ticks_before + 10,
                 message="ten more ticks")
    finally:
        assert daemon.stop() == 0
    events = [e["event"] for e in daemon.events()]
    assert events.count("threshold.warning") == 1
    assert events.count("threshold.critical") == 1
    assert events.count("report.written") == 1
    envelopes = pending_envelopes(tmp_path / "state")
    assert len(envelopes) == 1
    event = envelopes[0].get_event()
    assert event is not None
    assert event["event_id"] == written["id"]
    assert event["level"] == "fatal"
    assert event["message"].startswith(f"leaky pid {agent.pid}: RSS ")
    assert "crossed critical" in event["message"]
    assert event["fingerprint"] == ["telemetryd", "leaky", "rss_critical"]
    assert event["tags"]["watch"] == "leaky" and event["tags"]["kind"] == "rss_critical"
    contexts = event["contexts"]
    assert contexts["process"]["pid"] == agent.pid
    assert contexts["process_tree"]["rss_bytes"] >= contexts["thresholds"]["rss_critical_bytes"]
    assert "memory_total_bytes" in contexts["system"]
    attachments = [item for item in envelopes[0].items if item.type == "attachment"]
    samples = json.loads(attachments[0].payload.get_bytes())
    assert samples["pid"] == agent.pid and len(samples["samples"]) >= 3
    code, snap = status(config)
    assert code == 3 and snap["stopped"] is True


def test_children_are_totalled_into_the_tree(tmp_path, agent):
    """With include_children the RSS of the agent's children counts toward its level."""
    config = write_config(tmp_path, memory_watch(agent, 30, 70, include_children=True))
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        daemon.wait_event("process.seen", pid=agent.pid)
        agent.command("child 45")
        agent.command("child 45")
        report = daemon.wait_event("report.written", pid=agent.pid)
        assert report["kind"] == "rss_critical"
        critical = daemon.wait_event("threshold.critical", pid=agent.pid)
        assert critical["members"] == 3
    finally:
        daemon.stop()
    assert agent.rss_bytes() < 40 * MiB + agent.rss_bytes() // 2  # the parent itself stayed small


def test_process_killed_at_warning_gets_exited_under_pressure_report(tmp_path, agent):
    """A watched process that vanishes while at warning leaves a report of its last samples."""
    config = write_config(tmp_path, memory_watch(agent, 20, 500))
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        daemon.wait_event("process.seen", pid=agent.pid)
        agent.command("grow 40")
        daemon.wait_event("threshold.warning", pid=agent.pid)
        agent.kill()
        daemon.wait_event("process.exited", pid=agent.pid)
        written = daemon.wait_event("report.written", pid=agent.pid)
        assert written["kind"] == "exited_under_pressure"
    finally:
        daemon.stop()
    event = pending_envelopes(tmp_path / "state")[0].get_event()
    assert event is not None
    assert "exited under pressure (warning)" in event["message"]
    assert event["contexts"]["process"]["pid"] == agent.pid
    assert "oom_kill_total" in event["contexts"]["crossing"]


def test_cpu_spin_is_reported(tmp_path, agent):
    """A process burning a core past cpu_critical for `sustained` samples is reported."""
    # Levels a busy loop passes even when it gets a third of a core on a loaded machine;
    # an idle Python process stays near 0 %.
    watch = "\n".join([
        'name = "spinner"', f"pid = {agent.pid}", "cpu_warning = 10", "cpu_critical = 25",
        "sustained = 3", 'rss_warning = "90%"', 'rss_critical = "95%"',
    ])
    config = write_config(tmp_path, watch)
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        daemon.wait_event("process.seen", pid=agent.pid)
        agent.command("burn 8")
        written = daemon.wait_event("report.written", pid=agent.pid)
        assert written["kind"] == "cpu_critical"
    finally:
        daemon.stop()
    event = pending_envelopes(tmp_path / "state")[0].get_event()
    assert event is not None and "CPU" in event["message"]


def test_second_daemon_on_same_state_dir_refuses(tmp_path, agent):
    """A second daemon on the same state dir exits with a message naming the running one."""
    config = write_config(tmp_path, memory_watch(agent, 100, 200))
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        daemon.wait_event("daemon.ready")
        second = cli("--config", str(config), "run", timeout=30)
        assert second.returncode == 69
        assert f"pid {daemon.pid}" in second.stderr and "already running" in second.stderr
    finally:
        assert daemon.stop() == 0


def test_sighup_reload_keeps_old_config_when_new_one_is_bad(tmp_path, agent):
    """SIGHUP with a broken file logs config.error and the old watches stay in force."""
    config = write_config(tmp_path, memory_watch(agent, 30, 500))
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        daemon.wait_event("process.seen", pid=agent.pid)
        good = config.read_text()
        config.write_text(good.replace("sustained = 2", "sustained = -1"))
        daemon.signal(signal.SIGHUP)
        error = daemon.wait_event("config.error")
        assert error["key"] == "watch[0].sustained"
        agent.command("grow 50")
        daemon.wait_event("threshold.warning", pid=agent.pid)  # the old rule still works
        config.write_text(good.replace('name = "leaky"', 'name = "renamed"'))
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.loaded", reload=True)
        daemon.wait_event("process.seen", watch="renamed", pid=agent.pid)
    finally:
        assert daemon.stop() == 0


def test_notify_protocol_ready_watchdog_stopping(tmp_path, agent):
    """Under Type=notify the daemon sends READY=1 after its first tick, WATCHDOG=1, STOPPING=1."""
    sock_path = tmp_path / "notify.sock"
    server = notify_socket(sock_path)
    config = write_config(tmp_path, memory_watch(agent, 100, 200))
    daemon = DaemonProcess(config, tmp_path / "log.jsonl",
                           env=clean_env(NOTIFY_SOCKET=str(sock_path)))
    messages: list[str] = []
    try:
        while "READY=1" not in messages:
            messages.append(server.recv(4096).decode())
        # READY comes after the first tick: its status snapshot is already on disk.
        snapshot = json.loads((tmp_path / "state" / "status.json").read_text())
        assert snapshot["last_tick"]["count"] >= 1
        while "WATCHDOG=1" not in messages:
            messages.append(server.recv(4096).decode())
    finally:
        assert daemon.stop() == 0
    while "STOPPING=1" not in messages:
        messages.append(server.recv(4096).decode())
    server.close()
    assert messages.index("READY=1") < messages.index("STOPPING=1")


def test_unwritable_state_dir_fails_at_start_with_clear_message(tmp_path):
    """A state dir that cannot be created stops the start with a message naming it."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    config = tmp_path / "c.toml"
    config.write_text(f'[daemon]\nstate_dir = "{blocker}/state"\n[[watch]]\nname = "x"\npid = 1\n')
    result = cli("--config", str(config), "run", timeout=30)
    assert result.returncode == 69
    assert f"{blocker}/state" in result.stderr and "Traceback" not in result.stderr


def test_status_without_daemon_exits_3(tmp_path):
    """`status` with no daemon ever run exits 3 and says so."""
    config = tmp_path / "c.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "s"}"\n')
    result = cli("--config", str(config), "status")
    assert result.returncode == 3
    assert "not running" in result.stdout


def test_sighup_with_a_new_dsn_delivers_to_the_new_server(tmp_path, agent):
    """Reports kept local while no DSN is set go to the server named by a reloaded config."""
    from tests.support.fault_server import FaultServer

    config = write_config(tmp_path, memory_watch(agent, 20, 40))
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    server = FaultServer()
    try:
        daemon.wait_event("flush.disabled")
        agent.command("grow 60")
        written = daemon.wait_event("report.written", pid=agent.pid)
        text = config.read_text().replace(
            "[otlp]", f'[sentry]\ndsn = "{server.dsn()}"\nflush_interval = 600\n\n[otlp]')
        config.write_text(text)
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("flush.configured")
        wait_for(lambda: written["id"] in server.accepted_ids(), message="report delivered")
        wait_for(lambda: not pending_envelopes(tmp_path / "state"), message="spool drained")
    finally:
        server.stop()
        assert daemon.stop() == 0


def test_watchdog_pinged_between_ticks_when_the_interval_is_long(tmp_path, agent):
    """With WATCHDOG_USEC shorter than the interval, the main loop keeps systemd's watchdog fed."""
    sock_path = tmp_path / "notify.sock"
    server = notify_socket(sock_path)
    config = write_config(tmp_path, memory_watch(agent, 100, 200), interval=60)
    daemon = DaemonProcess(config, tmp_path / "log.jsonl", env=clean_env(
        NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="1000000"))
    try:
        pings = 0
        while pings < 4:
            if server.recv(4096).decode() == "WATCHDOG=1":
                pings += 1
        snapshot = json.loads((tmp_path / "state" / "status.json").read_text())
        assert snapshot["last_tick"]["count"] == 1  # four pings, one tick
    finally:
        assert daemon.stop() == 0
        server.close()

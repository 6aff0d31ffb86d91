"""End to end: `wrap` passes status through, reports kills, links telemetry, keeps the tty."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.test_agent_telemetry import otlp_port
from tests.e2e.test_watchdog import pending_envelopes, write_config
from tests.support.daemon_proc import REPO, DaemonProcess, clean_env
from tests.support.waiting import wait_for

ALLOCATE = textwrap.dedent("""
    import os, sys, time
    hoard = bytearray(80 * 1024 * 1024)
    for i in range(0, len(hoard), 4096):
        hoard[i] = 1
    open(sys.argv[1], "w").write(str(os.getpid()))
    time.sleep(600)
""")


def quiet_config(tmp_path: Path) -> Path:
    """A config with a state dir and a watch that matches nothing (no daemon needed)."""
    config = tmp_path / "telemetryd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
                      '[[watch]]\nname = "nobody"\nprocess_name = "no-such-process-x"\n')
    return config


def wrap(config: Path, *argv: str, **kwargs: object) -> subprocess.Popen[bytes]:
    """Start `telemetryd wrap -- ARGV`."""
    return subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config), "wrap",
                             "--", *argv], env=clean_env(), cwd=REPO, **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize(("script", "expected"), [
    ("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", 128 + signal.SIGTERM)])
def test_exit_status_passes_through(tmp_path: Path, script: str, expected: int) -> None:
    """wrap exits with the child's status, 128+N when signal N ended it."""
    proc = wrap(quiet_config(tmp_path), "sh", "-c", script)
    assert proc.wait(timeout=60) == expected
    assert not list((tmp_path / "state" / "wrapped").glob("*.json"))


def test_sigkilled_allocating_child_leaves_a_killed_report(tmp_path: Path) -> None:
    """SIGKILL on a wrapped process that holds 80 MiB: a `killed` report in the spool."""
    pid_file = tmp_path / "pid"
    proc = wrap(quiet_config(tmp_path), sys.executable, "-c", ALLOCATE, str(pid_file))
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), message="child up"))
    announcement = next((tmp_path / "state" / "wrapped").glob("*.json"))

    def sampled_rss() -> int:
        announced = json.loads(announcement.read_text())
        assert announced["pid"] == pid and announced["watch"] == "wrapped"
        return int(announced["last_rss_bytes"] or 0)

    # wrap publishes its last sample of the tree: kill once it has seen the full allocation.
    wait_for(lambda: sampled_rss() > 70 * 1024 * 1024, message="allocation sampled")
    os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == 128 + signal.SIGKILL
    [envelope] = pending_envelopes(tmp_path / "state")
    event = envelope.get_event()
    assert event["tags"]["kind"] == "killed"
    crossing = event["contexts"]["crossing"]
    assert crossing["signal"] == signal.SIGKILL and crossing["signal_name"] == "SIGKILL"
    assert crossing["exit_status"] == 137
    assert crossing["last_rss_bytes"] > 70 * 1024 * 1024
    assert "SIGKILL" in event["message"]
    assert event["contexts"]["process_tree"]["last_members"][0]["pid"] == pid
    [member] = crossing["leak"]["members"]
    assert member["pid"] == pid and member["rss_bytes"] > 70 * 1024 * 1024
    assert {"what": "smaps_rollup", "pid": pid} in [
        {"what": n["what"], "pid": n["pid"]} for n in crossing["leak"]["not_collected"]]


def test_wrapped_sdk_client_matched_to_its_process_by_pid(tmp_path: Path) -> None:
    """The daemon watches the wrapped child at once and stores its telemetry under its pid."""
    config = write_config(tmp_path, 'name = "init"\npid = 1')
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    client = textwrap.dedent("""
        import os, sys
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.resources import Resource
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(), 3_600_000)
        meters = MeterProvider(resource=Resource.create({"service.name": "sdk-agent"}),
                               metric_readers=[reader])
        meters.get_meter("t").create_counter("work.done").add(5)
        assert meters.force_flush(10_000)
        meters.shutdown()
        print(os.getpid(), flush=True)
        sys.stdin.read()  # held until the test saw the daemon watch this process
    """)
    try:
        otlp_port(config)
        proc = wrap(config, sys.executable, "-c", client, stdout=subprocess.PIPE,
                    stdin=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdin is not None
        child = int(proc.stdout.readline().decode())
        daemon.wait_event("process.seen", pid=child, watch="wrapped")
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0
        db = tmp_path / "state" / "events.db"

        def pids() -> set[int]:
            if not db.exists():
                return set()
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                return {row[0] for row in conn.execute(
                    "SELECT pid FROM events WHERE agent = 'sdk-agent'")}
        assert wait_for(pids, message="telemetry stored") == {child}
    finally:
        assert daemon.stop() == 0


def test_interactive_program_under_tmux_reads_keys_and_sees_resize(tmp_path: Path) -> None:
    """In a real terminal (tmux) the wrapped program reads a key and gets SIGWINCH."""
    program = tmp_path / "tui.py"
    seen = tmp_path / "seen.txt"
    program.write_text(textwrap.dedent(f"""
        import os, signal, sys, termios, tty
        out = open({str(seen)!r}, "a", buffering=1)
        def resized(*_):
            size = os.get_terminal_size(0)
            out.write(f"size {{size.columns}}x{{size.lines}}\\n")
        signal.signal(signal.SIGWINCH, resized)
        fg = os.tcgetpgrp(0) == os.getpgrp()
        out.write(f"ready fg={{fg}}\\n")
        tty.setcbreak(0)
        key = os.read(0, 1)
        out.write(f"key {{key.decode()}}\\n")
        key = os.read(0, 1)
    """))
    socket = tmp_path / "tmux.sock"
    command = (f"{sys.executable} -m daemon --config {quiet_config(tmp_path)} wrap -- "
               f"{sys.executable} {program}")
    tmux = ["tmux", "-S", str(socket), "-f", "/dev/null"]
    env = clean_env()
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", "-c", str(REPO),
                    command], check=True, env=env, timeout=60)
    try:
        wait_for(lambda: seen.exists() and "ready" in seen.read_text(), message="tui ready")
        assert "ready fg=True" in seen.read_text()
        subprocess.run([*tmux, "send-keys", "q"], check=True, env=env, timeout=60)
        wait_for(lambda: "key q" in seen.read_text(), message="key read")
        subprocess.run([*tmux, "resize-window", "-x", "100", "-y", "30"], check=True, env=env,
                       timeout=60)
        wait_for(lambda: "size 100x30" in seen.read_text(), message="resize seen")
        subprocess.run([*tmux, "send-keys", "x"], check=True, env=env, timeout=60)
    finally:
        subprocess.run([*tmux, "kill-server"], env=env, timeout=60, check=False)

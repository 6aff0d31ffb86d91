"""A busy scene for the look tests: a live daemon watching 5 live trees after 100 ended ones,
one of the live ones past critical (one report), and two agents' captured sessions replayed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.test_agent_telemetry import otlp_port
from tests.e2e.test_watchdog import write_config
from tests.support.captures import replay
from tests.support.daemon_proc import DaemonProcess
from tests.support.views import get, listener_url
from tests.support.waiting import wait_for

WATCH = "claude-code-agents-on-this-host"
LIVE_MIB = (20, 35, 50, 65)
LEAKER_MIB = 10
WARNING_MIB, CRITICAL_MIB = 30, 200
WARNED_MIB = 40  # the first batch of ended trees crosses warning: events to show
ENDED = 100
BATCH = 25
CAPTURES = ("claude-fakeapi-protobuf", "codex-fakeapi-tools-binary")
# Holds ``size`` MiB (touched), says ready, then grows by each number read; exits at EOF.
HOLDER = ("import sys\nblocks = []\n"
          "def grow(m):\n    b = bytearray(m << 20)\n"
          "    for i in range(0, len(b), 4096): b[i] = 1\n    blocks.append(b)\n"
          "grow(int(sys.argv[1])); print('ready', flush=True)\n"
          "for line in sys.stdin:\n    grow(int(line)); print('grown', flush=True)\n")


@dataclass
class Scene:
    """The running daemon, its config, the live holders and the leaker's pid."""

    daemon: DaemonProcess
    config: Path
    base_url: str
    live: list[subprocess.Popen[str]]
    leaker: subprocess.Popen[str]

    def api(self, path: str) -> dict:  # type: ignore[type-arg]
        """A JSON document from the listener."""
        return json.loads(get(self.base_url + path))  # type: ignore[no-any-return]


def holder(marker: str, mib: int) -> subprocess.Popen[str]:
    """A real process holding ``mib`` MiB, ready when this returns."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(mib), marker],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def end(procs: list[subprocess.Popen[str]]) -> None:
    """Close their stdin (they exit) and reap them."""
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
    for proc in procs:
        proc.wait(timeout=60)


def live_pids(scene: Scene) -> set[int]:
    """Pids of the trees the daemon lists now."""
    return {t["pid"] for t in scene.api("/api/status")["trees"]}


def warned(scene: Scene, pids: set[int]) -> set[int]:
    """Which of these pids have a warning event on the daemon's recent events."""
    return {e["pid"] for e in scene.api("/api/status")["events"]
            if e["kind"] == "warning" and e["pid"] in pids}


@contextmanager
def look_scene(tmp: Path) -> Iterator[Scene]:
    """Start it all; stop the daemon and every process at the end."""
    marker = f"look-{uuid.uuid4().hex[:8]}"
    watch = (f'name = "{WATCH}"\ninterpreter_cmdline = "{marker}"\n'
             f'rss_warning = "{WARNING_MIB}MiB"\nrss_critical = "{CRITICAL_MIB}MiB"\n'
             "cpu_warning = 900\ncpu_critical = 1000\nsustained = 2\ncooldown = 600")
    config = write_config(tmp, watch, interval=0.25)
    with ExitStack() as stack:
        started: list[subprocess.Popen[str]] = []

        def kill_all() -> None:
            for proc in started:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
        stack.callback(kill_all)
        daemon = DaemonProcess(config, tmp / "log.jsonl")
        stack.callback(daemon.stop)
        scene = Scene(daemon, config, listener_url(config), [], None)  # type: ignore[arg-type]
        for n in range(ENDED // BATCH):
            batch = [holder(marker, WARNED_MIB if n == 0 else 1) for _ in range(BATCH)]
            started += batch
            pids = {p.pid for p in batch}

            def seen(pids: set[int] = pids) -> bool:
                return pids <= live_pids(scene)

            def gone(pids: set[int] = pids) -> bool:
                return not pids & live_pids(scene)
            wait_for(seen, timeout=120, message=f"ended batch {n} seen")
            if n == 0:
                wait_for(lambda pids=pids: len(warned(scene, pids)) >= BATCH // 2, timeout=120,
                         message="the first batch warned")
            end(batch)
            wait_for(gone, timeout=120, message=f"ended batch {n} gone")
        scene.live = [holder(marker, mib) for mib in LIVE_MIB]
        scene.leaker = holder(marker, LEAKER_MIB)
        started += [*scene.live, scene.leaker]
        everyone = {p.pid for p in [*scene.live, scene.leaker]}
        wait_for(lambda: everyone <= live_pids(scene), timeout=120, message="live trees seen")
        assert scene.leaker.stdin is not None and scene.leaker.stdout is not None
        for step in (40, 80, 120):  # a leak in steps past warning, then past critical
            scene.leaker.stdin.write(f"{step}\n")
            scene.leaker.stdin.flush()
            assert scene.leaker.stdout.readline().strip() == "grown"
            wait_for(lambda: any(t["pid"] == scene.leaker.pid and t["rss_bytes"] > 0
                                 for t in scene.api("/api/status")["trees"]), timeout=60,
                     message="leaker sampled")
        daemon.wait_event("report.written", timeout=120, pid=scene.leaker.pid)
        port = otlp_port(config)
        for folder in CAPTURES:
            statuses = replay(port, folder)
            assert statuses and all(200 <= s < 300 for s in statuses), statuses

        def both_sessions_listed() -> bool:
            # A 2xx answer means queued: the writer thread stores the records a moment later.
            page = get(scene.base_url + "/?range=1h").decode()
            table = page.partition('id="sessions-table"')[2].partition("</table>")[0]
            return ">claude-code<" in table and ">codex<" in table
        wait_for(both_sessions_listed, timeout=120, message="both agents' sessions stored")

        def ended_in_history() -> bool:
            trees = scene.api("/api/history?range=15m")["trees"]
            return len(trees) >= ENDED + len(everyone)
        wait_for(ended_in_history, timeout=120, message="history of all trees written")
        yield scene

"""The real daemon under argv churn: RSS and tick gaps, beside a quiet daemon in the same run.

Short-lived processes with 1.4 MB command lines (eleven 128 KiB arguments, the most one
argument may hold) come and go anywhere on the machine: ``--concurrency`` at a time, each
living ``--lifetime`` seconds, for ``--seconds``. Two daemons run the embedded default
config plus one watch of an agent that is not running (``process_name``), so every process
on the machine is matched against the default watches' command-line patterns:

- **churned**: sees the churn;
- **quiet**: the same config started at the same time in its own pid namespace
  (``unshare --pid --fork --mount-proc``, needs root), where the churn is invisible: the
  RSS baseline of the same run. Without unshare, the churned daemon's own quiet phase is
  the only baseline.

Figures: each daemon's RSS and anonymous RSS (``RssAnon``) in the quiet phase, the peak
during the churn and ``--after`` seconds after it ended (targets: peak < 150 MB, back near
quiet), and the largest gap between successive ticks (``status.json`` read every 20 ms)
against the interval (target: at most 3x; the quiet daemon's gap shows what the machine's
load alone does). The churn runs at nice 10. Every process this benchmark starts is in one
process group it kills on exit.

Usage: .venv/bin/python benchmarks/bench_argv_churn.py [--interval 0.5] [--seconds 30]
       [--after 15] [--concurrency 16] [--lifetime 1.0] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._procs import ProcessGroup
from daemon.config.files.embedded import DEFAULT_CONFIG_TOML

REPO = Path(__file__).resolve().parents[1]
MB = 1_000_000
BIG_ARG = "x" * (128 * 1024 - 1)  # the longest single argument Linux takes
BIG_ARGS = 11  # 1.4 MB of command line


def config_text(state_dir: Path, interval: float, absent: str) -> str:
    """The embedded default's watches, a watch of an agent that is not running, loopback."""
    return (DEFAULT_CONFIG_TOML + f'\n[[watch]]\nname = "absent"\nprocess_name = "{absent}"\n'
            f'[daemon]\ninterval = {interval}\nstate_dir = "{state_dir}"\n'
            'log_level = "warning"\nlog_format = "json"\n'
            '[otlp]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n')


def rss_of(pid: int) -> tuple[int, int]:
    """(RSS, anonymous RSS) of a process in bytes, (0, 0) when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        return (int(fields["VmRSS"].split()[0]) * 1024, int(fields["RssAnon"].split()[0]) * 1024)
    except (OSError, KeyError, ValueError):
        return (0, 0)


def last_tick(state_dir: Path) -> tuple[int, float] | None:
    """(count, time) of the daemon's last tick, from status.json."""
    try:
        tick = json.loads((state_dir / "status.json").read_text())["last_tick"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (int(tick["count"]), float(tick["at"])) if tick else None


@dataclass
class Watched:
    """One daemon: its pid, state dir and what was seen of it in the current phase."""

    label: str
    pid: int
    state_dir: Path
    peak_rss: int = 0
    peak_anon: int = 0
    ticks: list[tuple[int, float]] = field(default_factory=list)

    def poll(self) -> None:
        rss, anon = rss_of(self.pid)
        self.peak_rss, self.peak_anon = max(self.peak_rss, rss), max(self.peak_anon, anon)
        tick = last_tick(self.state_dir)
        if tick and (not self.ticks or tick[0] != self.ticks[-1][0]):
            self.ticks.append(tick)

    def start_phase(self) -> None:
        self.peak_rss = self.peak_anon = 0
        self.ticks = []

    def largest_gap(self, now: float) -> float:
        """Largest time between successive ticks (per tick), the time since the last included."""
        gaps = [(b[1] - a[1]) / max(1, b[0] - a[0]) for a, b in itertools.pairwise(self.ticks)]
        if self.ticks:
            gaps.append(now - self.ticks[-1][1])
        return max(gaps, default=float("inf"))


def watch_phase(daemons: list[Watched], seconds: float) -> None:
    """Poll every daemon every 20 ms (RSS every 100 ms) for ``seconds``."""
    for daemon in daemons:
        daemon.start_phase()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for daemon in daemons:
            daemon.poll()
        time.sleep(0.02)


def churn(group: ProcessGroup, marker: str, stop: threading.Event, concurrency: int,
          lifetime: float, started: list[int]) -> None:
    """Keep ``concurrency`` processes with 1.4 MB command lines alive until ``stop``.

    At nice 10 (this thread and what it starts): the churn's own CPU then does not starve
    the daemons on a small machine, so a tick gap measures the daemon, not the load.
    """
    os.setpriority(os.PRIO_PROCESS, 0, 10)  # Linux: this thread only
    running: list[subprocess.Popen[bytes]] = []
    argv = ["/bin/sh", "-c", f"sleep {lifetime}; :", marker, *([BIG_ARG] * BIG_ARGS)]
    while not stop.is_set():
        running = [proc for proc in running if proc.poll() is None]
        while len(running) < concurrency and not stop.is_set():
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, process_group=group.pgid or 0)
            running.append(proc)
            started[0] += 1
        time.sleep(0.01)
    for proc in running:
        proc.wait()


def start_daemon(group: ProcessGroup, work: Path, label: str, interval: float, absent: str,
                 namespace: bool, repo: Path = REPO) -> tuple[subprocess.Popen[bytes], Path]:
    """``telemetryd run`` (in its own pid namespace when asked); its process and state dir."""
    folder = work / label
    folder.mkdir()
    config = folder / "telemetryd.toml"
    config.write_text(config_text(folder / "state", interval, absent))
    argv = [sys.executable, "-m", "daemon", "--config", str(config), "run"]
    if namespace:
        argv = ["unshare", "--pid", "--fork", "--mount-proc", *argv]
    with open(folder / "daemon.log", "ab") as log:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        proc = group.spawn(argv, stdout=log.fileno(), cwd=repo, env=env)
    return proc, folder / "state"


def daemon_pid(proc: subprocess.Popen[bytes], namespace: bool, timeout: float = 30.0) -> int:
    """The daemon's pid as this namespace sees it (unshare's child when namespaced)."""
    if not namespace:
        return proc.pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(proc.pid).children(recursive=True):
            if "daemon" in child.cmdline():
                return child.pid
        time.sleep(0.05)
    raise RuntimeError("the namespaced daemon did not start")


def wait_ticks(daemon: Watched, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tick = last_tick(daemon.state_dir)
        if tick and tick[0] >= count:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{daemon.label}: fewer than {count} ticks in {timeout} s")


def report(phase: str, daemons: list[Watched], interval: float, now: float) -> None:
    for daemon in daemons:
        gap = daemon.largest_gap(now)
        print(f"  {phase:<7} {daemon.label:<8} RSS peak {daemon.peak_rss / MB:7.1f} MB  "
              f"anon peak {daemon.peak_anon / MB:7.1f} MB  largest tick gap {gap:5.2f} s "
              f"({gap / interval:4.1f}x)  ticks {len(daemon.ticks)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the churn")
    parser.add_argument("--quiet-seconds", type=float, default=10.0)
    parser.add_argument("--after", type=float, default=15.0, help="watched after the churn")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--lifetime", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="5 s phases")
    parser.add_argument("--daemon-repo", type=Path, default=REPO,
                        help="run the daemons from this checkout (an older commit, say)")
    args = parser.parse_args()
    if args.quick:
        args.seconds = args.quiet_seconds = args.after = 5.0
    namespace = os.geteuid() == 0 and shutil.which("unshare") is not None
    group = ProcessGroup()
    work = Path(tempfile.mkdtemp(prefix="bench-argv-"))
    marker = f"argvchurn-{os.getpid()}"
    stop = threading.Event()
    started = [0]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        group.spawn(["sleep", "100000"])  # the group's leader: lives as long as the run
        churned_proc, churned_state = start_daemon(group, work, "churned", args.interval,
                                                   f"absent-{os.getpid()}", False,
                                                   args.daemon_repo)
        daemons = [Watched("churned", churned_proc.pid, churned_state)]
        if namespace:
            quiet_proc, quiet_state = start_daemon(group, work, "quiet", args.interval,
                                                   f"absent-{os.getpid()}", True,
                                                   args.daemon_repo)
            daemons.append(Watched("quiet", daemon_pid(quiet_proc, True), quiet_state))
        for daemon in daemons:
            wait_ticks(daemon, 3)
        print(f"argv churn: {BIG_ARGS} x 128 KiB arguments per process, {args.concurrency} at a "
              f"time, {args.lifetime:g} s each; interval {args.interval:g} s"
              + ("" if namespace else " (no unshare: no quiet daemon beside)"))
        watch_phase(daemons, args.quiet_seconds)
        report("quiet", daemons, args.interval, time.time())
        churner = threading.Thread(target=churn, args=(group, marker, stop, args.concurrency,
                                                       args.lifetime, started), daemon=True)
        churner.start()
        watch_phase(daemons, args.seconds)
        stop.set()
        churner.join(60)
        report("churn", daemons, args.interval, time.time())
        print(f"  {started[0]} processes with 1.4 MB command lines started during the churn")
        watch_phase(daemons, args.after)
        report("after", daemons, args.interval, time.time())
        for daemon in daemons:
            rss, anon = rss_of(daemon.pid)
            print(f"  end     {daemon.label:<8} RSS {rss / MB:7.1f} MB  anon {anon / MB:7.1f} MB")
    finally:
        stop.set()
        group.kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

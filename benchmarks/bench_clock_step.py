"""Ticks across a wall-clock step: the largest tick gap with a 1 h step back, beside no step.

Three ``telemetryd run`` daemons start side by side, each under libfaketime (Debian package
``faketime``) with its own offset file (``FAKETIME_TIMESTAMP_FILE``, ``FAKETIME_NO_CACHE=1``,
and ``FAKETIME_DONT_FAKE_MONOTONIC=1``: the monotonic clock stays real, as under an NTP step
or a resume). Half-way through the observed window one daemon's wall clock steps back an
hour, another's forward an hour; the third is not stepped (the baseline, same run, same
load, same preload). This process polls each daemon's ``status.json`` every 10 ms and times
each new tick count on its own monotonic clock (the daemons' timestamps are the faked ones).

Printed per daemon: ticks counted against what the interval allows (more would be bunched
ticks), and the largest gap between two ticks (the time since the last tick at the end of
the window counts too), as a multiple of the interval. Target: at most 3x with the step back.

Usage: .venv/bin/python benchmarks/bench_clock_step.py [--interval 0.5] [--seconds 20]
       [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.faketime import SteppedClock  # noqa: E402


@dataclass
class Stepped:
    """One daemon, its fake clock, the step it gets and the ticks seen."""

    name: str
    step: str | None
    proc: subprocess.Popen[bytes]
    state: Path
    clock: SteppedClock
    seen: list[tuple[int, float]] = field(default_factory=list)

    def poll(self) -> None:
        """Note a new tick count (and when this process saw it)."""
        try:
            last = json.loads((self.state / "status.json").read_text())["last_tick"]
        except (OSError, ValueError, KeyError, TypeError):
            return
        if last and (not self.seen or int(last["count"]) != self.seen[-1][0]):
            self.seen.append((int(last["count"]), time.monotonic()))

    def largest_gap(self, since: float, until: float) -> float:
        """The longest time between two ticks seen within [since, until], the tail included."""
        times = [at for _, at in self.seen if since <= at <= until]
        edges = [since, *times, until]
        return max(b - a for a, b in itertools.pairwise(edges))

    def ticks(self, since: float, until: float) -> int:
        """Ticks counted within [since, until]."""
        inside = [count for count, at in self.seen if since <= at <= until]
        return inside[-1] - inside[0] if len(inside) > 1 else 0


def start(folder: Path, name: str, step: str | None, interval: float) -> Stepped:
    """A daemon under its own fake clock, watching this process."""
    folder.mkdir()
    state = folder / "state"
    config = folder / "telemetryd.toml"
    config.write_text(
        f'[daemon]\ninterval = {interval}\nstate_dir = "{state}"\nlog_format = "json"\n'
        '[otlp]\nenabled = false\n[metrics]\nenabled = false\n'
        f'[[watch]]\nname = "bench"\npid = {os.getpid()}\n'
        'rss_warning = "100GiB"\nrss_critical = "200GiB"\n')
    clock = SteppedClock(folder)
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEMETRYD_CONFIG", "SENTRY_DSN", "STATE_DIRECTORY", "NOTIFY_SOCKET")}
    log = (folder / "daemon.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config), "run"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            env=clock.environ(env))
    return Stepped(name, step, proc, state, clock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=20.0, help="the observed window")
    parser.add_argument("--quick", action="store_true", help="a 6 s window (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 6.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory(prefix="tdbench-clock-") as tmp:
        daemons = [start(Path(tmp) / name, name, step, args.interval)
                   for name, step in (("no step", None), ("1 h back", "-1h"),
                                      ("1 h forward", "+1h"))]
        try:
            deadline = time.monotonic() + 60
            while not all(d.seen for d in daemons):
                if time.monotonic() > deadline:
                    raise SystemExit("a daemon never ticked; see its daemon.log")
                for daemon in daemons:
                    daemon.poll()
                time.sleep(0.01)
            time.sleep(max(2.0, 4 * args.interval))  # past start-up
            since = time.monotonic()
            step_at = since + args.seconds / 2
            until = since + args.seconds
            stepped = False
            while (now := time.monotonic()) < until:
                if not stepped and now >= step_at:
                    for daemon in daemons:
                        if daemon.step:
                            daemon.clock.set(daemon.step)
                    stepped = True
                for daemon in daemons:
                    daemon.poll()
                time.sleep(0.01)
        finally:
            for daemon in daemons:
                if daemon.proc.poll() is None:
                    daemon.proc.send_signal(signal.SIGTERM)
            for daemon in daemons:
                try:
                    daemon.proc.wait(30)
                except subprocess.TimeoutExpired:
                    daemon.proc.kill()
    report(daemons, args, since, until)


def report(daemons: list[Stepped], args: argparse.Namespace, since: float,
           until: float) -> None:
    """Print each daemon's figures beside the unstepped one."""
    allowed = args.seconds / args.interval
    print(f"bench_clock_step: interval {args.interval}s, window {args.seconds:.0f}s (step at "
          f"its middle), load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'daemon':<14}{'ticks':>7}{'allowed':>9}{'largest gap':>13}{'x interval':>12}")
    gaps = {}
    for daemon in daemons:
        gap = daemon.largest_gap(since, until)
        gaps[daemon.name] = gap
        print(f"{daemon.name:<14}{daemon.ticks(since, until):>7}{allowed:>9.0f}"
              f"{gap:>12.3f}s{gap / args.interval:>11.2f}x")
    back, quiet = gaps["1 h back"], gaps["no step"]
    print(f"largest tick gap across a 1 h step back: {back / args.interval:.2f}x the interval "
          f"({back / quiet:.2f}x the unstepped daemon's {quiet / args.interval:.2f}x); "
          f"target <= 3x")


if __name__ == "__main__":
    main()

"""Fair listeners: a well-behaved client's share of accepted requests under attack.

One ``telemetryd run`` (receiver and /metrics on loopback, default limits; the event store
filled beforehand so that ``/metrics`` answers about 5 MB) and, in the same run, one phase
per situation, each with the same well-behaved client (a fresh connection per request, a
10 s timeout, one request every ``--every`` seconds):

- quiet:        no attack (the baseline);
- churn:        8 threads opening connections to the receiver back to back, each held 2 s;
- half heads:   4 threads each writing half a request head to the receiver and hanging up,
                back to back;
- slow bodies:  40 requests to the receiver whose head comes whole and whose body comes at
                1 byte a second (each replaced when it is cut off);
- slow readers: 20 scrapes of /metrics that never read the answer (each replaced when cut).

Figures: per phase, the share of the client's exports to ``/v1/metrics`` answered 200 and
of its scrapes of ``/metrics`` answered 200, with the median and worst time per request.
Attacks run in child processes (tests/support/listener_attacks.py), never in this one.

Each attack runs until it is under way (5,000 connections opened, 2,000 half heads; every
slow body two bytes in; every unread scrape sent) before the client starts.

Usage: .venv/bin/python benchmarks/bench_listeners.py [--requests 16] [--every 0.5]
       [--agents 50] [--models 50] [--tools 20] [--only churn,half_heads,slow_bodies,slow_readers]
       [--quick]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_metrics import fill

from daemon.agents.store.event_store import EventStore
from daemon.runtime.paths import StatePaths
from tests.support.listener_attacks import Attack, Tally, exchange, well_behaved
from tests.unit.agents.payloads import claude_code_metrics, claude_resource

REPO = Path(__file__).resolve().parent.parent


def export_body() -> bytes:
    """A small valid Claude Code export."""
    request = claude_code_metrics(claude_resource(), "s", "claude-haiku-4-5", {"input": 7},
                                  0.01, time.time_ns())
    return bytes(request.SerializeToString())


@dataclass
class Daemon:
    """``telemetryd run`` as a child process, with its state dir."""

    proc: subprocess.Popen[bytes]
    state: Path

    def port(self, section: str) -> int:
        """The bound port of the ``otlp`` or ``metrics`` listener."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                listen = json.loads((self.state / "status.json").read_text())[section]["listen"]
                if listen:
                    return int(str(listen).rsplit(":", 1)[1])
            except (OSError, ValueError, KeyError, TypeError):
                pass
            if self.proc.poll() is not None:
                raise SystemExit("the daemon exited during start-up")
            time.sleep(0.1)
        raise SystemExit(f"the daemon never reported its {section} listener")

    def stop(self) -> None:
        """SIGTERM (only this daemon) and wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_daemon(folder: Path, agents: int, models: int, tools: int) -> Daemon:
    """Fill the event store, then start the daemon on it with default listener limits."""
    state = folder / "state"
    state.mkdir(mode=0o700)
    store = EventStore(StatePaths(state).events_db, 30.0, 1 << 34)
    fill(store, agents, models, tools)
    store.close()
    config = folder / "telemetryd.toml"
    config.write_text(
        f'[daemon]\ninterval = 1.0\nstate_dir = "{state}"\nlog_format = "json"\n'
        'log_level = "warning"\n'
        '[otlp]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n'
        f'[[watch]]\nname = "bench"\npid = {os.getpid()}\n'
        'rss_warning = "100GiB"\nrss_critical = "200GiB"\n'
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEMETRYD_CONFIG", "SENTRY_DSN", "STATE_DIRECTORY", "NOTIFY_SOCKET")}
    log = (folder / "daemon.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config), "run"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    return Daemon(proc, state)


def measure(otlp: int, metrics: int, requests: int, every: float) -> tuple[Tally, Tally]:
    """The well-behaved exporter and scraper, side by side, ``requests`` each."""
    body = export_body()
    headers = {"Content-Type": "application/x-protobuf"}
    scrapes: list[Tally] = []
    scraper = threading.Thread(target=lambda: scrapes.append(well_behaved(
        lambda: exchange(metrics, "GET", "/metrics"), requests, every)))
    scraper.start()
    exports = well_behaved(lambda: exchange(otlp, "POST", "/v1/metrics", body, headers),
                           requests, every)
    scraper.join()
    return exports, scrapes[0]


def under_attack(name: str, port: int, progress: int, otlp: int, metrics: int,
                 requests: int, every: float) -> tuple[Tally, Tally]:
    """Start the attack, wait until it has done ``progress`` (its own unit), then measure."""
    with Attack(name, port) as attack:
        deadline = time.monotonic() + 60
        while attack.progress < progress and time.monotonic() < deadline:
            time.sleep(0.05)
        return measure(otlp, metrics, requests, every)


def scrape_bytes(port: int) -> int:
    """The size of one /metrics answer."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as answer:
        return len(answer.read())


def line(name: str, tally: Tally) -> str:
    """One printed row."""
    median = statistics.median(tally.seconds) if tally.seconds else 0.0
    worst = max(tally.seconds, default=0.0)
    statuses = dict(sorted(collections.Counter(tally.statuses).items()))
    return (f"  {name:<8} {tally.share:>5.0%} ({tally.ok:>2}/{len(tally.statuses):<2}) "
            f"median {median * 1000:7.1f} ms  worst {worst:5.2f} s  statuses {statuses}")


# Attack, its target, and how much of it (in its own unit) is done before measuring: 5,000
# connections opened (2,000 half heads); every slow body 2 bytes in; every unread scrape sent.
PHASES = (("churn", "otlp", 5000), ("half_heads", "otlp", 2000), ("slow_bodies", "otlp", 80),
          ("slow_readers", "metrics", 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16, help="per client and phase")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between requests")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--tools", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a smoke run (small and short)")
    parser.add_argument("--only", default="", help="comma-separated attacks to run")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.every, args.agents, args.models, args.tools = 3, 0.2, 3, 3, 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    results: list[tuple[str, Tally, Tally]] = []
    with tempfile.TemporaryDirectory(prefix="tdbench-listeners-") as tmp:
        daemon = start_daemon(Path(tmp), args.agents, args.models, args.tools)
        try:
            ports = {"otlp": daemon.port("otlp"), "metrics": daemon.port("metrics")}
            size = scrape_bytes(ports["metrics"])
            results.append(("quiet", *measure(ports["otlp"], ports["metrics"], args.requests,
                                              args.every)))
            for name, target, progress in PHASES:
                if args.only and name not in args.only.split(","):
                    continue
                if args.quick:
                    progress = min(progress, 500)
                results.append((name.replace("_", " "), *under_attack(
                    name, ports[target], progress, ports["otlp"], ports["metrics"],
                    args.requests, args.every)))
        finally:
            daemon.stop()
    report(results, size, args)


def report(results: list[tuple[str, Tally, Tally]], size: int, args: argparse.Namespace) -> None:
    """Print every phase, then each attack's shares beside the quiet phase's."""
    print(f"bench_listeners: /metrics answer {size / 1e6:.1f} MB, {args.requests} requests "
          f"per client and phase, one every {args.every} s; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for name, exports, scrapes in results:
        print(f"{name}:")
        print(line("exports", exports))
        print(line("scrapes", scrapes))
    quiet_exports, quiet_scrapes = results[0][1], results[0][2]
    for name, exports, scrapes in results[1:]:
        print(f"exports accepted under {name}: {exports.share:.0%} (quiet: "
              f"{quiet_exports.share:.0%}, ratio {_ratio(exports, quiet_exports)}); "
              f"scrapes answered: {scrapes.share:.0%} (quiet: {quiet_scrapes.share:.0%}); "
              f"target >= 50 %")


def _ratio(attacked: Tally, quiet: Tally) -> str:
    return f"{attacked.share / quiet.share:.2f}" if quiet.share else "n/a"


if __name__ == "__main__":
    main()

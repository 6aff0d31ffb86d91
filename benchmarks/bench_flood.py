"""The real daemon under floods: largest gap between ticks and RSS, beside a quiet daemon.

Two ``telemetryd run`` processes start together (receiver and /metrics on loopback, one watch
on this process), and each first gets what a real Claude Code session sends (so both have
priced tokens: the price table is loaded). One is flooded, phase after phase; the other
stays quiet the whole run and is observed at the same moments, on the same loaded machine:
its RSS and tick gaps are the baseline of every phase.

- fat series:   4 clients sending new series of 128 attributes of 200 characters each
                (70 to a 3.7 MB request), for ``--fat-seconds`` (default 50);
- bombs:        4 clients sending 4 MB requests of 2 million empty attributes;
- cardinality:  4 clients sending, for ``--cardinality-seconds`` (default 60), requests that
                each bring a new service name, instance, sessions, models and 50 series;
- scrape:       8 clients fetching /metrics back to back (after the cardinality flood, so
                the totals are as large as the caps let them be);
- decode:       4 clients posting 20,000-point requests back to back;
- slow:         64 clients trickling one byte of a request head every second;
- connections:  8 clients opening, half-writing and dropping connections as fast as they can.

Figures per phase: the largest gap between successive ticks (read from ``status.json``
every 20 ms) of each daemon against the interval (target: at most 3x), the flooded daemon's
RSS (peak in the phase, and ``--settle-seconds`` after it ended) beside the quiet one's
(target: under 150 MB under every flood, and back near the quiet daemon's after it), and
the evictions and cuts the caps counted. Load generators run in child processes; this
process only polls.

Usage: .venv/bin/python benchmarks/bench_flood.py [--interval 0.5] [--phase-seconds 15]
       [--fat-seconds 50] [--cardinality-seconds 60] [--settle-seconds 5] [--quick]
       [--only fat,bombs,...]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _flood_loads import (
    attribute_bomb_load,
    cardinality_load,
    cardinality_request,
    connection_load,
    decode_load,
    fat_series_load,
    ordinary_exports,
    post,
    scrape_load,
    slow_load,
)

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000
RSS_TARGET_BYTES = 150 * MB


@dataclass
class Daemon:
    """``telemetryd run`` as a child process, with its state dir."""

    proc: subprocess.Popen[bytes]
    state: Path

    def status(self) -> dict[str, object]:
        """status.json as last written ({} while it is being replaced)."""
        try:
            return dict(json.loads((self.state / "status.json").read_text()))
        except (OSError, ValueError):
            return {}

    def port(self, section: str) -> int:
        """The bound port of the ``otlp`` or ``metrics`` listener."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listen = (self.status().get(section) or {}).get("listen")  # type: ignore[attr-defined]
            if listen:
                return int(str(listen).rsplit(":", 1)[1])
            time.sleep(0.1)
        raise SystemExit(f"the daemon never reported its {section} listener")

    def rss(self) -> int:
        """Resident memory now."""
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_daemon(folder: Path, interval: float) -> Daemon:
    """Start the daemon with both listeners on ephemeral loopback ports."""
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / "state"
    config = folder / "telemetryd.toml"
    config.write_text(
        f'[daemon]\ninterval = {interval}\nstate_dir = "{state}"\nlog_format = "json"\n'
        f'log_level = "warning"\n'
        '[otlp]\nlisten = "127.0.0.1:0"\ntrust = "any"\n[metrics]\nlisten = "127.0.0.1:0"\n'
        f'[[watch]]\nname = "bench"\npid = {os.getpid()}\n'
        'rss_warning = "100GiB"\nrss_critical = "200GiB"\n'
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEMETRYD_CONFIG", "SENTRY_DSN", "STATE_DIRECTORY", "NOTIFY_SOCKET")}
    log = (folder / "daemon.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config), "run"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    return Daemon(proc, state)


class TickWatch:
    """The ticks status.json shows, polled: the largest gap between two of them."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.last: tuple[int, float] | None = None
        self.gaps: list[float] = []
        self.first: int | None = None
        self.count = 0

    def poll(self) -> None:
        tick = self.daemon.status().get("last_tick")
        if isinstance(tick, dict):
            count, at = int(tick["count"]), float(tick["at"])
            self.first = count if self.first is None else self.first
            if self.last is not None and count > self.last[0]:
                # Polled every 20 ms: one tick per poll in practice; if several, their mean.
                self.gaps.append((at - self.last[1]) / (count - self.last[0]))
            self.last, self.count = (count, at), count

    def largest_gap(self, seconds: float) -> float:
        # The time since the last tick counts as a gap too: a stalled tick loop shows here.
        tail = [time.time() - self.last[1]] if self.last is not None else []
        return max(self.gaps + tail, default=seconds)

    def ticks(self) -> int:
        return 0 if self.first is None else self.count - self.first


@dataclass
class PhaseResult:
    """What one phase measured, for the flooded daemon and the quiet one beside it."""

    name: str
    seconds: float
    ticks: int
    max_gap_seconds: float
    quiet_gap_seconds: float
    peak_rss: int
    quiet_rss: int
    after_rss: int = 0
    quiet_after_rss: int = 0


def observe(flooded: Daemon, quiet: Daemon, seconds: float) -> PhaseResult:
    """Poll both daemons' ticks and RSS for ``seconds``."""
    watches = TickWatch(flooded), TickWatch(quiet)
    peak = quiet_peak = 0
    started = time.monotonic()
    next_rss = started
    while time.monotonic() - started < seconds:
        for watch in watches:
            watch.poll()
        now = time.monotonic()
        if now >= next_rss:
            peak, quiet_peak = max(peak, flooded.rss()), max(quiet_peak, quiet.rss())
            next_rss = now + 0.25
        time.sleep(0.02)
    peak, quiet_peak = max(peak, flooded.rss()), max(quiet_peak, quiet.rss())
    return PhaseResult("", seconds, watches[0].ticks(), watches[0].largest_gap(seconds),
                       watches[1].largest_gap(seconds), peak, quiet_peak)


def run_phase(flooded: Daemon, quiet: Daemon, name: str, load: Callable[..., None] | None,
              port: int, clients: int, seconds: float, settle: float) -> PhaseResult:
    """Run ``clients`` generators of ``load`` while observing both daemons, then let the
    flooded one settle and read both RSS again."""
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    children = [context.Process(target=load, args=(port, stop, seed), daemon=True)
                for seed in range(clients)] if load else []
    for child in children:
        child.start()
    try:
        result = observe(flooded, quiet, seconds)
    finally:
        stop.set()
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
    time.sleep(settle)
    result.name, result.after_rss, result.quiet_after_rss = name, flooded.rss(), quiet.rss()
    return result


PHASES: list[tuple[str, Callable[..., None] | None, str, int]] = [
    # (name, load, listener, clients); the order matters: see the module docstring.
    ("quiet (baseline)", None, "otlp", 0),
    ("fat series", fat_series_load, "otlp", 4),
    ("attribute bombs", attribute_bomb_load, "otlp", 4),
    ("cardinality flood", cardinality_load, "otlp", 4),
    ("/metrics scrape flood", scrape_load, "metrics", 8),
    ("decode flood", decode_load, "otlp", 4),
    ("slow clients", slow_load, "otlp", 4),
    ("connection flood", connection_load, "otlp", 8),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--phase-seconds", type=float, default=15.0)
    parser.add_argument("--fat-seconds", type=float, default=50.0)
    parser.add_argument("--cardinality-seconds", type=float, default=60.0)
    parser.add_argument("--settle-seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="1 s phases (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated floods to run (fat,bombs,"
                        "cardinality,scrape,decode,slow,connection); default all")
    args = parser.parse_args()
    if args.quick:
        args.phase_seconds = args.fat_seconds = args.cardinality_seconds = 1.0
        args.settle_seconds = 0.5
    lengths = {"fat series": args.fat_seconds, "cardinality flood": args.cardinality_seconds}
    phases = PHASES
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        phases = [p for p in PHASES if p[1] is None or any(w in p[0] for w in wanted)]
    with tempfile.TemporaryDirectory(prefix="tdbench-flood-") as tmp:
        flooded = start_daemon(Path(tmp) / "flooded", args.interval)
        quiet = start_daemon(Path(tmp) / "quiet", args.interval)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        try:
            ports = {"otlp": flooded.port("otlp"), "metrics": flooded.port("metrics")}
            if not (ordinary_exports(ports["otlp"]) and ordinary_exports(quiet.port("otlp"))):
                raise SystemExit("a daemon refused an ordinary export")
            time.sleep(max(3.0, 6 * args.interval))  # past start-up and the first ticks
            results = [run_phase(flooded, quiet, name, load, ports[listener], clients,
                                 lengths.get(name, args.phase_seconds), args.settle_seconds)
                       for name, load, listener, clients in phases]
            counters = caps_counted(ports["metrics"])
            still_answers = post(ports["otlp"], cardinality_request(-1)) == 200
        finally:
            flooded.stop()
            quiet.stop()
    report(results, args, counters, still_answers)


def caps_counted(metrics_port: int) -> dict[str, int]:
    """What the caps evicted, cut and refused, from the flooded daemon's /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=60)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    found: dict[str, int] = {}
    for name, family, label in (("evicted", "telemetryd_otlp_evicted_total", "kind"),
                                ("cut", "telemetryd_otlp_truncated_total", "kind"),
                                ("refused", "telemetryd_otlp_requests_refused_total", "reason")):
        for match in re.finditer(family + r"\{[^}]*" + label + r'="([^"]+)"[^}]*\} (\S+)', text):
            found[f"{name}.{match.group(1)}"] = int(float(match.group(2)))
    return found


def report(results: list[PhaseResult], args: argparse.Namespace, counted: dict[str, int],
           still_answers: bool) -> None:
    """Print the figures, each beside the quiet daemon's."""
    interval = args.interval
    print(f"bench_flood: interval {interval}s, load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count() or 1} cores; quiet = a second daemon, same run, no load")
    print(f"{'phase':<23}{'secs':>5}{'ticks':>6}{'max gap':>9}{'quiet':>7}"
          f"{'peak RSS':>10}{'quiet':>8}{'ratio':>7}{'after':>8}{'quiet':>8}")
    for r in results:
        print(f"{r.name:<23}{r.seconds:>5.0f}{r.ticks:>6}{r.max_gap_seconds / interval:>8.2f}x"
              f"{r.quiet_gap_seconds / interval:>6.2f}x{r.peak_rss / MB:>8.1f}MB"
              f"{r.quiet_rss / MB:>6.1f}MB{r.peak_rss / r.quiet_rss:>6.2f}x"
              f"{r.after_rss / MB:>6.1f}MB{r.quiet_after_rss / MB:>6.1f}MB")
    floods = results[1:] or results
    worst = max(floods, key=lambda r: r.max_gap_seconds)
    quiet_worst = max(r.quiet_gap_seconds for r in floods)
    print(f"largest tick gap under flood: {worst.max_gap_seconds / interval:.2f}x the interval "
          f"({worst.name}); quiet daemon beside it {quiet_worst / interval:.2f}x; target <= 3x")
    heaviest = max(floods, key=lambda r: r.peak_rss)
    ratio = heaviest.peak_rss / heaviest.quiet_rss
    print(f"largest RSS under flood: {heaviest.peak_rss / MB:.1f} MB ({heaviest.name}), quiet "
          f"daemon {heaviest.quiet_rss / MB:.1f} MB ({ratio:.2f}x); target < 150 MB: "
          f"{'met' if heaviest.peak_rss < RSS_TARGET_BYTES else 'NOT MET'}")
    last = results[-1]
    print(f"after the last flood ({args.settle_seconds:g} s settled): {last.after_rss / MB:.1f} MB "
          f"against the quiet daemon's {last.quiet_after_rss / MB:.1f} MB "
          f"({last.after_rss / last.quiet_after_rss:.2f}x)")
    print(f"counted by the caps: {counted}; receiver answers after the floods: "
          f"{'yes' if still_answers else 'NO'}")


if __name__ == "__main__":
    threading.current_thread().name = "bench-flood"
    main()

"""The watchdog's cost: tick time, CPU at 1 s, RSS over many ticks, and report latency.

Run ``python benchmarks/bench_tick.py [--sizes 50,200,1000] [--ticks 10000] [--quick]``.
For each size N it starts N real process trees (``sh`` + a ``sleep`` child), watches
them with one ``cmdline`` watch and ``include_children = true``, and measures:

1. one full daemon tick (the real ``Service.tick``, real state dir, status written)
   against a minimal raw /proc reader written here, as a ratio;
2. the real daemon (``python -m daemon run``) CPU as % of one core at a 1 s interval;
3. RSS at the start of a long in-process run, after 1,000 ticks and at its end;
and then the latency from an RSS jump over a critical level to the report on disk.
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
from _procs import ProcessGroup, leak_jump, spawn_leaker, spawn_trees  # noqa: E402

from crash_reports.spool.envelope import parse_envelope  # noqa: E402
from daemon.config.parse import parse_config_text  # noqa: E402
from daemon.config.schema import Config  # noqa: E402
from daemon.runtime.service import Service  # noqa: E402
from daemon.status.snapshot import StatusSnapshot, StatusUnreadableError  # noqa: E402
from daemon.status.status_file import read_snapshot  # noqa: E402
from daemon.system.logs import configure_logging  # noqa: E402

MiB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Targets from issue 2 ("Performance").
TARGET_CPU_PERCENT_AT_50 = 1.2
TARGET_RATIO = 2.0
TARGET_RSS_BYTES = 60 * MiB
TARGET_GROWTH_BYTES = 1 * MiB
TARGET_LATENCY_SLACK_SECONDS = 0.100

CONFIG_TEMPLATE = """
[daemon]
interval = {interval}
state_dir = "{state_dir}"
log_format = "json"
log_level = "info"

[otlp]
enabled = false

[metrics]
enabled = false

[[watch]]
name = "bench-trees"
cmdline = "{marker}-[0-9]+$"
include_children = true
rss_warning = "64GiB"
rss_critical = "128GiB"
cpu_warning = 5000
cpu_critical = 10000
sustained = 3
{extra}
"""

LEAK_WATCH = """
[[watch]]
name = "bench-leaker"
cmdline = "{marker}$"
include_children = true
rss_warning = {warning}
rss_critical = {critical}
cpu_warning = 5000
cpu_critical = 10000
sustained = {sustained}
cooldown = 600
"""


# --- small helpers ---------------------------------------------------------------------

def own_rss_bytes() -> int:
    """This process's RSS from /proc/self/statm."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * PAGE


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty sequence."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(seconds: float) -> str:
    """Seconds as milliseconds with two decimals."""
    return f"{seconds * 1000:.2f}"


def mb(size_bytes: float) -> str:
    """Bytes as MiB with one decimal."""
    return f"{size_bytes / MiB:.1f}"


def say(text: str) -> None:
    """Progress on stdout, flushed so a CI log shows where a run is."""
    print(text, flush=True)


def wait_for(check: Callable[[], Any], timeout_seconds: float, what: str,
             poll_seconds: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; raise after the deadline."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_seconds:.0f}s waiting for {what}")
        time.sleep(poll_seconds)


def make_config(state_dir: Path, marker: str, interval: float, extra: str = "") -> str:
    """The TOML config the in-process service and the daemon subprocess both use."""
    return CONFIG_TEMPLATE.format(interval=interval, state_dir=state_dir, marker=marker,
                                  extra=extra)


def parse(text: str) -> Config:
    """Parse a config text as the CLI would (no environment)."""
    return parse_config_text(text, "<benchmark>", {}, psutil.virtual_memory().total)


# --- the raw reader the daemon is compared with ------------------------------------------

class RawReader:
    """The same job with nothing around it: scan /proc/*/stat, parent map, tree totals."""

    def __init__(self, roots: Sequence[int]) -> None:
        self.roots = list(roots)

    def tick(self) -> dict[int, tuple[int, float]]:
        """RSS bytes and CPU seconds totalled over each root's tree."""
        stats: dict[int, tuple[int, float]] = {}
        children: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            fields = data[data.rindex(b")") + 2:].split()
            pid = int(name)
            stats[pid] = (int(fields[21]) * PAGE, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
            children.setdefault(int(fields[1]), []).append(pid)
        totals: dict[int, tuple[int, float]] = {}
        for root in self.roots:
            rss, cpu = 0, 0.0
            stack = [root]
            while stack:
                pid = stack.pop()
                found = stats.get(pid)
                if found is not None:
                    rss += found[0]
                    cpu += found[1]
                stack.extend(children.get(pid, ()))
            totals[root] = (rss, cpu)
        return totals


# --- in-process ticks --------------------------------------------------------------------

@dataclass
class Timings:
    """Wall and CPU (this thread) seconds of a series of calls."""

    wall: list[float]
    cpu: list[float]

    def add(self, call: Callable[[], object]) -> None:
        """Time one call."""
        wall, cpu = time.perf_counter(), time.thread_time()
        call()
        self.cpu.append(time.thread_time() - cpu)
        self.wall.append(time.perf_counter() - wall)


@dataclass
class InProcessResult:
    """Tick timings and RSS checkpoints of the in-process run for one size."""

    watched_trees: int
    members: int
    pair_daemon: Timings
    pair_raw: Timings
    long_ticks: Timings
    rss_start: int
    rss_after_1000: int | None
    rss_end: int
    rss_series: list[int]
    ticks_requested: int
    ticks_run: int


@contextlib.contextmanager
def driven_service(config: Config) -> Iterator[Service]:
    """A Service started for real, whose scheduler is then stopped so the caller drives ticks."""
    service = Service(config)
    service.startup()
    try:
        wait_for(lambda: service.tick_count >= 1, 30, "the scheduler's first tick")
        assert service.running is not None and service.running.scheduler is not None
        service.running.scheduler.shutdown(wait=True)
        service.running.scheduler = None
        yield service
    finally:
        service.shutdown()


def run_in_process(config: Config, roots: Sequence[int], pairs: int, ticks: int,
                   max_seconds: float) -> InProcessResult:
    """Interleave daemon ticks with raw ticks, then run a long series of daemon ticks."""
    raw = RawReader(roots)
    with driven_service(config) as service:
        warm_start = time.perf_counter()
        for _ in range(20):  # warm caches (selection verdicts, identities, CPU history)
            service.tick()
            raw.tick()
        per_pair = (time.perf_counter() - warm_start) / 20
        # At 1,000 trees a pair takes ~0.1 s: keep this phase to a third of the budget.
        pairs = min(pairs, max(100, int(max_seconds / 3 / per_pair)))
        tracked = [t for (w, _), t in service.ticker.monitor.tracked.items() if w == "bench-trees"]
        members = sum(t.last.members for t in tracked)
        pair_daemon, pair_raw = Timings([], []), Timings([], [])
        for index in range(pairs):
            # Alternate which goes first so neither always runs on a warm cache.
            if index % 2:
                pair_raw.add(raw.tick)
                pair_daemon.add(service.tick)
            else:
                pair_daemon.add(service.tick)
                pair_raw.add(raw.tick)
        estimate = statistics.median(pair_daemon.wall)
        affordable = max(1000, int(max_seconds / max(estimate, 1e-6)))
        ticks_run = min(ticks, affordable)
        long_ticks = Timings([], [])
        rss_start = own_rss_bytes()
        rss_after_1000: int | None = None
        rss_series = [rss_start]
        for index in range(ticks_run):
            long_ticks.add(service.tick)
            if (index + 1) % 1000 == 0:
                rss_series.append(own_rss_bytes())
                if index + 1 == 1000:
                    rss_after_1000 = rss_series[-1]
        rss_end = own_rss_bytes()
    return InProcessResult(len(tracked), members, pair_daemon, pair_raw, long_ticks,
                           rss_start, rss_after_1000, rss_end, rss_series, ticks, ticks_run)


# --- the real daemon as a subprocess -----------------------------------------------------

@dataclass
class DaemonRun:
    """CPU and RSS of the real daemon over a measured window."""

    cpu_percent: float
    window_seconds: float
    ticks: int
    rss_bytes: int
    last_tick_ms: float
    processes_scanned: int


def daemon_env() -> dict[str, str]:
    """The environment for the daemon subprocess: ours, without telemetryd or systemd settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEMETRYD_CONFIG", "SENTRY_DSN", "STATE_DIRECTORY", "NOTIFY_SOCKET",
                        "WATCHDOG_USEC", "WATCHDOG_PID")}
    env["PYTHONPATH"] = str(REPO)
    return env


def status_of(state_dir: Path) -> StatusSnapshot | None:
    """The daemon's status snapshot, or None while there is none."""
    try:
        return read_snapshot(state_dir / "status.json")
    except StatusUnreadableError:
        return None


def tick_count(state_dir: Path) -> int:
    """How many ticks the daemon has done, per its status snapshot."""
    snapshot = status_of(state_dir)
    if snapshot is None or snapshot.last_tick is None:
        return 0
    return snapshot.last_tick.count


@contextlib.contextmanager
def daemon_process(group: ProcessGroup, work: Path, config_text: str) -> Iterator[int]:
    """``python -m daemon --config X run`` in our process group; SIGTERM and reap on exit."""
    config_path = work / "telemetryd.toml"
    config_path.write_text(config_text, encoding="utf-8")
    with open(work / "daemon.log", "ab") as log_file:
        proc = group.spawn([sys.executable, "-m", "daemon", "--config", str(config_path), "run"],
                           stdout=log_file.fileno(), env=daemon_env(), cwd=REPO)
    try:
        yield proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except Exception:
            proc.kill()
            proc.wait()
        group.forget(proc)


def run_daemon_cpu(group: ProcessGroup, work: Path, marker: str, seconds: float) -> DaemonRun:
    """CPU % of one core and RSS of the real daemon at a 1 s interval, start-up excluded."""
    state_dir = work / "state"
    with daemon_process(group, work, make_config(state_dir, marker, 1.0)) as pid:
        wait_for(lambda: tick_count(state_dir) >= 3, 60, "the daemon's third tick", 0.1)
        proc = psutil.Process(pid)
        times = proc.cpu_times()
        cpu_before, wall_before = times.user + times.system, time.monotonic()
        ticks_before = tick_count(state_dir)
        time.sleep(seconds)
        times = proc.cpu_times()
        cpu_after, wall_after = times.user + times.system, time.monotonic()
        ticks_after = tick_count(state_dir)
        rss = proc.memory_info().rss
        snapshot = status_of(state_dir)
        last = snapshot.last_tick if snapshot else None
    window = wall_after - wall_before
    return DaemonRun((cpu_after - cpu_before) / window * 100.0, window, ticks_after - ticks_before,
                     rss, (last.duration_seconds if last else 0.0) * 1000,
                     last.processes_scanned if last else 0)


# --- report latency ----------------------------------------------------------------------

@dataclass
class LatencyTrial:
    """One jump over critical and when its report appeared."""

    jump_started: float
    jump_seconds: float
    seen_at: float
    renamed_at: float

    @property
    def latency(self) -> float:
        """From the start of the jump to the report seen in the spool (conservative)."""
        return self.seen_at - self.jump_started


def leaker_state(state_dir: Path, pid: int) -> str | None:
    """The daemon's RSS level for the leaker's pid, or None while it is not listed."""
    snapshot = status_of(state_dir)
    for watch in snapshot.watches if snapshot else ():
        for proc in watch.processes:
            if proc.pid == pid:
                return proc.rss_level.label
    return None


def at_level(state_dir: Path, pid: int, level: str | None) -> bool:
    """Whether the daemon lists the pid at this RSS level (None: not listed)."""
    return leaker_state(state_dir, pid) == level


def new_critical_reports(pending: Path, known: set[str]) -> set[str]:
    """rss_critical envelopes that were not there before."""
    return critical_reports(pending) - known


def critical_reports(pending: Path) -> set[str]:
    """Names of rss_critical envelopes in the spool's pending folder."""
    found = set()
    for entry in os.scandir(pending):
        if entry.name.endswith(".env") and not entry.name.startswith("."):
            try:
                if parse_envelope(Path(entry.path).read_bytes()).kind == "rss_critical":
                    found.add(entry.name)
            except (OSError, ValueError):
                continue
    return found


def run_latency(group: ProcessGroup, work: Path, background_trees: int, trials: int,
                interval: float, sustained: int) -> list[LatencyTrial]:
    """Leakers jump over critical under the real daemon; time until each report is on disk."""
    marker = f"tdbench-{uuid.uuid4().hex[:8]}"
    leak_marker = f"tdbench-leak-{uuid.uuid4().hex[:8]}"
    critical = 96 * MiB
    extra = LEAK_WATCH.format(marker=leak_marker, warning=critical // 2, critical=critical,
                              sustained=sustained)
    state_dir = work / "state"
    pending = state_dir / "spool" / "pending"
    spawn_trees(group, background_trees, marker)
    results: list[LatencyTrial] = []
    with daemon_process(group, work, make_config(state_dir, marker, interval, extra)):
        wait_for(lambda: tick_count(state_dir) >= 3, 60, "the daemon's third tick", 0.1)
        for _ in range(trials):
            leaker = spawn_leaker(group, leak_marker, critical - 4 * MiB, 8 * MiB)
            pid = leaker.pid
            wait_for(partial(at_level, state_dir, pid, "warning"), 30, "the leaker at warning")
            known = critical_reports(pending)
            # Jump at a random point of the tick period, so trials cover every phase.
            time.sleep(random.uniform(0.0, interval))
            started, ended = leak_jump(leaker)
            new = wait_for(partial(new_critical_reports, pending, known), 30,
                           "the critical report", poll_seconds=0.002)
            seen = time.time()
            renamed = os.stat(pending / sorted(new)[0]).st_ctime_ns / 1e9
            results.append(LatencyTrial(started, ended - started, seen, renamed))
            leaker.kill()
            leaker.wait()
            group.forget(leaker)
            wait_for(partial(at_level, state_dir, pid, None), 30,
                     "the daemon to see the leaker exit")
    return results


# --- output ------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    """A word for the table."""
    return "ok" if ok else "MISS"


def print_size(size: int, result: InProcessResult, daemon: DaemonRun | None) -> dict[str, Any]:
    """Print the figures of one size and return them for the summary table."""
    pair_d, pair_r, long = result.pair_daemon, result.pair_raw, result.long_ticks
    ratio_cpu = statistics.median(pair_d.cpu) / statistics.median(pair_r.cpu)
    ratio_wall = statistics.median(pair_d.wall) / statistics.median(pair_r.wall)
    growth_total = result.rss_end - result.rss_start
    growth_after_warmup = (result.rss_end - result.rss_after_1000
                           if result.rss_after_1000 is not None else None)
    say(f"  watched trees {result.watched_trees} (members {result.members})")
    say(f"  daemon tick  (interleaved with raw, {len(pair_d.wall)} pairs) wall median "
        f"{ms(statistics.median(pair_d.wall))} ms p99 {ms(percentile(pair_d.wall, 0.99))} ms; "
        f"CPU median {ms(statistics.median(pair_d.cpu))} ms p99 "
        f"{ms(percentile(pair_d.cpu, 0.99))} ms")
    say(f"  raw reader   wall median {ms(statistics.median(pair_r.wall))} ms p99 "
        f"{ms(percentile(pair_r.wall, 0.99))} ms; CPU median {ms(statistics.median(pair_r.cpu))}"
        f" ms p99 {ms(percentile(pair_r.cpu, 0.99))} ms")
    say(f"  ratio        daemon/raw: {ratio_cpu:.2f}x by CPU time, {ratio_wall:.2f}x by wall time")
    note = ("" if result.ticks_run == result.ticks_requested else
            f" (asked for {result.ticks_requested}; capped by --max-seconds-per-size)")
    say(f"  long run     {result.ticks_run} ticks{note}: wall median "
        f"{ms(statistics.median(long.wall))} ms p99 {ms(percentile(long.wall, 0.99))} ms max "
        f"{ms(max(long.wall))} ms; CPU median {ms(statistics.median(long.cpu))} ms p99 "
        f"{ms(percentile(long.cpu, 0.99))} ms")
    after_1000 = mb(result.rss_after_1000) if result.rss_after_1000 is not None else "-"
    say(f"  RSS          start {mb(result.rss_start)} MiB, after 1000 ticks {after_1000} MiB, "
        f"after {result.ticks_run} {mb(result.rss_end)} MiB: growth "
        f"{growth_total / 1024:+.0f} KiB total"
        + (f", {growth_after_warmup / 1024:+.0f} KiB after the first 1000"
           if growth_after_warmup is not None else ""))
    say("  RSS series   every 1000 ticks (MiB): "
        + " ".join(mb(value) for value in result.rss_series))
    if daemon is not None:
        say(f"  daemon       {daemon.cpu_percent:.2f} % of one core at 1 s over "
            f"{daemon.window_seconds:.1f} s ({daemon.ticks} ticks, last tick "
            f"{daemon.last_tick_ms:.2f} ms, {daemon.processes_scanned} processes scanned); "
            f"RSS {mb(daemon.rss_bytes)} MiB")
    return {
        "size": size,
        "processes_scanned": daemon.processes_scanned if daemon else None,
        "tick_wall_median_ms": statistics.median(long.wall) * 1000,
        "tick_wall_p99_ms": percentile(long.wall, 0.99) * 1000,
        "tick_cpu_median_ms": statistics.median(long.cpu) * 1000,
        "tick_cpu_p99_ms": percentile(long.cpu, 0.99) * 1000,
        "raw_cpu_median_ms": statistics.median(pair_r.cpu) * 1000,
        "raw_wall_median_ms": statistics.median(pair_r.wall) * 1000,
        "ratio_cpu": ratio_cpu,
        "ratio_wall": ratio_wall,
        "cpu_percent": daemon.cpu_percent if daemon else None,
        "daemon_rss_bytes": daemon.rss_bytes if daemon else None,
        "inproc_rss_bytes": result.rss_end,
        "growth_bytes": growth_total,
        "growth_after_warmup_bytes": growth_after_warmup,
        "ticks_run": result.ticks_run,
    }


def print_table(rows: list[dict[str, Any]], latency: list[LatencyTrial],
                budget_seconds: float) -> None:
    """The compact summary with each figure checked against its target."""
    say("")
    say("                 daemon tick (ms)          raw (ms)    daemon/raw    daemon @1s"
        "        in-process RSS (MiB)")
    say(" size  procs  wall med  p99  cpu med  p99   cpu  wall   cpu  wall    CPU%  RSS MiB"
        "   end  growth KiB (ticks)")
    for row in rows:
        cpu = f"{row['cpu_percent']:.2f}" if row["cpu_percent"] is not None else "-"
        drss = mb(row["daemon_rss_bytes"]) if row["daemon_rss_bytes"] is not None else "-"
        say(f"{row['size']:>5} {row['processes_scanned'] or 0:>6} "
            f"{row['tick_wall_median_ms']:>9.2f} {row['tick_wall_p99_ms']:>4.1f} "
            f"{row['tick_cpu_median_ms']:>8.2f} {row['tick_cpu_p99_ms']:>4.1f} "
            f"{row['raw_cpu_median_ms']:>5.2f} {row['raw_wall_median_ms']:>5.2f} "
            f"{row['ratio_cpu']:>5.2f} {row['ratio_wall']:>5.2f} {cpu:>7} {drss:>8} "
            f"{mb(row['inproc_rss_bytes']):>5} {row['growth_bytes'] / 1024:>+7.0f} "
            f"({row['ticks_run']})")
    say("")
    say("targets:")
    for row in rows:
        checks = [f"tick/raw {row['ratio_cpu']:.2f}x (CPU) < {TARGET_RATIO}x: "
                  f"{verdict(row['ratio_cpu'] < TARGET_RATIO)}",
                  f"growth {row['growth_bytes'] / 1024:+.0f} KiB < 1 MiB: "
                  f"{verdict(row['growth_bytes'] < TARGET_GROWTH_BYTES)}"]
        if row["daemon_rss_bytes"] is not None:
            checks.append(f"daemon RSS {mb(row['daemon_rss_bytes'])} MiB < 60 MiB: "
                          f"{verdict(row['daemon_rss_bytes'] < TARGET_RSS_BYTES)}")
        if row["cpu_percent"] is not None and row["size"] == 50:
            checks.append(f"CPU {row['cpu_percent']:.2f}% < {TARGET_CPU_PERCENT_AT_50}%: "
                          f"{verdict(row['cpu_percent'] < TARGET_CPU_PERCENT_AT_50)}")
        say(f"  {row['size']:>4}: " + "; ".join(checks))
    if latency:
        slack = [trial.latency - budget_seconds for trial in latency]
        say(f"  report latency - sustained x interval: max {max(slack) * 1000:+.0f} ms, "
            f"median {statistics.median(slack) * 1000:+.0f} ms over {len(slack)} jumps; "
            f"< +100 ms: {verdict(max(slack) < TARGET_LATENCY_SLACK_SECONDS)}")


# --- main --------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; --quick shrinks every phase for a CI smoke run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", help="watched trees per run, comma-separated "
                        "(default 50,200,1000; quick 50)")
    parser.add_argument("--ticks", type=int, help="ticks in the long in-process run "
                        "(default 10000; quick 1500)")
    parser.add_argument("--pairs", type=int, help="interleaved daemon/raw tick pairs "
                        "(default 1000; quick 200)")
    parser.add_argument("--cpu-seconds", type=float, help="daemon CPU window at 1 s "
                        "(default 40; quick 8)")
    parser.add_argument("--max-seconds-per-size", type=float, default=120.0,
                        help="cap on the long run's duration (fewer ticks if it would exceed "
                        "it) and, a third of it, on the interleaved pairs")
    parser.add_argument("--latency-trials", type=int, help="jumps over critical (default 8; "
                        "quick 2)")
    parser.add_argument("--quick", action="store_true", help="small sizes, few ticks (< 60 s)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    quick = args.quick
    args.sizes = [int(s) for s in (args.sizes or ("50" if quick else "50,200,1000")).split(",")]
    args.ticks = args.ticks or (1500 if quick else 10_000)
    args.pairs = args.pairs or (200 if quick else 1000)
    args.cpu_seconds = args.cpu_seconds or (8.0 if quick else 40.0)
    args.latency_trials = (args.latency_trials if args.latency_trials is not None
                           else (2 if quick else 8))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every phase and print the figures."""
    args = parse_args(argv)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the run
    configure_logging("json", "info", stream=devnull)
    work = Path(tempfile.mkdtemp(prefix="telemetryd-bench-"))
    group = ProcessGroup()

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    rows: list[dict[str, Any]] = []
    latency: list[LatencyTrial] = []
    started = time.monotonic()
    say(f"telemetryd tick benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"psutil {psutil.__version__}, load {os.getloadavg()[0]:.2f}")
    try:
        for size in args.sizes:
            marker = f"tdbench-{uuid.uuid4().hex[:8]}"
            size_dir = work / f"size-{size}"
            size_dir.mkdir()
            say(f"\n== {size} watched trees (sh + sleep child each), include_children ==")
            roots = spawn_trees(group, size, marker)
            config = parse(make_config(size_dir / "inproc-state", marker, 1.0))
            result = run_in_process(config, roots, args.pairs, args.ticks,
                                    args.max_seconds_per_size)
            if result.watched_trees != size or result.members != 2 * size:
                raise RuntimeError(f"the daemon watched {result.watched_trees} trees with "
                                   f"{result.members} members; expected {size} and {2 * size}")
            daemon_dir = size_dir / "daemon"
            daemon_dir.mkdir()
            daemon = run_daemon_cpu(group, daemon_dir, marker, args.cpu_seconds)
            rows.append(print_size(size, result, daemon))
            group.kill_all()
        interval, sustained = 0.2, 2
        if args.latency_trials:
            say(f"\n== report latency: interval {interval} s, sustained {sustained}, "
                f"{args.sizes[0]} background trees ==")
            latency_dir = work / "latency"
            latency_dir.mkdir()
            latency = run_latency(group, latency_dir, args.sizes[0], args.latency_trials,
                                  interval, sustained)
            for trial in latency:
                say(f"  jump took {trial.jump_seconds * 1000:.1f} ms; report seen after "
                    f"{trial.latency * 1000:.0f} ms (renamed into the spool after "
                    f"{(trial.renamed_at - trial.jump_started) * 1000:.0f} ms); minus "
                    f"sustained x interval: "
                    f"{(trial.latency - sustained * interval) * 1000:+.0f} ms")
        print_table(rows, latency, sustained * interval)
        say(f"\ntotal {time.monotonic() - started:.0f} s")
        if args.json is not None:
            args.json.write_text(json.dumps({
                "sizes": rows,
                "latency_minus_budget_ms": [(t.latency - sustained * interval) * 1000
                                            for t in latency],
            }, indent=2), encoding="utf-8")
    finally:
        group.kill_all()
        shutil.rmtree(work, ignore_errors=True)
        devnull.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The status page, its API and `telemetryd top`: what they cost, and what they cost the tick.

1. First load of ``GET /`` over HTTP with 24 hours of history for 20 trees in a real stats
   database (a minute tier for the day, a fine tier at a 2 s interval for the last hour),
   plus ``/api/history?range=24h`` and ``/api/status``; baseline: ``GET /metrics`` on the
   same listener in the same run.
2. A real daemon watching 20 process trees at a 0.5 s interval: its mean tick (from its own
   ``telemetryd_tick_duration_seconds``) with no viewer, then with a page client polling
   ``/``, ``/api/status`` and ``/api/history`` every second and ``telemetryd top --once``
   reading status.json and the history every second.

3. One ``telemetryd top`` refresh (read status.json and the history, draw the frame) at
   80x24 and 200x50; baseline: reading status.json alone.

Usage: .venv/bin/python benchmarks/bench_views.py [--trees 20] [--live N] [--seconds 20]
       [--part all|page|top|tick] [--quick]
The issue's figures: ``--trees 200 --live 10 --part page`` and ``--trees 200 --part top``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client.parser import text_string_to_metric_families

from benchmarks._procs import ProcessGroup, spawn_trees
from daemon.stats.history import HistoryWriter, TreeKey
from daemon.status.snapshot import WatchStatus
from daemon.web.exposition.metrics import DaemonMetricsCollector
from daemon.web.metrics_server import serve_metrics
from daemon.web.sources import (
    PageSources,
    earliest_from_file,
    history_from_file,
    history_of_file,
    spans_from_file,
)
from daemon.web.status_routes import page_routes
from tests.support import snapshots as build

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def fill_history(path: Path, trees: int, now: float, interval: float = 2.0) -> int:
    """24 h of minutes and the last hour at ``interval`` for ``trees`` trees; points written."""
    writer = HistoryWriter.open(path)
    keys = [TreeKey("agents", 1000 + t, now - 90_000) for t in range(trees)]
    written = 0
    times = [now - 86_400 + m * 60.0 for m in range(1440 - 60)]
    fine = now - 3600.0
    while fine <= now:
        times.append(fine)
        fine += interval
    for n, at in enumerate(times):
        for t, key in enumerate(keys):
            writer.record(key, at, (200 + t * 10) * MiB + n * 4096, 5.0 + t % 7)
            written += 1
        if n % 50 == 0:
            writer.commit(at)
    writer.commit(now)
    writer.close()
    return written


def get(port: int, path: str) -> tuple[float, int]:
    """Seconds for one GET over a fresh connection, and the body size."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200, (path, response.status)
    return time.perf_counter() - started, len(body)


def page_load(trees: int, runs: int, live: int | None = None) -> None:
    """Part 1: first and repeated loads of the page and its API with a day of history.

    ``live`` of the ``trees`` are live in the snapshot (all when None); the others ended.
    """
    live = trees if live is None else min(live, trees)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "stats.sqlite3"
        now = time.time()
        started = time.perf_counter()
        points = fill_history(db, trees, now)
        print(f"history: {points} samples for {trees} trees written in "
              f"{time.perf_counter() - started:.1f} s, file {db.stat().st_size / MiB:.1f} MiB")
        snap = replace(build.snapshot(
            [WatchStatus("agents", tuple(build.process(1000 + t, (200 + t * 10) * MiB,
                                                       rate=4096.0, eta=3600.0)
                                         for t in range(live)),
                         rss_warning_bytes=400 * MiB, rss_critical_bytes=800 * MiB)],
            now=now, last_tick_at=now, interval=2.0))
        sources = PageSources(snapshot=lambda: snap, running=lambda: True,
                              history=history_from_file(db), reports=list,
                              costs=lambda since, until: {}, event_url=lambda _id: None,
                              earliest=earliest_from_file(db),
                              history_of=history_of_file(db), spans=spans_from_file(db))
        collector = DaemonMetricsCollector(lambda: snap)
        server = serve_metrics("127.0.0.1", 0, collector, routes=page_routes(sources))
        try:
            first, size = get(server.port, "/")
            print(f"GET / first load, {trees} trees ({live} live): {first * 1000:.1f} ms "
                  f"({size / 1024:.0f} KiB), target < 300 ms and < 1 MB")
            for path in ("/", "/?range=24h", "/api/history?range=24h", "/api/status",
                         "/metrics"):
                times = [get(server.port, path)[0] for _ in range(runs)]
                print(f"GET {path}: median {statistics.median(times) * 1000:.1f} ms, "
                      f"max {max(times) * 1000:.1f} ms over {runs} runs")
        finally:
            server.stop()


def tick_seconds(port: int) -> tuple[float, float]:
    """The daemon's own tick histogram: (sum of seconds, count)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
              if s.name.startswith("telemetryd_tick_duration_seconds")}
    return (values["telemetryd_tick_duration_seconds_sum"],
            values["telemetryd_tick_duration_seconds_count"])


def mean_tick_over(port: int, seconds: float) -> float:
    """Mean tick duration over the next ``seconds``."""
    before = tick_seconds(port)
    time.sleep(seconds)
    after = tick_seconds(port)
    return (after[0] - before[0]) / max(1.0, after[1] - before[1])


def viewers(port: int, config: Path, stop: threading.Event) -> None:
    """A page client and `top --once`, each once a second, until ``stop``."""
    def page() -> None:
        while not stop.is_set():
            for path in ("/", "/api/status", "/api/history"):
                get(port, path)
            stop.wait(1.0)

    def top() -> None:
        while not stop.is_set():
            subprocess.run([sys.executable, "-m", "daemon", "--config", str(config), "top",
                            "--once"], capture_output=True, timeout=60, cwd=REPO, check=False)
            stop.wait(1.0)

    threads = [threading.Thread(target=page), threading.Thread(target=top)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def tick_cost(trees: int, seconds: float) -> None:
    """Part 2: the daemon's tick with and without viewers attached."""
    group = ProcessGroup()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = root / "telemetryd.toml"
        config.write_text(
            f'[daemon]\ninterval = 0.5\nstate_dir = "{root / "state"}"\nlog_format = "json"\n'
            '[otlp]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n'
            '[[watch]]\nname = "trees"\ncmdline = "bench-views-tree"\nrss_warning = "1GiB"\n'
            'rss_critical = "2GiB"\n')
        daemon = None
        try:
            spawn_trees(group, trees, "bench-views-tree")
            log = (root / "log.jsonl").open("wb")
            daemon = subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config),
                                       "run"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
            deadline = time.monotonic() + 60
            while True:
                status = root / "state" / "status.json"
                listen = (json.loads(status.read_text()).get("metrics") or {}).get("listen") \
                    if status.exists() else None
                if listen:
                    break
                assert time.monotonic() < deadline, "daemon did not publish its listener"
                time.sleep(0.2)
            port = int(listen.rsplit(":", 1)[1])
            mean_tick_over(port, 3.0)  # warm up: first ticks, history tables, caches
            # Alternate windows, so a neighbour's load on a shared machine hits both sides.
            alone: list[float] = []
            watched: list[float] = []
            for _ in range(3):
                alone.append(mean_tick_over(port, seconds / 3))
                stop = threading.Event()
                load = threading.Thread(target=viewers, args=(port, config, stop))
                load.start()
                try:
                    watched.append(mean_tick_over(port, seconds / 3))
                finally:
                    stop.set()
                    load.join()
            a, w = statistics.median(alone), statistics.median(watched)
            print(f"tick with {trees} trees: median {a * 1000:.2f} ms alone, "
                  f"{w * 1000:.2f} ms with a page client and top attached (ratio {w / a:.2f}); "
                  f"windows alone {[round(x * 1000, 2) for x in alone]} ms, "
                  f"with viewers {[round(x * 1000, 2) for x in watched]} ms")
        finally:
            if daemon is not None:
                daemon.terminate()
                daemon.wait(timeout=30)
            group.kill_all()


def top_refresh(trees: int, runs: int) -> None:
    """Part 3: one `top` refresh (status.json and history read, frame drawn) at ``trees``
    live trees with 10 minutes of history; baseline: reading status.json alone."""
    import io

    from rich.console import Console

    from daemon.cli.top.command import read_published
    from daemon.cli.top.view import TopState, frame
    from daemon.runtime.paths import StatePaths
    from daemon.status.status_file import read_snapshot, write_snapshot

    with tempfile.TemporaryDirectory() as folder:
        paths = StatePaths(Path(folder))
        paths.ensure()
        now = time.time()
        writer = HistoryWriter.open(paths.stats_db)
        watch = "claude-code-agents-on-this-host"
        keys = [TreeKey(watch, 1000 + t, now - 900) for t in range(trees)]
        at = now - 600
        while at <= now:
            for t, key in enumerate(keys):
                writer.record(key, at, (200 + t) * MiB, 3.0)
            at += 2.0
        writer.commit(now)
        writer.close()
        snap = build.snapshot(
            [WatchStatus(watch,
                         tuple(build.process(1000 + t, (200 + t) * MiB, rate=4096.0, eta=3600.0,
                                             name="claude-code-node-worker",
                                             create_time=now - 900) for t in range(trees)),
                         rss_warning_bytes=400 * MiB, rss_critical_bytes=800 * MiB)],
            now=now, last_tick_at=now, interval=2.0)
        write_snapshot(paths.status, snap)
        for width, height in ((80, 24), (200, 50)):
            times, base = [], []
            for _ in range(runs):
                started = time.perf_counter()
                read_snapshot(paths.status)
                base.append(time.perf_counter() - started)
                started = time.perf_counter()
                published = read_published(paths, time.time())
                console = Console(file=io.StringIO(), width=width, height=height,
                                  force_terminal=True, color_system="truecolor")
                console.print(frame(published.view, published.sparks, TopState(), time.time(),
                                    height, published.problem, width))
                times.append(time.perf_counter() - started)
                assert published.sparks, "the shown trees' sparklines were read"
            median, floor = statistics.median(times), statistics.median(base)
            print(f"top refresh at {width}x{height}, {trees} trees: median "
                  f"{median * 1000:.1f} ms, max {max(times) * 1000:.1f} ms (target < 50 ms); "
                  f"status.json read alone {floor * 1000:.2f} ms (ratio {median / floor:.0f})")


def main() -> None:
    """Run both parts and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trees", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--live", type=int, default=None,
                        help="how many of --trees are live in the page part (default all)")
    parser.add_argument("--part", choices=("all", "page", "top", "tick"), default="all")
    parser.add_argument("--quick", action="store_true", help="small sizes (for CI)")
    args = parser.parse_args()
    if args.quick:
        args.trees, args.seconds, args.runs = 3, 3.0, 3
    if args.part in ("all", "page"):
        page_load(args.trees, args.runs, args.live)
    if args.part in ("all", "top"):
        top_refresh(args.trees, args.runs)
    if args.part in ("all", "tick"):
        tick_cost(args.trees, args.seconds)


if __name__ == "__main__":
    main()

"""The real daemon under floods: largest gap between ticks and RSS, beside the quiet daemon.

One ``telemetryd run`` (receiver and /metrics on loopback, one watch on this process) goes
through a quiet phase (the baseline, same run) and then one phase per flood:

- cardinality: 4 clients sending, for ``--cardinality-seconds`` (default 60), requests that each
               bring a new service name, instance, sessions, models and 50 series (first, so
               its RSS holds nothing left over from another flood);
- scrape:      8 clients fetching /metrics back to back (after the cardinality flood, so the
               totals are as large as the caps let them be);
- decode:      4 clients posting 20,000-point requests back to back;
- slow:        64 clients trickling one byte of a request head every second;
- connections: 8 clients opening, half-writing and dropping connections as fast as they can.

Figures: the largest gap between successive ticks (read from ``status.json`` every 20 ms)
against the interval (target: at most 3x), the daemon's RSS (peak in the phase, and at its
end; target under 150 MB for the cardinality flood) and the evictions the caps counted.
Load generators run in child processes; this process only polls.

Usage: .venv/bin/python benchmarks/bench_flood.py [--interval 0.5] [--phase-seconds 15]
       [--cardinality-seconds 60] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.unit.agents.payloads import metrics_request, sum_metric

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000


def post(port: int, body: bytes, path: str = "/v1/metrics") -> int:
    """One OTLP request on a fresh connection; the status (0 when the connection failed)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/x-protobuf"})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def heavy_request(seed: int, points: int = 20_000) -> bytes:
    """Many generic points in one request: long to decode."""
    now = time.time_ns()
    metric = sum_metric("flood.metric", [({"k": f"{seed}-{i % 500}"}, 1, now - 10**9, now)
                                         for i in range(points)])
    return bytes(metrics_request({"service.name": f"flood-{seed}"}, [metric]).SerializeToString())


def cardinality_request(n: int) -> bytes:
    """A request that brings only new identities: agent, instance, session, models, series."""
    now = time.time_ns()
    resource = {"service.name": f"svc-{n}", "service.instance.id": f"inst-{n}",
                "session.id": f"sess-{n}"}
    tokens = [({"model": f"model-{n}-{m}", "type": "input", "session.id": f"sess-{n}-{m}"},
               100, now - 10**9, now) for m in range(5)]
    series = [({"route": f"/r/{n}/{s}", "user": f"u-{n}-{s}"}, 1, now - 10**9, now)
              for s in range(50)]
    metrics = [sum_metric("claude_code.token.usage", tokens),
               sum_metric(f"custom.metric.{n % 5000}", series)]
    return bytes(metrics_request(resource, metrics).SerializeToString())


# --- load generators (each runs in a child process until its stop event is set) ----------


def decode_load(port: int, stop: object, seed: int) -> None:
    """Post one heavy request after another."""
    body = heavy_request(seed)
    while not stop.is_set():  # type: ignore[attr-defined]
        post(port, body)


def cardinality_load(port: int, stop: object, seed: int) -> None:
    """Post requests with new identities, as fast as the receiver answers."""
    for n in itertools.count(seed * 10_000_000):
        if stop.is_set():  # type: ignore[attr-defined]
            return
        post(port, cardinality_request(n))


def slow_load(port: int, stop: object, seed: int) -> None:
    """Hold 16 connections, each trickling a request head one byte per second."""
    head = b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n"
    socks: list[tuple[socket.socket, int]] = []
    while not stop.is_set():  # type: ignore[attr-defined]
        while len(socks) < 16:
            try:
                socks.append((socket.create_connection(("127.0.0.1", port), timeout=5), 0))
            except OSError:
                break
        kept = []
        for sock, sent in socks:
            try:
                sock.send(head[sent % len(head):][:1])
                kept.append((sock, sent + 1))
            except OSError:
                sock.close()
        socks = kept
        time.sleep(1.0)
    for sock, _ in socks:
        sock.close()


def connection_load(port: int, stop: object, seed: int) -> None:
    """Open a connection, write half a request head, drop it; again and again."""
    while not stop.is_set():  # type: ignore[attr-defined]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            time.sleep(0.01)


def scrape_load(port: int, stop: object, seed: int) -> None:
    """GET /metrics back to back."""
    while not stop.is_set():  # type: ignore[attr-defined]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/metrics")
            conn.getresponse().read()
        except OSError:
            time.sleep(0.01)
        finally:
            conn.close()


# --- the daemon and what is read from it -------------------------------------------------


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


def start_daemon(folder: Path, interval: float) -> Daemon:
    """Start the daemon with both listeners on ephemeral loopback ports."""
    state = folder / "state"
    config = folder / "telemetryd.toml"
    config.write_text(
        f'[daemon]\ninterval = {interval}\nstate_dir = "{state}"\nlog_format = "json"\n'
        f'log_level = "warning"\n'
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


@dataclass
class PhaseResult:
    """What one phase measured."""

    name: str
    seconds: float
    ticks: int
    max_gap_seconds: float
    peak_rss: int
    end_rss: int


def observe(daemon: Daemon, seconds: float) -> PhaseResult:
    """Poll the tick count and RSS for ``seconds``; the largest gap between ticks seen."""
    proc = psutil.Process(daemon.proc.pid)
    last: tuple[int, float] | None = None
    gaps: list[float] = []
    peak = 0
    started = time.monotonic()
    next_rss = started
    first_count = None
    count = 0
    while time.monotonic() - started < seconds:
        tick = daemon.status().get("last_tick")
        if isinstance(tick, dict):
            count, at = int(tick["count"]), float(tick["at"])
            first_count = count if first_count is None else first_count
            if last is not None and count > last[0]:
                # Polled every 20 ms: one tick per poll in practice; if several, their mean.
                gaps.append((at - last[1]) / (count - last[0]))
            last = (count, at)
        now = time.monotonic()
        if now >= next_rss:
            peak = max(peak, proc.memory_info().rss)
            next_rss = now + 0.25
        time.sleep(0.02)
    # The time since the last tick counts as a gap too: a stalled tick loop shows here.
    if last is not None:
        gaps.append(time.time() - last[1])
    end = proc.memory_info().rss
    ticks = 0 if first_count is None else count - first_count
    return PhaseResult("", seconds, ticks, max(gaps, default=seconds), max(peak, end), end)


def run_phase(daemon: Daemon, name: str, load: Callable[..., None] | None, port: int,
              clients: int, seconds: float) -> PhaseResult:
    """Run ``clients`` generators of ``load`` while observing the daemon."""
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    children = [context.Process(target=load, args=(port, stop, seed), daemon=True)
                for seed in range(clients)] if load else []
    for child in children:
        child.start()
    try:
        result = observe(daemon, seconds)
    finally:
        stop.set()
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
    result.name = name
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--phase-seconds", type=float, default=15.0)
    parser.add_argument("--cardinality-seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="3 s phases (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated floods to run "
                        "(cardinality,scrape,decode,slow,connections); default all")
    args = parser.parse_args()
    if args.quick:
        args.phase_seconds = args.cardinality_seconds = 3.0
    with tempfile.TemporaryDirectory(prefix="tdbench-flood-") as tmp:
        daemon = start_daemon(Path(tmp), args.interval)

        def stop_daemon(*_: object) -> None:
            if daemon.proc.poll() is None:
                daemon.proc.send_signal(signal.SIGTERM)
                try:
                    daemon.proc.wait(30)
                except subprocess.TimeoutExpired:
                    daemon.proc.kill()

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        try:
            otlp, metrics = daemon.port("otlp"), daemon.port("metrics")
            time.sleep(max(3.0, 6 * args.interval))  # past start-up and the first ticks
            phases = [
                # The cardinality flood first: its RSS is judged, so no other flood's
                # buffers are counted in it. The scrape flood follows it (largest totals).
                ("quiet (baseline)", None, otlp, 0, args.phase_seconds),
                ("cardinality flood", cardinality_load, otlp, 4, args.cardinality_seconds),
                ("/metrics scrape flood", scrape_load, metrics, 8, args.phase_seconds),
                ("decode flood", decode_load, otlp, 4, args.phase_seconds),
                ("slow clients", slow_load, otlp, 4, args.phase_seconds),
                ("connection flood", connection_load, otlp, 8, args.phase_seconds),
            ]
            if args.only:
                wanted = args.only.split(",")
                phases = [p for p in phases
                          if p[1] is None or any(w in p[0] for w in wanted)]
            results = []
            for name, load, port, clients, seconds in phases:
                results.append(run_phase(daemon, name, load, port, clients, seconds))
                time.sleep(1.0)
            counters = daemon.status().get("otlp") or {}
            still_answers = post(otlp, cardinality_request(-1)) == 200
        finally:
            stop_daemon()
    report(results, args, counters, still_answers)


def report(results: list[PhaseResult], args: argparse.Namespace, otlp: object,
           still_answers: bool) -> None:
    """Print the figures, each beside the quiet daemon's."""
    quiet = results[0]
    cpus = os.cpu_count() or 1
    print(f"bench_flood: interval {args.interval}s, load average {os.getloadavg()[0]:.2f} "
          f"on {cpus} cores")
    print(f"{'phase':<24}{'secs':>6}{'ticks':>7}{'max gap':>9}{'x interval':>11}"
          f"{'peak RSS':>10}{'end RSS':>9}")
    for r in results:
        print(f"{r.name:<24}{r.seconds:>6.0f}{r.ticks:>7}{r.max_gap_seconds:>8.2f}s"
              f"{r.max_gap_seconds / args.interval:>10.2f}x{r.peak_rss / MB:>8.1f}MB"
              f"{r.end_rss / MB:>7.1f}MB")
    worst = max(results[1:], key=lambda r: r.max_gap_seconds)
    print(f"largest tick gap under flood: {worst.max_gap_seconds / args.interval:.2f}x the "
          f"interval ({worst.name}); quiet daemon {quiet.max_gap_seconds / args.interval:.2f}x; "
          f"target <= 3x")
    flood = next((r for r in results if r.name == "cardinality flood"), None)
    if flood is not None:
        print(f"RSS under the cardinality flood: peak {flood.peak_rss / MB:.1f} MB, idle "
              f"{quiet.peak_rss / MB:.1f} MB (same daemon, quiet phase); target < 150 MB")
    print(f"peak RSS over every flood: {max(r.peak_rss for r in results) / MB:.1f} MB")
    evicted = otlp.get("evicted") if isinstance(otlp, dict) else None
    print(f"evicted by the caps: {evicted or {}}; receiver answers after the floods: "
          f"{'yes' if still_answers else 'NO'}")


if __name__ == "__main__":
    threading.current_thread().name = "bench-flood"
    main()

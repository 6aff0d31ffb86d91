"""What it costs to find the process behind an OTLP connection ([otlp] trust = "watched").

Measured in one run, on real loopback connections from a real child process:

- the socket tables' size now (/proc/net/tcp + tcp6 lines: the search is linear in them);
- a fresh connection's lookup (``PeerFinder.lookup``: socket line, fd scan, ancestry), with
  the watched members handed in first (the sender is one: what the daemon does) and without
  (the sender found by scanning every process), as median / p95 / max;
- a known connection's check (``PeerFinder.cached``: one readlink);
- an OTLP export's round trip on a keep-alive connection through the real receiver with
  ``trust = "any"`` (the baseline) and ``trust = "watched"`` (this process watched), and
  their ratio;
- with ``--time-wait N``, the fresh lookup again after N loopback connections were opened and
  closed (N lines in TIME_WAIT, as on a busy machine).

Usage: .venv/bin/python benchmarks/bench_peer_lookup.py [--connections 50] [--requests 300]
       [--time-wait 0]
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.agents.trust.peer import PeerFinder
from daemon.agents.trust.policy import WatchedTrees
from daemon.config.schema import ListenSettings, OtlpSettings
from daemon.runtime.agent_telemetry import AgentTelemetry
from daemon.watch.proc.proctable import parse_stat_line
from tests.unit.agents.payloads import claude_resource, metrics_request, sum_metric

HOLDER = """
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
print("ready", flush=True)
sys.stdin.read()
"""


def table_lines() -> int:
    """Lines in the TCP socket tables now."""
    total = 0
    for name in ("tcp", "tcp6"):
        with open(f"/proc/net/{name}", "rb") as handle:
            total += handle.read().count(b"\n") - 1
    return total


def own_key() -> tuple[int, int]:
    """(pid, start ticks) of this process."""
    pid = os.getpid()
    return parse_stat_line(pid, Path(f"/proc/{pid}/stat").read_text(), 100, 4096).key


def spread(values: list[float]) -> str:
    """median / p95 / max in milliseconds."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (f"median {statistics.median(ordered) * 1e3:7.3f} ms  p95 {p95 * 1e3:7.3f} ms  "
            f"max {ordered[-1] * 1e3:7.3f} ms")


def fresh_lookups(connections: int) -> tuple[list[float], list[float], list[float]]:
    """Lookup times with and without candidates, and cached checks, over real connections."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(connections + 8)
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(server.getsockname()[1]),
                                   str(connections)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            accepted = [server.accept() for _ in range(connections)]
            assert holder.stdout is not None and holder.stdout.readline().startswith("ready")
            with_members, full_scan, cached = [], [], []
            for conn, address in accepted:
                here = conn.getsockname()
                for candidates, into in (((holder.pid,), with_members), ((), full_scan)):
                    finder = PeerFinder(deadline_seconds=5.0)
                    started = time.perf_counter()
                    peer = finder.lookup((address[0], address[1]), (here[0], here[1]),
                                         candidates)
                    into.append(time.perf_counter() - started)
                    assert peer.pid == holder.pid, peer
                started = time.perf_counter()
                assert finder.cached((address[0], address[1]), (here[0], here[1])) is not None
                cached.append(time.perf_counter() - started)
            for conn, _ in accepted:
                conn.close()
            return with_members, full_scan, cached
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(timeout=30)


def round_trips(trust: str, requests: int, folder: Path) -> list[float]:
    """Seconds per export on one keep-alive connection through the real receiver."""
    settings = OtlpSettings(listen=ListenSettings(True, "127.0.0.1", 0), trust=trust)  # type: ignore[arg-type]
    telemetry = AgentTelemetry(settings, folder / f"{trust}.sqlite3")
    telemetry.admission.set_watched(WatchedTrees({own_key(): "bench"}, (os.getpid(),)))
    telemetry.start()
    body = metrics_request(claude_resource(), [sum_metric("app.jobs", [({}, 1, 0, 1)])]
                           ).SerializeToString()
    times = []
    try:
        conn = http.client.HTTPConnection("127.0.0.1", telemetry.receiver.port, timeout=30)
        for _ in range(requests):
            started = time.perf_counter()
            conn.request("POST", "/v1/metrics", body=body,
                         headers={"Content-Type": "application/x-protobuf"})
            response = conn.getresponse()
            response.read()
            times.append(time.perf_counter() - started)
            assert response.status == 200, response.status
        conn.close()
    finally:
        telemetry.stop()
    return times[1:]  # the first request of "watched" carries the lookup


def fill_time_wait(count: int) -> None:
    """Open and close ``count`` loopback connections, the client closing first."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(128)
        port = server.getsockname()[1]
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", port))
            conn, _ = server.accept()
            client.close()
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--time-wait", type=int, default=0)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    processes = sum(1 for name in os.listdir("/proc") if name.isdigit())
    print(f"machine: {os.cpu_count()} cores, {processes} processes, "
          f"{table_lines()} lines in /proc/net/tcp{{,6}}")
    with_members, full_scan, cached = fresh_lookups(args.connections)
    print(f"fresh connection, members first : {spread(with_members)}")
    print(f"fresh connection, full fd scan  : {spread(full_scan)}")
    print(f"known connection (cached check)  : median {statistics.median(cached) * 1e6:.1f} us")
    with tempfile.TemporaryDirectory() as folder:
        baseline = statistics.median(round_trips("any", args.requests, Path(folder)))
        watched = statistics.median(round_trips("watched", args.requests, Path(folder)))
    print(f"export round trip, keep-alive    : any {baseline * 1e3:.3f} ms, "
          f"watched {watched * 1e3:.3f} ms, ratio {watched / baseline:.2f}x")
    if args.time_wait:
        fill_time_wait(args.time_wait)
        busy, _, _ = fresh_lookups(min(args.connections, 20))
        print(f"after {args.time_wait} TIME_WAIT ({table_lines()} lines): "
              f"members first {spread(busy)}")


if __name__ == "__main__":
    main()

"""OTLP data points ingested per second through the real HTTP receiver into SQLite.

The load generator runs in a child process so this process's CPU time is the receiver,
decoder, pricing and store alone. Baselines measured in the same run: decode only (parse
+ normalize, no HTTP, no store) and store only (append of the decoded records).

The old HTTP server is measured in the same run: ``--baseline-rev REV`` (default: the commit
before the receiver moved to uvicorn) is checked out with ``git worktree`` into a temporary
folder and this same benchmark's HTTP figure is taken there, with the same payloads.

Usage: .venv/bin/python benchmarks/bench_otlp.py [--requests 400] [--agents 50] [--models 20]
       [--baseline-rev 8c5f603 | --baseline-rev none]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from daemon.agents.budget.pricing import price_tokens
from daemon.agents.decoding.counters import OtlpCounter
from daemon.agents.decoding.decode import decode_metrics
from daemon.agents.decoding.records import TokenUsage
from daemon.agents.decoding.series import SeriesTracker
from daemon.agents.store.event_store import EventStore
from daemon.config.schema import ListenSettings, OtlpSettings
from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.unit.agents.payloads import claude_resource, metrics_request, sum_metric

TOKEN_TYPES = ("input", "output", "cacheRead", "cacheCreation")
MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "gpt-4o", "gpt-4o-mini")


def build_payloads(requests: int, agents: int, models: int, seed: int = 7) -> list[bytes]:
    """Claude Code-shaped delta exports: per request one agent, every model x token type + cost."""
    rng = random.Random(seed)
    now = time.time_ns()
    out = []
    for i in range(requests):
        resource = claude_resource(**{"service.instance.id": f"agent-{i % agents}"})
        token_points, cost_points = [], []
        for m in range(models):
            model = f"{MODELS[m % len(MODELS)]}" if m < len(MODELS) else f"custom-model-{m}"
            attrs = {"session.id": f"s-{i % agents}", "model": model}
            for kind in TOKEN_TYPES:
                token_points.append(
                    ({**attrs, "type": kind}, rng.randint(1, 5000), now - 10**9, now)
                )
            cost_points.append((attrs, rng.random() / 10, now - 10**9, now))
        request = metrics_request(
            resource,
            [
                sum_metric("claude_code.token.usage", token_points),
                sum_metric("claude_code.cost.usage", cost_points),
            ],
        )
        out.append(bytes(request.SerializeToString()))
    return out


def points_in(payload: bytes) -> int:
    """Data points in one request."""
    request = ExportMetricsServiceRequest.FromString(payload)
    return sum(
        len(m.sum.data_points)
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    )


def client(
    port: int, payloads: list[bytes], connections: int, result: multiprocessing.Queue
) -> None:
    """Send every payload over keep-alive connections, retrying 429s; report 429s seen."""
    import threading

    throttled = 0
    lock = threading.Lock()

    def worker(share: list[bytes]) -> None:
        nonlocal throttled
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body in share:
            while True:
                conn.request(
                    "POST", "/v1/metrics", body, {"Content-Type": "application/x-protobuf"}
                )
                response = conn.getresponse()
                response.read()
                if response.status != 429:
                    break
                with lock:
                    throttled += 1
                time.sleep(0.01)
        conn.close()

    threads = [
        threading.Thread(target=worker, args=(payloads[i::connections],))
        for i in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.put(throttled)


def bench_http(
    payloads: list[bytes], connections: int, directory: Path
) -> tuple[float, float, int]:
    """Wall seconds and this process's CPU seconds to ingest every payload, and 429s seen."""
    # Caps above the payloads' series (50 instances x 20 models x 4 token types per
    # metric): this measures throughput, not refusals.
    settings = OtlpSettings(listen=ListenSettings(True, "127.0.0.1", 0),
                            max_series_per_metric=100_000, max_series=100_000)
    telemetry = AgentTelemetry(settings, directory / "http.sqlite3")
    telemetry.start()
    try:
        result: multiprocessing.Queue = multiprocessing.Queue()
        child = multiprocessing.get_context("fork").Process(
            target=client, args=(telemetry.receiver.port, payloads, connections, result)
        )
        wall0, cpu0 = time.perf_counter(), time.process_time()
        child.start()
        child.join()
        assert telemetry.ingestor.flush(120.0)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        throttled = result.get(timeout=5)
        stats = telemetry.stats()
        assert [o for (_, o) in stats.by_labels(OtlpCounter.POINTS)] in (["accepted"], []), stats
    finally:
        telemetry.stop()
    return wall, cpu, throttled


def bench_decode_only(payloads: list[bytes]) -> tuple[float, list]:
    """Seconds to parse and normalize every payload (no HTTP, no pricing, no store)."""
    tracker = SeriesTracker(100_000, 1000, 3600.0)
    records = []
    start = time.process_time()
    for body in payloads:
        txn = tracker.begin(time.time())
        result = decode_metrics(ExportMetricsServiceRequest.FromString(body), txn, time.time())
        tracker.commit(txn, time.time())
        records.append(result.records)
    return time.process_time() - start, records


def bench_store_only(batches: list, directory: Path) -> float:
    """Seconds to price and append the decoded records straight into a fresh store."""
    store = EventStore(directory / "direct.sqlite3", 30.0, 1 << 34)
    start = time.process_time()
    for records in batches:
        store.append([price_tokens(r) if isinstance(r, TokenUsage) else r for r in records])
    elapsed = time.process_time() - start
    store.close()
    return elapsed


def baseline_http(rev: str, args: argparse.Namespace) -> dict[str, str]:
    """This benchmark's figures (decode only, price + store, HTTP -> store) run in a
    worktree of ``rev``: the old server, with the decoder and store of its time."""
    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "-q", str(tree),
                        rev], check=True)
        script = tree / "benchmarks" / "bench_otlp.py"
        # A baseline that has this option must not measure its own baseline in turn.
        recurse = ["--baseline-rev", "none"] if "baseline-rev" in script.read_text() else []
        try:
            out = subprocess.run(
                [sys.executable, str(script), "--requests",
                 str(args.requests), "--agents", str(args.agents), "--models", str(args.models),
                 "--connections", str(args.connections), *recurse],
                cwd=tree, capture_output=True, text=True, check=True,
            ).stdout
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
                           check=False)
    figures = {}
    for name in ("decode only", "price \\+ store", "HTTP -> store"):
        found = re.search(name + r":\s+([\d,]+) points/s", out)
        figures[name.replace("\\", "")] = found.group(1) if found else "?"
    return figures


def main() -> None:
    """Run the three measurements and print figures and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--baseline-rev", default="8c5f603")
    args = parser.parse_args()
    payloads = build_payloads(args.requests, args.agents, args.models)
    points = sum(points_in(p) for p in payloads)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        decode_s, batches = bench_decode_only(payloads)
        store_s = bench_store_only(batches, directory)
        wall, cpu, throttled = bench_http(payloads, args.connections, directory)
    print(
        f"payload: {args.requests} requests x {points // args.requests} points "
        f"({args.agents} agents, {args.models} models), {points} points"
    )
    print(f"decode only:   {points / decode_s:12,.0f} points/s (CPU)")
    print(f"price + store: {points / store_s:12,.0f} points/s (CPU)")
    print(
        f"HTTP -> store: {points / wall:12,.0f} points/s wall, "
        f"{cpu:.2f} s CPU = {cpu / points * 1e6:.1f} us CPU/point, "
        f"{cpu / wall * 100:.0f}% of a core, {throttled} x 429 retried"
    )
    print(f"ratio end-to-end / decode-only: {(points / wall) / (points / decode_s):.2f}")
    if args.baseline_rev != "none":
        old = baseline_http(args.baseline_rev, args)
        http = old["HTTP -> store"]
        ratio = (points / wall) / float(http.replace(",", "")) if http != "?" else float("nan")
        print(f"old server ({args.baseline_rev}), same payloads: {http:>12} points/s wall; "
              f"new / old = {ratio:.2f}")
        print(f"  (old decode only {old['decode only']} points/s CPU, old price + store "
              f"{old['price + store']} points/s CPU: the old commit's decoder and store too)")


if __name__ == "__main__":
    main()

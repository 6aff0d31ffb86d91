"""``/metrics`` scrape time with 50 agents x 20 models of series in a real event store.

The store is filled through ``EventStore.append`` (the ingest writer's path) with, per agent
and model, four token types, cost, requests spread over the duration buckets and errors, and
per agent ten tools with both outcomes. Measured in the same run:

- cold scrape over HTTP: the agent cache disabled, so every scrape reads SQLite (worst case);
- warm scrape over HTTP: within the cache window (what a burst of scrapers sees);
- collector only, cold: ``generate_latest`` of the private registry, no HTTP;
- baseline: ``generate_latest`` of a plain prometheus-client registry holding the same series
  as ordinary Counter/Gauge/Histogram objects (what exposition costs with no SQLite at all).

Usage: .venv/bin/python benchmarks/bench_metrics.py [--agents 50] [--models 20] [--runs 60]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

from daemon.agents.decoding.records import Agent, ApiRequest, Record, TokenUsage, ToolCall
from daemon.agents.store.event_store import EventStore
from daemon.agents.store.queries import StoreReader
from daemon.agents.store.totals import DURATION_BUCKETS_SECONDS, read_totals
from daemon.runtime.paths import StatePaths
from daemon.status.snapshot import OtlpStatus, StatusSnapshot
from daemon.web.exposition.metrics import DaemonMetricsCollector, LabelLimits
from daemon.web.metrics_server import make_registry, serve_metrics
from tests.support import snapshots as build

TOKEN_TYPES = ("input", "output", "cache_read", "cache_creation")
NOW = time.time()


def snapshot() -> StatusSnapshot:
    """A status snapshot with 10 watches of 5 processes each."""
    return build.snapshot(
        [build.watch(f"watch-{w}", *(build.process(p, 1 << 28, 12.5, rate=600.0)
                                     for p in range(5)))
         for w in range(10)],
        now=NOW, last_tick_at=NOW, tick_count=10, otlp=OtlpStatus(up=True))


def fill(store: EventStore, agents: int, models: int, tools: int) -> int:
    """Append a realistic mix of records for every agent x model and agent x tool."""
    written = 0
    for a in range(agents):
        agent = Agent(f"agent-{a:02d}", f"host-{a}", None, 1000 + a)
        batch: list[Record] = []
        for m in range(models):
            model = f"model-{m:02d}"
            for kind in TOKEN_TYPES:
                batch.append(TokenUsage(NOW, agent, None, model, kind, 1000 + a + m, "gen_ai",  # type: ignore[arg-type]
                                        cost_usd=0.001 * (m + 1), cost_status="computed"))
            for i, seconds in enumerate((0.3, 1.5, 4.0, 12.0, 45.0, 130.0)):
                batch.append(ApiRequest(NOW, agent, None, model, 1 + i, seconds * 1000 * (1 + i),
                                        "rate_limit" if i == 5 else None))
        for t in range(tools):
            for success in (True, False):
                batch.append(ToolCall(NOW, agent, None, f"tool-{t}", success, 3, 30.0 * (t + 1)))
        written += store.append(batch)
    return written


def plain_registry(exposition: str) -> CollectorRegistry:
    """The same series as ordinary prometheus-client metrics in a registry of their own."""
    registry = CollectorRegistry(auto_describe=False)
    for family in text_string_to_metric_families(exposition):
        labels = sorted({k for s in family.samples for k in s.labels if k != "le"})
        if family.type == "counter":
            counter = Counter(family.name, family.documentation or "x", labels, registry=registry)
            for s in family.samples:
                if s.name.endswith("_total"):
                    counter.labels(**s.labels).inc(s.value) if labels else counter.inc(s.value)
        elif family.type == "gauge":
            gauge = Gauge(family.name, family.documentation or "x", labels, registry=registry)
            for s in family.samples:
                gauge.labels(**s.labels).set(s.value) if labels else gauge.set(s.value)
        elif family.type == "histogram":
            hist = Histogram(family.name, family.documentation or "x", labels,
                             buckets=DURATION_BUCKETS_SECONDS, registry=registry)
            for s in family.samples:
                if s.name.endswith("_sum"):
                    (hist.labels(**s.labels) if labels else hist).observe(s.value)
    return registry


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Seconds per call, after one warm-up call."""
    fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def http_get(port: int, gzip: bool = False) -> bytes:
    """One scrape on a fresh connection (gzip: as Prometheus asks for it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"} if gzip else {})
        return conn.getresponse().read()
    finally:
        conn.close()


def summary(name: str, seconds: list[float]) -> float:
    """Print median and p99 in ms; return the median."""
    ordered = sorted(seconds)
    median = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(f"  {name:<38} median {median * 1000:8.2f} ms   p99 {p99 * 1000:8.2f} ms")
    return median


def main() -> None:
    """Fill a store, then time the scrapes and the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--tools", type=int, default=10)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    disable_created_metrics()  # type: ignore[no-untyped-call]
    limits = LabelLimits(agents=max(50, args.agents), models=max(50, args.models),
                         tools=max(50, args.tools))
    with tempfile.TemporaryDirectory() as tmp:
        path = StatePaths(Path(tmp)).events_db
        store = EventStore(path, 30.0, 1 << 34)
        start = time.perf_counter()
        events = fill(store, args.agents, args.models, args.tools)
        fill_seconds = time.perf_counter() - start
        store.close()
        reader = StoreReader(path)
        rows = len(read_totals(path))
        cold = DaemonMetricsCollector(snapshot, None, reader, limits=limits,
                                      cache_seconds=0.0)
        warm = DaemonMetricsCollector(snapshot, None, reader, limits=limits,
                                      cache_seconds=3600.0)
        cold_registry = make_registry(cold, process_metrics=False)
        exposition = generate_latest(cold_registry).decode()
        samples = sum(1 for line in exposition.splitlines() if line and line[0] != "#")
        baseline = plain_registry(exposition)
        baseline_text = generate_latest(baseline).decode()
        baseline_samples = sum(1 for ln in baseline_text.splitlines() if ln and ln[0] != "#")
        print(f"{args.agents} agents x {args.models} models, {args.tools} tools per agent: "
              f"{events} events appended in {fill_seconds:.1f} s, {rows} totals rows")
        print(f"  exposition: {samples} samples, {len(exposition) / 1024:.0f} KiB "
              f"(baseline registry: {baseline_samples} samples)")
        read_median = summary("read_totals (SQLite only)", timed(lambda: read_totals(path),
                                                                   args.runs))
        base_median = summary("baseline: plain registry generate_latest",
                              timed(lambda: generate_latest(baseline), args.runs))
        collector_median = summary("collector generate_latest, cold",
                                   timed(lambda: generate_latest(cold_registry), args.runs))
        cold_server = serve_metrics("127.0.0.1", 0, cold, process_metrics=False)
        warm_server = serve_metrics("127.0.0.1", 0, warm, process_metrics=False)
        try:
            cold_median = summary("HTTP scrape, cold (reads SQLite)",
                                  timed(lambda: http_get(cold_server.port), args.runs))
            warm_median = summary("HTTP scrape, warm (cached agent series)",
                                  timed(lambda: http_get(warm_server.port), args.runs))
            summary("HTTP scrape, cold, gzip (as Prometheus)",
                    timed(lambda: http_get(cold_server.port, gzip=True), args.runs))
            gzipped = len(http_get(cold_server.port, gzip=True))
            print(f"  gzip body: {gzipped / 1024:.0f} KiB")
        finally:
            cold_server.stop()
            warm_server.stop()
        print(f"  ratio collector cold / baseline: {collector_median / base_median:.2f}x; "
              f"HTTP cold / baseline: {cold_median / base_median:.2f}x; "
              f"HTTP warm / baseline: {warm_median / base_median:.2f}x; "
              f"SQLite share of cold: {read_median / collector_median:.0%}")


if __name__ == "__main__":
    main()

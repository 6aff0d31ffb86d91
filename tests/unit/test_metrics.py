"""The /metrics collector: watch, daemon, receiver and agent series from fed data and a store."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from daemon import __version__
from daemon.agents.budget.integrity import screen
from daemon.agents.decoding.counters import OtlpCounter, OtlpStats
from daemon.agents.decoding.records import (
    Agent,
    ApiRequest,
    CostUsage,
    SessionStart,
    TokenUsage,
    ToolCall,
)
from daemon.agents.store.event_store import EventStore
from daemon.agents.store.queries import StoreReader
from daemon.agents.store.totals import read_totals
from daemon.runtime.paths import StatePaths
from daemon.status.snapshot import FlushStatus, OtlpStatus, ReportCounts, StatusSnapshot
from daemon.web.exposition.metrics import DaemonMetricsCollector, LabelLimits, otlp_families
from tests.support import snapshots as build

NOW = 1_800_000_000.0
DAY = 86400.0
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(collector: DaemonMetricsCollector) -> tuple[str, Samples]:
    """Expose the collector through a private registry; return the text and every sample."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; KeyError names what is missing."""
    return samples[(name, tuple(sorted(labels.items())))]


def names(samples: Samples) -> set[str]:
    """Every sample name present."""
    return {name for name, _ in samples}


def snapshot(**overrides: Any) -> StatusSnapshot:
    """A status snapshot with two watches, pending reports and flush totals."""
    claude = build.watch(
        "claude",
        build.process(10, 100 << 20, 50.0, "warning", rate=6000.0, eta=600.0),
        build.process(11, 300 << 20, 150.0, "critical", rate=60.0, eta=120.0),
        build.zombie(12),
    )
    base = build.snapshot(
        [claude, build.watch("idle")], now=NOW, last_tick_at=NOW, tick_count=42,
        started_at=NOW - 100,
        reports=ReportCounts(pending=3, quarantined=1, written_since_start=7,
                             held_in_memory=0, dropped_total=2),
        flush=FlushStatus(enabled=True, delivered_total=5, quarantined_total=1,
                          failures_total=4, last_result="retrying"),
        otlp=OtlpStatus(up=True),
    )
    return replace(base, **overrides)


def test_watch_series_sum_trees_per_watch_never_per_pid() -> None:
    """RSS and CPU add up per watch, zombies are not counted, and no series carries a pid."""
    text, samples = scrape(DaemonMetricsCollector(lambda: snapshot()))
    assert value(samples, "telemetryd_watch_processes", watch="claude") == 2
    assert value(samples, "telemetryd_watch_rss_bytes", watch="claude") == 400 << 20
    assert value(samples, "telemetryd_watch_cpu_cores", watch="claude") == 2.0
    assert value(samples, "telemetryd_watch_level", watch="claude") == 2
    assert value(samples, "telemetryd_watch_processes_at_level", watch="claude",
                 level="warning") == 1
    assert value(samples, "telemetryd_watch_processes_at_level", watch="claude",
                 level="critical") == 1
    assert value(samples, "telemetryd_watch_rss_growth_bytes_per_second", watch="claude") == 100
    assert value(samples, "telemetryd_watch_seconds_to_critical", watch="claude") == 120
    assert value(samples, "telemetryd_watch_processes", watch="idle") == 0
    assert value(samples, "telemetryd_watch_level", watch="idle") == 0
    assert ("telemetryd_watch_rss_growth_bytes_per_second", (("watch", "idle"),)) not in samples
    assert "pid" not in text


def test_daemon_series_come_from_the_snapshot() -> None:
    """Ticks, reports, delivery, failures and the receiver's state are exposed with their names."""
    _, samples = scrape(DaemonMetricsCollector(lambda: snapshot(), version="9.9"))
    assert value(samples, "telemetryd_build_info", version="9.9") == 1
    assert value(samples, "telemetryd_ticks_total") == 42
    assert value(samples, "telemetryd_last_tick_timestamp_seconds") == NOW
    assert value(samples, "telemetryd_start_time_seconds") == NOW - 100
    assert value(samples, "telemetryd_reports_pending") == 3
    assert value(samples, "telemetryd_reports_quarantined") == 1
    assert value(samples, "telemetryd_reports_written_total") == 7
    assert value(samples, "telemetryd_reports_dropped_total") == 2
    assert value(samples, "telemetryd_reports_delivered_total") == 5
    assert value(samples, "telemetryd_reports_rejected_total") == 1
    assert value(samples, "telemetryd_flush_failures_total") == 4
    assert value(samples, "telemetryd_flush_enabled") == 1
    assert value(samples, "telemetryd_otlp_up") == 1


def test_before_the_first_tick_only_daemon_identity_is_exposed() -> None:
    """With no snapshot yet the scrape still answers: build info and an empty tick histogram."""
    _, samples = scrape(DaemonMetricsCollector(lambda: None))
    assert value(samples, "telemetryd_build_info", version=__version__) == 1
    assert value(samples, "telemetryd_tick_duration_seconds_count") == 0
    assert not any(name.startswith("telemetryd_watch_") for name in names(samples))


def test_unknown_states_and_missing_figures_count_as_zero() -> None:
    """A state this version does not know, no rate, no ETA and no tick give 0 or no series."""
    odd = snapshot(
        watches=(build.watch("w", build.process(1, 0, 0.0, "weird")),),
        reports=ReportCounts(pending=None, written_since_start=0),
        flush=None,
        last_tick=None,
    )
    _, samples = scrape(DaemonMetricsCollector(lambda: odd))
    assert value(samples, "telemetryd_watch_rss_bytes", watch="w") == 0
    assert value(samples, "telemetryd_watch_cpu_cores", watch="w") == 0
    assert value(samples, "telemetryd_watch_level", watch="w") == 0
    assert value(samples, "telemetryd_ticks_total") == 0
    assert value(samples, "telemetryd_flush_enabled") == 0
    assert ("telemetryd_reports_pending", ()) not in samples

def test_a_failing_source_is_counted_and_logged_and_the_rest_still_served() -> None:
    """A snapshot that raises costs only its own series; the failure is counted and logged."""

    def broken() -> Mapping[str, Any]:
        raise RuntimeError("boom")

    collector = DaemonMetricsCollector(broken, agent_counters=lambda: OtlpStats(
        {(OtlpCounter.EVENTS_WRITTEN, ()): 5}))
    with capture_logs() as logs:
        _, samples = scrape(collector)
        _, samples = scrape(collector)
    assert value(samples, "telemetryd_scrape_errors_total", part="snapshot") == 2
    assert value(samples, "telemetryd_agent_events_written_total") == 5
    failed = [e for e in logs if e["event"] == "metrics.collect_failed"]
    assert failed and failed[0]["part"] == "snapshot" and failed[0]["error"] == "RuntimeError"


def test_tick_histogram_counts_observed_ticks_into_buckets() -> None:
    """observe_tick feeds a cumulative histogram with the right sum, count and buckets."""
    collector = DaemonMetricsCollector(lambda: None)
    for seconds in (0.002, 0.004, 0.3, 12.0):
        collector.observe_tick(seconds)
    _, samples = scrape(collector)
    name = "telemetryd_tick_duration_seconds"
    assert value(samples, f"{name}_count") == 4
    assert value(samples, f"{name}_sum") == pytest.approx(12.306)
    assert value(samples, f"{name}_bucket", le="0.0025") == 1
    assert value(samples, f"{name}_bucket", le="0.005") == 2
    assert value(samples, f"{name}_bucket", le="0.5") == 3
    assert value(samples, f"{name}_bucket", le="10.0") == 3
    assert value(samples, f"{name}_bucket", le="+Inf") == 4


def test_receiver_counters_map_to_labelled_families() -> None:
    """OTLP counters and their label values become the families' labels, read as they are."""
    c = OtlpCounter
    counters = OtlpStats({
        (c.REQUESTS_RECEIVED, ("metrics",)): 10, (c.REQUESTS_RECEIVED, ("logs",)): 4,
        (c.REQUESTS_REFUSED, ("413", "body_too_large")): 2,
        (c.REQUESTS_REFUSED, ("429", "queue_full")): 1,
        (c.POINTS, ("metrics", "accepted")): 900, (c.POINTS, ("metrics", "cardinality")): 7,
        (c.POINTS, ("logs", "not_finite")): 1, (c.POINTS_DROPPED, ("queue_full",)): 30,
        (c.POINTS_DROPPED, ("write_error",)): 3, (c.REQUESTS_TIMED_OUT, ()): 1,
        (c.HANDLER_ERRORS, ()): 2, (c.EVENTS_WRITTEN, ()): 870, (c.WRITE_ERRORS, ()): 1,
        (c.OBSERVER_ERRORS, ()): 9,
    }, queue_depth=2, active_series=55)
    _, samples = scrape(DaemonMetricsCollector(lambda: None, agent_counters=lambda: counters))
    assert value(samples, "telemetryd_otlp_requests_total", signal="metrics") == 10
    assert value(samples, "telemetryd_otlp_requests_refused_total", status="413",
                 reason="body_too_large") == 2
    assert value(samples, "telemetryd_otlp_points_total", signal="metrics",
                 outcome="accepted") == 900
    assert value(samples, "telemetryd_otlp_points_total", signal="metrics",
                 outcome="cardinality") == 7
    assert value(samples, "telemetryd_otlp_points_dropped_total", reason="queue_full") == 30
    assert value(samples, "telemetryd_otlp_points_dropped_total", reason="write_error") == 3
    assert value(samples, "telemetryd_otlp_requests_timed_out_total") == 1
    assert value(samples, "telemetryd_otlp_handler_errors_total") == 2
    assert value(samples, "telemetryd_agent_store_write_errors_total") == 1
    assert value(samples, "telemetryd_otlp_queue_depth") == 2
    assert value(samples, "telemetryd_otlp_active_series") == 55
    assert not any("observer" in str(key) for key in samples)  # counted, not exported


def test_receiver_families_exist_with_zero_before_any_traffic() -> None:
    """Single-value receiver series start at 0 so alerts on them never see 'no data'."""
    families = {f.name: f for f in otlp_families(OtlpStats())}
    assert families["telemetryd_otlp_handler_errors"].samples[0].value == 0


# --- agent series from a real event store --------------------------------------------------

BOT = Agent("bot", "i-1", None, 99)
CLAUDE = Agent("claude-code", "laptop", None, 7)


def tokens(agent: Agent, model: str, kind: str, n: int, usd: float | None,
           ts: float = NOW) -> TokenUsage:
    """A token record; ``usd`` None means the model has no known price."""
    if usd is None:
        return TokenUsage(ts, agent, None, model, kind, n, "metric",  # type: ignore[arg-type]
                          cost_status="unknown")
    return TokenUsage(ts, agent, None, model, kind, n, "metric",  # type: ignore[arg-type]
                      cost_usd=usd, cost_status="computed")


def store_collector(path: Path, **kwargs: Any) -> DaemonMetricsCollector:
    """A collector reading only the agent store at ``path``."""
    return DaemonMetricsCollector(lambda: None, agent_reader=StoreReader(path), **kwargs)


def test_agent_counters_and_cost_rule_from_the_store(tmp_path: Path) -> None:
    """Tokens, cost (a plausible reported cost wins over the priced one of the same export,
    unknown prices excluded and flagged), requests and errors."""
    path = StatePaths(tmp_path).events_db
    store = EventStore(path, 30.0, 1 << 30)
    store.append(screen([
        tokens(BOT, "gpt-4o", "input", 1000, 0.01),
        tokens(BOT, "gpt-4o", "output", 500, 0.02),
        tokens(BOT, "house-7b", "input", 77, None),
        CostUsage(NOW, CLAUDE, None, "sonnet", 0.40),
        tokens(CLAUDE, "sonnet", "input", 2000, 0.45),  # covered by the reported cost
        ApiRequest(NOW, BOT, None, "gpt-4o", 1, 300.0),
        ApiRequest(NOW, BOT, None, "gpt-4o", 1, 90_000.0, "network"),
        ApiRequest(NOW, BOT, None, "gpt-4o", 2, 1000.0, "rate_limit"),
        SessionStart(NOW, CLAUDE, None, 3),
    ]).records)
    store.close()
    _, samples = scrape(store_collector(path))
    assert value(samples, "telemetryd_agent_tokens_total", agent="bot", model="gpt-4o",
                 type="output") == 500
    assert value(samples, "telemetryd_agent_cost_usd_total", agent="bot",
                 model="gpt-4o") == pytest.approx(0.03)
    assert value(samples, "telemetryd_agent_cost_usd_total", agent="claude-code",
                 model="sonnet") == pytest.approx(0.40)
    assert ("telemetryd_agent_cost_usd_total",
            (("agent", "bot"), ("model", "house-7b"))) not in samples
    assert value(samples, "telemetryd_agent_tokens_unpriced_total", agent="bot",
                 model="house-7b") == 77
    assert value(samples, "telemetryd_agent_requests_total", agent="bot", model="gpt-4o") == 4
    assert value(samples, "telemetryd_agent_errors_total", agent="bot", model="gpt-4o",
                 **{"class": "rate_limit"}) == 2
    assert value(samples, "telemetryd_agent_errors_total", agent="bot", model="gpt-4o",
                 **{"class": "network"}) == 1
    assert value(samples, "telemetryd_agent_sessions_total", agent="claude-code") == 3


def test_duration_histograms_reach_120_seconds_with_right_buckets(tmp_path: Path) -> None:
    """Request and tool durations land in their buckets; +Inf equals the count; sum in seconds."""
    path = StatePaths(tmp_path).events_db
    store = EventStore(path, 30.0, 1 << 30)
    store.append([
        ApiRequest(NOW, BOT, None, "m", 1, 300.0),
        ApiRequest(NOW, BOT, None, "m", 1, 90_000.0, "network"),
        ApiRequest(NOW, BOT, None, "m", 1, 200_000.0),
        ApiRequest(NOW, BOT, None, "m", 2, 1000.0),  # aggregated: both at their 0.5 s mean
        ToolCall(NOW, BOT, None, "Read", True, 1, 3.0),
        ToolCall(NOW, BOT, None, "Bash", False, 1, 45_000.0),
    ])
    store.close()
    _, samples = scrape(store_collector(path))
    req = "telemetryd_agent_request_duration_seconds"
    labels = {"agent": "bot", "model": "m"}
    assert value(samples, f"{req}_bucket", le="0.25", **labels) == 0
    assert value(samples, f"{req}_bucket", le="0.5", **labels) == 3
    assert value(samples, f"{req}_bucket", le="60.0", **labels) == 3
    assert value(samples, f"{req}_bucket", le="120.0", **labels) == 4
    assert value(samples, f"{req}_bucket", le="+Inf", **labels) == 5
    assert value(samples, f"{req}_count", **labels) == 5
    assert value(samples, f"{req}_sum", **labels) == pytest.approx(291.3)
    tool = "telemetryd_agent_tool_duration_seconds"
    assert value(samples, f"{tool}_bucket", le="0.01", agent="bot", tool="Read") == 1
    assert value(samples, f"{tool}_bucket", le="30.0", agent="bot", tool="Bash") == 0
    assert value(samples, f"{tool}_bucket", le="60.0", agent="bot", tool="Bash") == 1
    assert value(samples, "telemetryd_agent_tool_calls_total", agent="bot", tool="Bash",
                 outcome="error") == 1


def test_counters_survive_retention_of_the_hourly_rows(tmp_path: Path) -> None:
    """Deleting old events and hourly rows by age leaves the all-time counters where they were."""
    path = StatePaths(tmp_path).events_db
    store = EventStore(path, 30.0, 1 << 30)
    store.append([tokens(BOT, "m", "input", 100, 0.5, ts=NOW - 40 * DAY),
                  ToolCall(NOW - 40 * DAY, BOT, None, "Read", True, 1, 5.0)])
    _, before = scrape(store_collector(path, cache_seconds=0))
    result = store.enforce_retention(NOW)
    assert result.deleted_events == 2 and result.deleted_hourly_rows >= 2
    assert StoreReader(path).stats(0, NOW, "agent") == []
    _, after = scrape(store_collector(path, cache_seconds=0))
    store.close()
    for name, labels in (("telemetryd_agent_tokens_total",
                          {"agent": "bot", "model": "m", "type": "input"}),
                         ("telemetryd_agent_cost_usd_total", {"agent": "bot", "model": "m"}),
                         ("telemetryd_agent_tool_calls_total",
                          {"agent": "bot", "tool": "Read", "outcome": "ok"})):
        assert value(after, name, **labels) == value(before, name, **labels) > 0


def test_reported_cost_covers_only_the_tokens_of_its_own_export(tmp_path: Path) -> None:
    """An agent's own cost stands for the tokens of the export it came in; tokens sent
    without a cost (before it, or after a restart) add their priced cost: the counter only
    grows, whatever order exports come in."""
    path = StatePaths(tmp_path).events_db
    store = EventStore(path, 30.0, 1 << 30)
    store.append(screen([tokens(CLAUDE, "sonnet", "input", 10, 0.25)]).records)
    store.append(screen([tokens(CLAUDE, "sonnet", "input", 10, 0.9),
                         CostUsage(NOW, CLAUDE, None, "sonnet", 1.0)]).records)
    store.close()
    store = EventStore(path, 30.0, 1 << 30)
    store.append(screen([tokens(CLAUDE, "sonnet", "input", 10, 0.25)]).records)
    store.close()
    _, samples = scrape(store_collector(path))
    assert value(samples, "telemetryd_agent_cost_usd_total", agent="claude-code",
                 model="sonnet") == pytest.approx(1.5)
    assert value(samples, "telemetryd_agent_tokens_total", agent="claude-code", model="sonnet",
                 type="input") == 30


def test_label_caps_are_sticky_and_keep_other_monotonic(tmp_path: Path) -> None:
    """Past the cap values go to 'other'; a later busier newcomer never evicts an admitted one."""
    path = StatePaths(tmp_path).events_db
    store = EventStore(path, 30.0, 1 << 30)
    agents = [Agent(f"a{i}", None, None, i) for i in range(3)]
    store.append([tokens(agent, "m", "input", 100 * (i + 1), 0.1)
                  for i, agent in enumerate(agents)])
    collector = store_collector(path, limits=LabelLimits(agents=2), cache_seconds=0)
    _, first = scrape(collector)
    admitted = {"a1", "a2"}  # the busiest two
    for name in admitted:
        assert value(first, "telemetryd_agent_tokens_total", agent=name, model="m",
                     type="input") > 0
    other_before = value(first, "telemetryd_agent_tokens_total", agent="other", model="m",
                         type="input")
    assert other_before == 100
    store.append([tokens(Agent("huge", None, None, 9), "m", "input", 10_000, 1.0)])
    store.close()
    _, second = scrape(collector)
    assert value(second, "telemetryd_agent_tokens_total", agent="a1", model="m",
                 type="input") == 200
    assert value(second, "telemetryd_agent_tokens_total", agent="other", model="m",
                 type="input") == 10_100
    agents_seen = {dict(labels).get("agent") for name, labels in second
                   if name == "telemetryd_agent_tokens_total"}
    assert agents_seen == {"a1", "a2", "other"}


def test_agent_series_are_cached_for_the_configured_time(tmp_path: Path) -> None:
    """Scrapes inside the cache window reuse one read; after it new rows appear."""
    path = StatePaths(tmp_path).events_db
    store = EventStore(path, 30.0, 1 << 30)
    store.append([ToolCall(NOW, BOT, None, "Read", True, 1, 5.0)])
    clock = [100.0]
    collector = store_collector(path, cache_seconds=5.0, monotonic=lambda: clock[0])
    key = "telemetryd_agent_tool_calls_total"
    labels = {"agent": "bot", "tool": "Read", "outcome": "ok"}
    assert value(scrape(collector)[1], key, **labels) == 1
    store.append([ToolCall(NOW, BOT, None, "Read", True, 1, 5.0)])
    clock[0] = 104.0
    assert value(scrape(collector)[1], key, **labels) == 1
    clock[0] = 105.5
    assert value(scrape(collector)[1], key, **labels) == 2
    store.close()


def test_missing_store_or_store_without_totals_gives_empty_agent_series(tmp_path: Path) -> None:
    """No store yet, or one from a build before the totals table, exports no agent samples."""
    assert read_totals(tmp_path / "absent.sqlite3") == []
    old = tmp_path / "old.sqlite3"
    sqlite3.connect(old).execute("CREATE TABLE hourly (hour INTEGER)").connection.commit()
    assert read_totals(old) == []
    _, samples = scrape(store_collector(old))
    assert not any(name.startswith("telemetryd_agent_tokens") for name in names(samples))
    assert ("telemetryd_scrape_errors_total", (("part", "agents"),)) not in samples


def test_a_corrupt_store_is_a_counted_scrape_error(tmp_path: Path) -> None:
    """A file that is not SQLite costs the agent series only, counted under part=agents."""
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with capture_logs() as logs:
        _, samples = scrape(store_collector(bad))
    assert value(samples, "telemetryd_scrape_errors_total", part="agents") == 1
    assert value(samples, "telemetryd_build_info", version=__version__) == 1
    assert any(e["event"] == "metrics.collect_failed" and e["part"] == "agents" for e in logs)

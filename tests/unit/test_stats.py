"""Persisted stats: figures, histogram quantiles, periods, shipping marks and stats events."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from hypothesis import given, settings
from hypothesis import strategies as st
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from daemon.stats.events import stats_event, stats_event_id
from daemon.stats.figures import HOUR_SECONDS, Counter, Period, PeriodKey, hour_start
from daemon.stats.histogram import histogram_quantile, tick_bucket
from daemon.stats.store import StatsStore

T0 = 1_795_525_200.0  # 2026-11-24 13:00:00 UTC, an hour boundary
WATCH_FIELDS = {
    "samples",
    "rss_max_bytes",
    "rss_mean_bytes",
    "cpu_max_percent",
    "cpu_mean_percent",
    *(c.value for c in Counter),
}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    """A store on a real SQLite file, closed after the test."""
    s = StatsStore.open(tmp_path / "stats.db")
    yield s
    s.close()


def nearest_rank(values: list[float], q: float) -> float:
    """The textbook nearest-rank quantile, for checking the histogram against."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=2e-5, max_value=100.0), min_size=1, max_size=300),
    st.sampled_from([0.5, 0.9, 0.99]),
)
def test_histogram_quantile_is_within_one_bucket_above_the_true_value(
    values: list[float], q: float
) -> None:
    """p50/p99 from bucket counts never understate and overstate by at most 2**(1/8)."""
    hist: dict[int, int] = {}
    for v in values:
        hist[tick_bucket(v)] = hist.get(tick_bucket(v), 0) + 1
    got = histogram_quantile(hist, q, max(values))
    true = nearest_rank(values, q)
    assert got is not None
    assert true * (1 - 1e-9) <= got <= true * 2 ** (1 / 8) * (1 + 1e-9)


def test_histogram_is_bounded_for_any_duration() -> None:
    """Any duration, however absurd, lands in one of a fixed number of buckets."""
    buckets = {tick_bucket(d) for d in (0.0, -1.0, math.nan, 1e-9, 1e-3, 1.0, 1e3, 1e12, math.inf)}
    assert min(buckets) == 0
    assert max(buckets) == 199


def test_recent_adds_memory_to_disk_and_keeps_watches_and_hours_apart(store: StatsStore) -> None:
    """recent() sums committed and uncommitted samples of one watch over its window only."""
    store.record_sample("agent", T0 - 30 * HOUR_SECONDS, 9_000, 99.0)  # outside 24 h
    store.record_sample("agent", T0 + 10, 1_000, 10.0)
    store.record_sample("other", T0 + 10, 50_000, 90.0)
    assert store.commit()
    store.record_sample("agent", T0 + 20, 3_000, 30.0)  # still in memory
    store.incr("agent", Counter.WARNINGS, T0 + 20)
    store.incr("agent", Counter.PROCESSES_SEEN, T0 + 20, n=3)

    figures = store.recent("agent", T0 + 30)

    assert figures.keys() >= WATCH_FIELDS
    assert figures["samples"] == 2
    assert figures["rss_max_bytes"] == 3_000
    assert figures["rss_mean_bytes"] == 2_000
    assert figures["cpu_max_percent"] == 30.0
    assert figures["cpu_mean_percent"] == 20.0
    assert figures["warnings"] == 1
    assert figures["processes_seen"] == 3
    assert figures["criticals"] == 0


def test_recent_of_an_unknown_watch_is_empty_not_an_error(store: StatsStore) -> None:
    """A watch with no figures yet gives zero counts and None for means and maxima."""
    figures = store.recent("nobody", T0)
    assert figures["samples"] == 0
    assert figures["rss_mean_bytes"] is None
    assert figures["cpu_max_percent"] is None


def test_incr_rejects_an_unknown_counter(store: StatsStore) -> None:
    """A typo in a counter name fails at the call, not later inside a commit."""
    with pytest.raises(ValueError):
        store.incr("agent", "warnigns", T0)  # type: ignore[arg-type]


def test_summary_has_daemon_figures_and_counts_an_unclean_restart(tmp_path: Path) -> None:
    """Ticks give p50/p99, own RSS/CPU and uptime; a start with no stop before it is unclean."""
    path = tmp_path / "stats.db"
    first = StatsStore.open(path)
    first.record_start(T0)
    for i in range(100):
        duration = 0.5 if i == 99 else 0.002
        first.record_tick(T0 + i, duration, 40_000_000 + i, 2.0)
    first.close()  # no record_stop: as after a kill -9

    second = StatsStore.open(path)
    second.record_start(T0 + 200)
    second.record_tick(T0 + 230, 0.002, 41_000_000, 4.0)
    summary = second.summary(T0 + 240, since_seconds=HOUR_SECONDS)
    second.record_stop(T0 + 250)
    second.close()

    daemon = summary.daemon
    assert daemon["ticks"] == 101
    assert daemon["starts"] == 2
    assert daemon["unclean_starts"] == 1
    p50, p99 = daemon["tick_p50_seconds"], daemon["tick_p99_seconds"]
    assert isinstance(p50, float) and 0.002 <= p50 <= 0.002 * 1.1
    assert isinstance(p99, float) and 0.002 <= p99 <= 0.002 * 1.1
    assert daemon["tick_max_seconds"] == 0.5
    assert daemon["own_rss_max_bytes"] == 41_000_000
    assert daemon["own_cpu_mean_percent"] == pytest.approx((2.0 * 100 + 4.0) / 101)
    assert daemon["uptime_max_seconds"] == 99
    assert summary.running_since == T0 + 200
    assert summary.uptime_seconds == 40
    assert json.dumps(summary.as_dict())

    after_stop = StatsStore.open(path, read_only=True)
    assert after_stop.summary(T0 + 300, HOUR_SECONDS).running_since is None
    after_stop.close()


def test_closed_periods_exclude_the_current_hour(store: StatsStore) -> None:
    """Only hours that have ended are offered, oldest first, the daemon's own included."""
    store.record_sample("agent", T0 + 5, 100, 1.0)
    store.record_tick(T0 + 5, 0.001, 10, 1.0)
    store.record_sample("agent", T0 + HOUR_SECONDS + 5, 200, 2.0)

    periods = store.closed_unshipped_periods(T0 + HOUR_SECONDS + 10)

    assert [p.key for p in periods] == [PeriodKey(None, int(T0)), PeriodKey("agent", int(T0))]
    assert periods[1].figures["samples"] == 1
    assert periods[0].figures["ticks"] == 1
    assert periods[1].end == T0 + HOUR_SECONDS


def test_a_period_is_queued_once_and_shipped_only_on_delivery(store: StatsStore) -> None:
    """queued -> not offered again; delivered only via mark_delivered; unknown ids say False."""
    store.record_sample("agent", T0 + 5, 100, 1.0)
    now = T0 + HOUR_SECONDS + 1
    (period,) = store.closed_unshipped_periods(now)
    event_id = stats_event_id("box", period.key)

    store.mark_queued(period.key, event_id, now)
    assert store.closed_unshipped_periods(now + 300) == []
    assert store.queued_event_ids() == {event_id}

    assert store.mark_delivered("f" * 32, now) is False  # a crash report, not a stats event
    assert store.mark_delivered(event_id, now + 5) is True
    assert store.queued_event_ids() == frozenset()
    assert store.closed_unshipped_periods(now + 600) == []


def test_requeue_offers_a_lost_period_again_with_the_same_event(store: StatsStore) -> None:
    """A stats event the spool dropped is offered again and rebuilds the same event id."""
    store.record_sample("agent", T0 + 5, 100, 1.0)
    now = T0 + HOUR_SECONDS + 1
    (period,) = store.closed_unshipped_periods(now)
    event_id = stats_event_id("box", period.key)
    store.mark_queued(period.key, event_id, now)

    assert store.requeue(event_id, now) is True
    (again,) = store.closed_unshipped_periods(now)
    assert stats_event_id("box", again.key) == event_id


def test_a_rejected_period_is_not_offered_again(store: StatsStore) -> None:
    """An event the server refused (quarantined) is not queued over and over."""
    store.record_sample("agent", T0 + 5, 100, 1.0)
    now = T0 + HOUR_SECONDS + 1
    (period,) = store.closed_unshipped_periods(now)
    event_id = stats_event_id("box", period.key)
    store.mark_queued(period.key, event_id, now)
    assert store.mark_rejected(event_id, now) is True
    assert store.closed_unshipped_periods(now) == []
    assert store.queued_event_ids() == frozenset()


def test_old_periods_are_not_offered_and_the_limit_holds(store: StatsStore) -> None:
    """Turning on a DSN after months ships at most a week, and at most ``limit`` at once."""
    for h in range(24 * 30):
        store.record_sample("agent", T0 + h * HOUR_SECONDS, 1, 1.0)
    now = T0 + 24 * 30 * HOUR_SECONDS
    periods = store.closed_unshipped_periods(now, limit=1000)
    assert len(periods) == 7 * 24
    assert periods[0].start == hour_start(now - 7 * 24 * HOUR_SECONDS)
    assert len(store.closed_unshipped_periods(now, limit=10)) == 10


def test_prune_deletes_only_old_hours(store: StatsStore) -> None:
    """prune() keeps the window and drops what is older."""
    store.record_sample("agent", T0, 1, 1.0)
    store.record_sample("agent", T0 + 100 * HOUR_SECONDS, 1, 1.0)
    store.commit()
    assert store.prune(T0 + 101 * HOUR_SECONDS, keep_seconds=10 * HOUR_SECONDS) == 1
    assert store.recent("agent", T0 + 101 * HOUR_SECONDS, hours=200)["samples"] == 1


def test_stats_event_ids_are_stable_and_distinct() -> None:
    """Same (host, watch, hour) -> same id; any difference, or the daemon kind, -> another."""
    key = PeriodKey("agent", int(T0))
    same = stats_event_id("box", key)
    others = {
        stats_event_id("box2", key),
        stats_event_id("box", PeriodKey("agent2", int(T0))),
        stats_event_id("box", PeriodKey("agent", int(T0) + HOUR_SECONDS)),
        stats_event_id("box", PeriodKey(None, int(T0))),
    }
    assert same == stats_event_id("box", key)
    assert same not in others
    assert len(others) == 4


def test_stats_events_of_one_host_share_a_fingerprint() -> None:
    """Every period of a host groups into one Sentry issue; another host gets its own."""
    events = [
        stats_event(Period(PeriodKey(w, int(T0)), {"samples": 1}), "box") for w in ("a", "b", None)
    ]
    assert {tuple(e["fingerprint"]) for e in events} == {("telemetryd-stats", "box")}
    other = stats_event(Period(PeriodKey("a", int(T0)), {}), "box2")
    assert other["fingerprint"] == ["telemetryd-stats", "box2"]
    assert events[2]["message"] == "telemetryd stats for box, 2026-11-24 13:00 UTC"
    assert "watch" not in events[2]["tags"]


class _Collect(Transport):
    """A real sentry-sdk transport that keeps envelopes in a list instead of sending."""

    envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        """Keep the envelope."""
        self.envelopes.append(envelope)


def test_stats_event_survives_sentry_sdk_capture() -> None:
    """Captured by a real sentry-sdk client, the event keeps id, level, fingerprint, figures."""
    _Collect.envelopes = []
    client = sentry_sdk.Client(
        dsn="https://key@127.0.0.1:9/1", transport=_Collect, default_integrations=False
    )
    figures = {"samples": 3600, "rss_max_bytes": 123, "rss_mean_bytes": None}
    event = stats_event(Period(PeriodKey("agent", int(T0)), figures), "box")

    assert client.capture_event(event, scope=sentry_sdk.Scope(client=client)) == event["event_id"]

    (envelope,) = _Collect.envelopes
    item = envelope.get_event()
    assert item is not None
    sent = json.loads(json.dumps(item))
    assert sent["event_id"] == stats_event_id("box", PeriodKey("agent", int(T0)))
    assert sent["level"] == "info"
    assert sent["fingerprint"] == ["telemetryd-stats", "box"]
    assert sent["tags"]["host"] == "box"
    assert sent["tags"]["watch"] == "agent"
    assert sent["message"] == "telemetryd stats for box, watch agent, 2026-11-24 13:00 UTC"
    assert sent["timestamp"].startswith("2026-11-24T14:00:00")  # the hour's end
    context = sent["contexts"]["telemetryd_stats"]
    assert context["rss_max_bytes"] == 123
    assert context["period_start"] == "2026-11-24T13:00:00Z"
    assert context["period_end"] == "2026-11-24T14:00:00Z"

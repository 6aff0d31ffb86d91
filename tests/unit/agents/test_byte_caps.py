"""Memory bounded in bytes: attribute keys and values, series keys, stored strings and the
queue each have a cap in bytes, every cut or eviction is counted, and a cut value never
merges into another one."""

from __future__ import annotations

import gc
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from daemon.agents.decoding.attributes import AttributeLimits, to_dict
from daemon.agents.decoding.bounded import bounded
from daemon.agents.decoding.counters import OtlpCounter, OtlpCounters, OtlpStats
from daemon.agents.decoding.decode import decode_metrics
from daemon.agents.decoding.records import Agent, ApiRequest, GenericPoint, TokenUsage
from daemon.agents.decoding.series import SeriesTracker
from daemon.agents.store.event_store import EventStore
from daemon.agents.store.ingest import Ingestor
from daemon.agents.store.record_bytes import fit_records
from daemon.config.parse import ConfigError, parse_config_text
from daemon.config.render import as_toml, describe
from daemon.config.schema import OtlpSettings
from daemon.web.exposition.metrics import otlp_families
from tests.support.floods import FAT_ATTRIBUTES, FAT_CHARS
from tests.unit.agents.payloads import (
    CUMULATIVE,
    SECOND_NS,
    claude_resource,
    kvs,
    metrics_request,
    sum_metric,
)

NOW = 1_800_000_000.0
T = int(NOW * SECOND_NS)


def fat_series(first: int, count: int) -> object:
    """``count`` new series of 128 attributes whose keys and values are 200 characters."""
    keys = [f"k{j:03d}".ljust(FAT_CHARS, "k") for j in range(FAT_ATTRIBUTES)]
    points = [({key: f"{i}-{j}".ljust(FAT_CHARS, "v") for j, key in enumerate(keys)}, 1, 0, T)
              for i in range(first, first + count)]
    return metrics_request({"service.name": "fat"}, [sum_metric(f"fat.{first}", points)])


def test_attribute_keys_and_values_are_cut_to_their_bytes_and_counted() -> None:
    """Keys past key_bytes and string values past value_bytes are cut (UTF-8 bytes, not
    characters), attributes past the count are dropped unread, each counted by kind."""
    limits = AttributeLimits(count=3, key_bytes=32, value_bytes=40)
    tally: Counter[str] = Counter()
    attrs = to_dict(kvs({"k" * 33: "short", "model": "é" * 21, "n": 7, "x": 1, "y": 2}),
                    limits, tally)
    assert all(len(k.encode()) <= 32 for k in attrs)
    assert len(str(attrs["model"]).encode()) <= 40 and attrs["n"] == 7
    assert tally == {"attribute_keys": 1, "attribute_values": 1, "attributes": 2}


def test_cut_values_are_counted_and_never_equal_an_uncut_one() -> None:
    """Two model values past the value cap are cut, counted, and stay apart; a cut value
    never equals a value that was not cut."""
    shared = "claude-opus-4-8-" + "x" * 600
    points = [({"type": "input", "model": shared + tail}, 10, 0, T) for tail in ("A", "B")]
    request = metrics_request(claude_resource(), [sum_metric("claude_code.token.usage", points)])
    result = decode_metrics(request, SeriesTracker(100, 10, 3600.0).begin(NOW), NOW)
    models = {r.model for r in result.records if isinstance(r, TokenUsage)}
    assert len(models) == 2
    assert all(len(m.encode()) <= OtlpSettings.max_attribute_value_bytes for m in models)
    assert result.truncated["attribute_values"] == 2
    assert bounded(shared + "A", 64) not in (shared + "A", bounded(shared + "B", 64))


def test_fat_series_cost_what_their_cut_key_costs() -> None:
    """500 series of 128 attributes of 200 characters: the tracker holds about 1.3 KB each
    (their keys cut to max_series_key_bytes) where it held 64 KB each, measured by
    tracemalloc; the cuts are counted."""
    counters = OtlpCounters()
    tracker = SeriesTracker(10_000, 100, 3600.0, counters=counters)
    requests = [fat_series(first, 100) for first in range(0, 500, 100)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for request in requests:
            txn = tracker.begin(NOW)
            decode_metrics(request, txn, NOW)
            tracker.commit(txn, NOW)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert tracker.size == 500
    assert held < 500 * 2048, f"{held / 500:.0f} bytes per series"
    assert tracker.bytes >= held  # what is charged is an upper bound of what is held
    assert counters.snapshot()[(OtlpCounter.TRUNCATED, ("series_keys",))] == 500


def test_series_past_their_bytes_are_evicted_and_counted() -> None:
    """max_series_bytes bounds the tracker whatever max_series allows; the least recently
    used go first, each counted in evicted.series."""
    counters = OtlpCounters()
    tracker = SeriesTracker(10_000, 100, 3600.0, max_series=100_000,
                            max_series_bytes=256 * 1024, counters=counters)
    for first in range(0, 1000, 100):
        txn = tracker.begin(NOW)
        decode_metrics(fat_series(first, 100), txn, NOW)
        tracker.commit(txn, NOW)
    assert tracker.bytes <= 256 * 1024
    assert counters.snapshot()[(OtlpCounter.EVICTED, ("series",))] == 1000 - tracker.size > 0


def test_stored_strings_are_cut_and_counted() -> None:
    """Every string a record keeps (agent fields, model, kept attributes) fits the cap."""
    agent = Agent("a" * 300, "i" * 300, None, 1, service="s" * 300, host="h" * 10)
    records = [ApiRequest(NOW, agent, None, "m" * 300, 1, 1.0),
               GenericPoint(NOW, agent, None, "metric", "sum", 1.0, 0, (("k" * 300, "v"),))]
    fitted = fit_records(records, 64)
    kept = fitted.records
    assert kept[0].agent is kept[1].agent  # one agent, fitted once
    assert max(len(s.encode()) for s in (kept[0].agent.name, kept[0].agent.instance_id or "",
                                         kept[0].agent.service, kept[0].model,  # type: ignore[union-attr]
                                         kept[1].attributes[0][0])) <= 64  # type: ignore[union-attr]
    assert fitted.cut == 5
    assert fit_records(kept, 64).cut == 0  # cutting is idempotent


def test_queue_is_bounded_in_bytes(tmp_path: Path) -> None:
    """With the writer not draining, submissions past max_queued_bytes are refused (429) and
    counted; a request arriving at an empty queue is always taken."""
    store = EventStore(tmp_path / "s.sqlite3", 30.0, 1 << 30)
    ingestor = Ingestor(store, queue_size=1000, max_queued_records=1_000_000,
                        max_queued_bytes=1 << 20)
    records = [GenericPoint(NOW, Agent("bot", None, None, 1), None, "m", "sum", 1.0, 0,
                            tuple((f"k{i}", "v" * 200) for i in range(16)))] * 100
    fitted = fit_records(records, 256)
    taken = sum(ingestor.submit(fitted.records, 100, size_bytes=fitted.bytes) for _ in range(100))
    assert 1 <= taken < 100
    assert ingestor.queued_bytes() <= max(fitted.bytes, 1 << 20)
    assert ingestor.stats().get(OtlpCounter.POINTS_DROPPED, ("queue_full",)) == (100 - taken) * 100
    store.close()


def test_truncations_reach_metrics() -> None:
    """``truncated.*`` counters become telemetryd_otlp_truncated_total{kind}."""
    (family,) = [f for f in otlp_families(OtlpStats({
                     (OtlpCounter.TRUNCATED, ("series_keys",)): 4,
                     (OtlpCounter.TRUNCATED, ("attribute_values",)): 2}))
                 if f.name == "telemetryd_otlp_truncated"]
    assert {s.labels["kind"]: s.value for s in family.samples if s.name.endswith("_total")} == {
        "series_keys": 4.0, "attribute_values": 2.0}


MEMORY_KEYS = """
[otlp]
max_attributes = 64
max_attribute_key_bytes = "128B"
max_attribute_value_bytes = "1KiB"
max_stored_string_bytes = 200
max_series_key_bytes = "2KiB"
max_series_bytes = "8MiB"
max_queued_bytes = "4MiB"
max_messages_per_request = 50000
"""


def test_memory_caps_are_config_keys_that_check_config_prints() -> None:
    """Each byte cap is read from [otlp] (sizes in bytes), printed by check-config and read
    back the same."""
    config = parse_config_text(MEMORY_KEYS, "<t>", {}, 8 << 30)
    otlp = config.otlp
    assert (otlp.max_attributes, otlp.max_attribute_key_bytes, otlp.max_attribute_value_bytes,
            otlp.max_stored_string_bytes, otlp.max_series_key_bytes, otlp.max_series_bytes,
            otlp.max_queued_bytes, otlp.max_messages_per_request) == (
        64, 128, 1024, 200, 2048, 8 << 20, 4 << 20, 50_000)
    again = parse_config_text(as_toml(describe(config)), "<t>", {}, 8 << 30)
    assert again.otlp == otlp


@pytest.mark.parametrize(("text", "key"), [
    ("max_attribute_key_bytes = 8", "otlp.max_attribute_key_bytes"),
    ("max_attribute_value_bytes = 8", "otlp.max_attribute_value_bytes"),
    ("max_stored_string_bytes = 16", "otlp.max_stored_string_bytes"),
    ("max_series_key_bytes = 32", "otlp.max_series_key_bytes"),
    ('max_series_bytes = "1KiB"', "otlp.max_series_bytes"),
    ('max_queued_bytes = "1KiB"', "otlp.max_queued_bytes"),
    ("max_messages_per_request = 10", "otlp.max_messages_per_request"),
    ("max_attributes = 0", "otlp.max_attributes"),
])
def test_memory_caps_out_of_range_name_their_key(text: str, key: str) -> None:
    """A cap too small to hold a cut value's mark and digest (or zero) is refused with its
    key path."""
    with pytest.raises(ConfigError) as error:
        parse_config_text(f"[otlp]\n{text}\n", "<t>", {}, 8 << 30)
    assert key in str(error.value)


def test_series_saved_before_keys_were_strings_are_restored() -> None:
    """A sidecar written by the previous version (attributes as pairs) still continues a
    cumulative series: after the restart only the increase is counted."""
    attrs = {"type": "input", "model": "m", "session.id": "s"}

    def request(value: int) -> object:
        return metrics_request(claude_resource(**{"service.instance.id": "i"}), [
            sum_metric("claude_code.token.usage", [(attrs, value, T - SECOND_NS, T)],
                       temporality=CUMULATIVE)])

    old_item = {"metric": "claude_code.token.usage", "name": "claude-code/i",
                "stream": "claude_code.token.usage",
                "attributes": sorted([k, str(v)] for k, v in attrs.items()),
                "start_ns": T - SECOND_NS, "value": 100.0, "count": 0}
    tracker = SeriesTracker(100, 10, 3600.0)
    assert tracker.import_cumulative([old_item], NOW) == 1
    result = decode_metrics(request(150), tracker.begin(NOW), NOW)
    assert [r.tokens for r in result.records if isinstance(r, TokenUsage)] == [50]

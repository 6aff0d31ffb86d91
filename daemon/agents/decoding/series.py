"""Per-series memory across requests: cardinality caps, bounded in bytes, and
cumulative-to-delta conversion.

A series is known by one string, its key: the ``repr`` of (stream, metric, sorted attribute
pairs), cut to ``max_key_bytes`` with a digest of the whole (``bounded.py``) when longer, so
a series of 128 attributes of 200 characters costs no more than any other. A cut key ends
with the digest, a whole one with ``)``: the two never meet.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from daemon.agents.decoding.bounded import bounded
from daemon.agents.decoding.counters import OtlpCounter, OtlpCounters
from daemon.config.schema import OtlpSettings

Attributes = tuple[tuple[str, str], ...]
_SWEEP_EVERY_SECONDS = 60.0
# What one remembered series holds besides its key: its slot in the ordered dict, the
# _Series object and its numbers (tracemalloc: 180-190 bytes; see test_series_memory.py).
SERIES_OVERHEAD_BYTES = 240


def series_key(stream: str, metric: str, attributes: Attributes, max_bytes: int) -> str:
    """The key of one series, at most ``max_bytes`` (UTF-8).

    >>> series_key("codex/i-1", "m", (("model", "o3"),), 1024)
    "('codex/i-1', 'm', (('model', 'o3'),))"
    >>> series_key("codex/i-1", "m", (("k", "v" * 100),), 64).endswith(")")
    False
    """
    return bounded(repr((stream, metric, attributes)), max_bytes)


def key_bytes(key: str) -> int:
    """What one series is charged against ``max_series_bytes``: its key as CPython holds it
    and the rest of the series.

    >>> key_bytes("ab") - SERIES_OVERHEAD_BYTES, key_bytes("é") - SERIES_OVERHEAD_BYTES
    (51, 74)
    """
    return SERIES_OVERHEAD_BYTES + sys.getsizeof(key)


@dataclass(slots=True)
class _Series:
    metric: str
    seen: float
    start_ns: int = 0
    value: float = 0.0
    count: int = 0
    cumulative: bool = False


class SeriesTracker:
    """Known series, bounded: per metric and by metrics (refused past them), and globally by
    ``max_series`` and ``max_series_bytes`` with least-recently-used eviction (counted in
    ``OtlpCounter.EVICTED``, kind series); idle series are forgotten so their slots free up.
    Keys longer than ``max_key_bytes`` are cut (``OtlpCounter.TRUNCATED``, kind series_keys).

    Not thread-safe: the receiver holds one lock around begin → submit → commit, so a
    refused (429) request leaves no trace and its retry is counted in full. ``size`` and
    ``bytes`` are plain ints that other threads may read without the lock.
    """

    def __init__(self, max_series_per_metric: int, max_metrics: int, idle_seconds: float,
                 *, max_series: int = 100_000,
                 max_series_bytes: int = OtlpSettings.max_series_bytes,
                 max_key_bytes: int = OtlpSettings.max_series_key_bytes,
                 counters: OtlpCounters | None = None) -> None:
        self.max_series_per_metric = max_series_per_metric
        self.max_metrics = max_metrics
        self.max_series = max_series
        self.max_series_bytes = max_series_bytes
        self.max_key_bytes = max_key_bytes
        self.idle_seconds = idle_seconds
        self.counters = counters or OtlpCounters()
        self._series: OrderedDict[str, _Series] = OrderedDict()  # least recently used first
        self._per_metric: dict[str, list[Any]] = {}  # metric -> [its name, series]
        self.size = 0
        self.bytes = 0
        self._last_sweep = 0.0

    @classmethod
    def of(cls, settings: OtlpSettings, counters: OtlpCounters | None = None) -> SeriesTracker:
        """A tracker with the caps configured in [otlp]."""
        return cls(settings.max_series_per_metric, settings.max_metrics,
                   settings.series_idle_seconds, max_series=settings.max_series,
                   max_series_bytes=settings.max_series_bytes,
                   max_key_bytes=settings.max_series_key_bytes, counters=counters)

    def begin(self, now: float) -> SeriesTxn:
        """Start staging the series one request touches (forgetting idle ones first)."""
        if now - self._last_sweep >= _SWEEP_EVERY_SECONDS:
            self._sweep(now)
        return SeriesTxn(self)

    def commit(self, txn: SeriesTxn, now: float) -> None:
        """Make a request's staged series and cumulative values the known state."""
        known = self._series
        for key, series in txn.staged.items():
            kept = known.get(key)
            if kept is None:
                series.seen = now
                self._count_in(series)
                self.bytes += key_bytes(key)
                known[key] = series
            else:
                # Updated in place: a staged copy kept instead would be a new long-lived
                # object per series and request, scattered among each request's garbage,
                # and would keep Python's arenas from being given back after a flood.
                kept.seen = now
                if series.cumulative:
                    kept.start_ns, kept.value, kept.count = (series.start_ns, series.value,
                                                             series.count)
                    kept.cumulative = True
            known.move_to_end(key)
        evicted = 0
        while known and (len(known) > self.max_series or self.bytes > self.max_series_bytes):
            self._forget(*known.popitem(last=False))
            evicted += 1
        self.counters.count(OtlpCounter.EVICTED, ("series",), evicted)
        self.counters.count(OtlpCounter.TRUNCATED, ("series_keys",), txn.cut_keys)
        self.size = len(known)

    def _count_in(self, series: _Series) -> None:
        """Count a new series under its metric; every series of a metric shares one copy
        of its name."""
        found = self._per_metric.get(series.metric)
        if found is None:
            self._per_metric[series.metric] = [series.metric, 1]
        else:
            series.metric = found[0]
            found[1] += 1

    def _forget(self, key: str, series: _Series) -> None:
        self.bytes -= key_bytes(key)
        found = self._per_metric.get(series.metric)
        if found is not None:
            found[1] -= 1
            if found[1] <= 0:
                del self._per_metric[series.metric]

    def export_cumulative(self) -> list[dict[str, Any]]:
        """The last value of every cumulative series, to carry across a restart."""
        return [
            {"metric": series.metric, "key": key, "start_ns": series.start_ns,
             "value": series.value, "count": series.count}
            for key, series in self._series.items()
            if series.cumulative
        ]

    def import_cumulative(self, items: list[dict[str, Any]], now: float) -> int:
        """Restore exported series, so a cumulative exporter's next point is not counted
        in full a second time; returns how many were restored (malformed items are skipped).
        Items saved before keys were strings (name, stream, attributes) are read too."""
        restored = 0
        for item in items:
            try:
                metric = str(item["metric"])
                if "key" in item:
                    key = bounded(str(item["key"]), self.max_key_bytes)
                else:  # the earlier format's "name" held the stream, "stream" the name
                    attributes = tuple((str(k), str(v)) for k, v in item["attributes"])
                    key = series_key(str(item["name"]), str(item["stream"]), attributes,
                                     self.max_key_bytes)
                series = _Series(metric, now, int(item["start_ns"]), float(item["value"]),
                                 int(item["count"]), cumulative=True)
            except (KeyError, TypeError, ValueError):
                continue
            if key in self._series or len(self._series) >= self.max_series:
                continue
            if self._metric_count(metric) >= self.max_series_per_metric:
                continue
            if self.bytes + key_bytes(key) > self.max_series_bytes:
                continue
            self._series[key] = series
            self._count_in(series)
            self.bytes += key_bytes(key)
            restored += 1
        self.size = len(self._series)
        return restored

    def _metric_count(self, metric: str) -> int:
        found = self._per_metric.get(metric)
        return 0 if found is None else int(found[1])

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        horizon = now - self.idle_seconds
        for key in [k for k, s in self._series.items() if s.seen < horizon]:
            self._forget(key, self._series.pop(key))
        self.size = len(self._series)


class SeriesTxn:
    """One request's view of the tracker: reads the known state, writes only to staging."""

    def __init__(self, tracker: SeriesTracker) -> None:
        self._tracker = tracker
        self.staged: dict[str, _Series] = {}
        self._new: dict[str, int] = {}
        self._new_metrics = 0
        self.cut_keys = 0

    def admit(self, metric: str, stream: str, attributes: Attributes) -> str | None:
        """The key of this series if it may be recorded (known, or room under the caps),
        else None."""
        tracker = self._tracker
        whole = repr((stream, metric, attributes))
        key = bounded(whole, tracker.max_key_bytes)
        if key not in self.staged and key not in tracker._series:
            known = tracker._metric_count(metric) + self._new.get(metric, 0)
            if known == 0 and len(tracker._per_metric) + self._new_metrics >= tracker.max_metrics:
                return None
            if known >= tracker.max_series_per_metric:
                return None
            if known == 0:
                self._new_metrics += 1
            self._new[metric] = self._new.get(metric, 0) + 1
        if key is not whole and key not in self.staged:
            self.cut_keys += 1
        self._stage(metric, key)
        return key

    def _stage(self, metric: str, key: str) -> _Series:
        series = self.staged.get(key)
        if series is None:
            known = self._tracker._series.get(key)
            series = (
                _Series(known.metric, known.seen, known.start_ns, known.value, known.count,
                        known.cumulative)
                if known is not None
                else _Series(metric, seen=0.0)
            )
            self.staged[key] = series
        return series

    def delta(self, key: str, start_ns: int, value: float, count: int) -> tuple[float, int]:
        """The increase of a cumulative series since its last report (the whole value if new).

        A lower value or another start time is a reset: the new value counts from zero.
        """
        series = self.staged[key]
        reset = (
            not series.cumulative
            or (start_ns and series.start_ns and start_ns != series.start_ns)
            or value < series.value
            or count < series.count
        )
        if reset:
            increase, more = value, count
        else:
            increase, more = value - series.value, count - series.count
        series.cumulative = True
        series.start_ns, series.value, series.count = start_ns, value, count
        return increase, more

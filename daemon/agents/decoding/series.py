"""Per-series memory across requests: cardinality caps and cumulative-to-delta conversion."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from daemon.agents.decoding.counters import OtlpCounter, OtlpCounters

Attributes = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, str, Attributes]
_SWEEP_EVERY_SECONDS = 60.0


@dataclass(slots=True)
class _Series:
    seen: float
    start_ns: int = 0
    value: float = 0.0
    count: int = 0
    cumulative: bool = False


class SeriesTracker:
    """Known series, bounded: per metric (refused past it), and globally by ``max_series``
    with least-recently-used eviction (counted in ``evicted.series``); idle series are
    forgotten so their slots free up.

    Not thread-safe: the receiver holds one lock around begin → submit → commit, so a
    refused (429) request leaves no trace and its retry is counted in full. ``size`` is a
    plain int that other threads may read without the lock.
    """

    def __init__(self, max_series_per_metric: int, max_metrics: int, idle_seconds: float,
                 *, max_series: int = 100_000, counters: OtlpCounters | None = None) -> None:
        self.max_series_per_metric = max_series_per_metric
        self.max_metrics = max_metrics
        self.max_series = max_series
        self.idle_seconds = idle_seconds
        self.counters = counters or OtlpCounters()
        self._metrics: dict[str, dict[SeriesKey, _Series]] = {}
        self._order: OrderedDict[tuple[str, SeriesKey], None] = OrderedDict()
        self.size = 0
        self._last_sweep = 0.0

    def begin(self, now: float) -> SeriesTxn:
        """Start staging the series one request touches (forgetting idle ones first)."""
        if now - self._last_sweep >= _SWEEP_EVERY_SECONDS:
            self._sweep(now)
        return SeriesTxn(self)

    def commit(self, txn: SeriesTxn, now: float) -> None:
        """Make a request's staged series and cumulative values the known state."""
        for metric, staged in txn.staged.items():
            known = self._metrics.setdefault(metric, {})
            for key, series in staged.items():
                series.seen = now
                known[key] = series
                self._order[(metric, key)] = None
                self._order.move_to_end((metric, key))
        evicted = 0
        while len(self._order) > self.max_series:
            metric, key = self._order.popitem(last=False)[0]
            self._forget(metric, key)
            evicted += 1
        self.counters.count(OtlpCounter.EVICTED, ("series",), evicted)
        self.size = len(self._order)

    def _forget(self, metric: str, key: SeriesKey) -> None:
        known = self._metrics.get(metric)
        if known is not None:
            known.pop(key, None)
            if not known:
                del self._metrics[metric]

    def export_cumulative(self) -> list[dict[str, Any]]:
        """The last value of every cumulative series, to carry across a restart."""
        return [
            {"metric": metric, "name": key[0], "stream": key[1], "attributes": list(key[2]),
             "start_ns": series.start_ns, "value": series.value, "count": series.count}
            for metric, known in self._metrics.items()
            for key, series in known.items()
            if series.cumulative
        ]

    def import_cumulative(self, items: list[dict[str, Any]], now: float) -> int:
        """Restore exported series, so a cumulative exporter's next point is not counted
        in full a second time; returns how many were restored (malformed items are skipped)."""
        restored = 0
        for item in items:
            try:
                attributes = tuple((str(k), str(v)) for k, v in item["attributes"])
                key: SeriesKey = (str(item["name"]), str(item["stream"]), attributes)
                series = _Series(now, int(item["start_ns"]), float(item["value"]),
                                 int(item["count"]), cumulative=True)
                metric = str(item["metric"])
            except (KeyError, TypeError, ValueError):
                continue
            known = self._metrics.setdefault(metric, {})
            if len(known) < self.max_series_per_metric and len(self._order) < self.max_series:
                known[key] = series
                self._order[(metric, key)] = None
                restored += 1
        self.size = len(self._order)
        return restored

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        horizon = now - self.idle_seconds
        for metric in list(self._metrics):
            known = self._metrics[metric]
            for key in [k for k, s in known.items() if s.seen < horizon]:
                del known[key]
                self._order.pop((metric, key), None)
            if not known:
                del self._metrics[metric]
        self.size = len(self._order)


class SeriesTxn:
    """One request's view of the tracker: reads the known state, writes only to staging."""

    def __init__(self, tracker: SeriesTracker) -> None:
        self._tracker = tracker
        self.staged: dict[str, dict[SeriesKey, _Series]] = {}
        self._new: dict[str, int] = {}
        self._new_metrics = 0

    def _find(self, metric: str, key: SeriesKey) -> _Series | None:
        staged = self.staged.get(metric, {}).get(key)
        if staged is not None:
            return staged
        return self._tracker._metrics.get(metric, {}).get(key)

    def admit(self, metric: str, key: SeriesKey) -> bool:
        """Whether this series may be recorded (known, or room under the caps)."""
        if self._find(metric, key) is None:
            tracker = self._tracker
            known = len(tracker._metrics.get(metric, {})) + self._new.get(metric, 0)
            if known == 0 and len(tracker._metrics) + self._new_metrics >= tracker.max_metrics:
                return False
            if known >= tracker.max_series_per_metric:
                return False
            if known == 0:
                self._new_metrics += 1
            self._new[metric] = self._new.get(metric, 0) + 1
        self._stage(metric, key)
        return True

    def _stage(self, metric: str, key: SeriesKey) -> _Series:
        staged = self.staged.setdefault(metric, {})
        series = staged.get(key)
        if series is None:
            known = self._tracker._metrics.get(metric, {}).get(key)
            series = (
                _Series(known.seen, known.start_ns, known.value, known.count, known.cumulative)
                if known is not None
                else _Series(seen=0.0)
            )
            staged[key] = series
        return series

    def delta(
        self, metric: str, key: SeriesKey, start_ns: int, value: float, count: int
    ) -> tuple[float, int]:
        """The increase of a cumulative series since its last report (the whole value if new).

        A lower value or another start time is a reset: the new value counts from zero.
        """
        series = self._stage(metric, key)
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

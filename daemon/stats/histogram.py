"""Histograms, the one implementation: bucket maths for every histogram telemetryd keeps.

Two shapes, both pure:

- a fixed log-scale histogram of tick durations persisted per hour (``tick_bucket``,
  ``histogram_quantile``): eight buckets per doubling from 10 µs, at most
  ``TICK_HISTOGRAM_BUCKETS`` rows an hour; a quantile read from it is never below the true
  nearest-rank value and at most 9.1 % above it (and never above the max);
- Prometheus-style histograms over explicit upper bounds (``bucket_index``,
  ``BucketCounts``, ``cumulative``), used by ``/metrics`` and the agent store's totals.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence

# --- log-scale tick histogram -------------------------------------------------------------

TICK_HISTOGRAM_BASE_SECONDS = 1e-5
TICK_HISTOGRAM_STEPS_PER_DOUBLING = 8
TICK_HISTOGRAM_BUCKETS = 200


def tick_bucket(duration_seconds: float) -> int:
    """Histogram bucket of a tick duration: bucket ``i`` holds (upper(i-1), upper(i)].

    >>> tick_bucket(0.0), tick_bucket(1e-5), tick_bucket(2e-5), tick_bucket(1e9)
    (0, 0, 8, 199)
    """
    if math.isnan(duration_seconds) or duration_seconds <= TICK_HISTOGRAM_BASE_SECONDS:
        return 0
    if math.isinf(duration_seconds):
        return TICK_HISTOGRAM_BUCKETS - 1
    steps = math.log2(duration_seconds / TICK_HISTOGRAM_BASE_SECONDS)
    index = math.ceil(steps * TICK_HISTOGRAM_STEPS_PER_DOUBLING - 1e-9)
    return min(index, TICK_HISTOGRAM_BUCKETS - 1)


def bucket_upper_seconds(bucket: int) -> float:
    """Upper bound of a bucket; the last one is open-ended.

    >>> bucket_upper_seconds(8)
    2e-05
    """
    if bucket >= TICK_HISTOGRAM_BUCKETS - 1:
        return math.inf
    return TICK_HISTOGRAM_BASE_SECONDS * 2 ** (bucket / TICK_HISTOGRAM_STEPS_PER_DOUBLING)


def histogram_quantile(hist: Mapping[int, int], q: float, max_seconds: float) -> float | None:
    """Nearest-rank quantile ``q`` of a histogram, as its bucket's upper bound capped at max.

    >>> histogram_quantile({tick_bucket(0.001): 99, tick_bucket(0.5): 1}, 0.5, 0.5) < 0.0011
    True
    >>> histogram_quantile({}, 0.5, 0.0) is None
    True
    """
    total = sum(hist.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return min(bucket_upper_seconds(bucket), max_seconds)
    return max_seconds


# --- histograms over explicit upper bounds (Prometheus style) ------------------------------

OVERFLOW_LABEL = "+Inf"


def bucket_index(bounds: Sequence[float], value: float) -> int:
    """Index of the first bucket whose upper bound holds ``value``; ``len(bounds)`` past all.

    Bounds are sorted; a bucket holds values ``<=`` its bound (Prometheus ``le``).

    >>> bucket_index((0.1, 1.0), 0.1), bucket_index((0.1, 1.0), 0.5), bucket_index((0.1, 1.0), 2)
    (0, 1, 2)
    """
    return bisect.bisect_left(bounds, value)


def bound_label(bounds: Sequence[float], index: int) -> str:
    """The ``le`` label of a bucket: its upper bound as text, ``+Inf`` for the overflow.

    >>> bound_label((0.5, 120.0), 1), bound_label((0.5, 120.0), 2)
    ('120.0', '+Inf')
    """
    return repr(bounds[index]) if index < len(bounds) else OVERFLOW_LABEL


def cumulative(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Per-bucket counts (overflow last) as Prometheus cumulative ``(le, count)`` pairs.

    >>> cumulative((1.0,), [2, 3])
    [('1.0', 2.0), ('+Inf', 5.0)]
    """
    out: list[tuple[str, float]] = []
    running = 0
    for index, count in enumerate(counts):
        running += count
        out.append((bound_label(bounds, index), float(running)))
    return out


class BucketCounts:
    """Counts per bucket (plus overflow) and a sum over fixed upper bounds; not thread-safe.

    >>> h = BucketCounts((0.01, 1.0)); h.observe(0.003); h.observe(20.0); h.count, h.counts
    (2, [1, 0, 1])
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    @property
    def count(self) -> int:
        """Observations counted."""
        return sum(self.counts)

    def observe(self, value: float) -> None:
        """Count one observation of ``value`` (NaN counts in the overflow bucket)."""
        index = len(self.bounds) if math.isnan(value) else bucket_index(self.bounds, value)
        self.counts[index] += 1
        self.sum += value

    def add_bound(self, bound: str, count: int) -> None:
        """Add ``count`` observations stored under an ``le`` label.

        A bound from an older bucket layout lands in the first current bucket that holds
        it; text that is not a number counts as overflow.
        """
        try:
            upper = float(bound)
        except ValueError:
            upper = math.inf
        index = len(self.bounds) if math.isnan(upper) else bucket_index(self.bounds, upper)
        self.counts[index] += count

    def cumulative(self) -> list[tuple[str, float]]:
        """The counts as Prometheus cumulative ``(le, count)`` pairs."""
        return cumulative(self.bounds, self.counts)

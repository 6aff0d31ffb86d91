"""Growth rate of memory and time until critical (pure)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from daemon.config.schema import TREND_MIN_POINTS, TREND_MIN_SPAN_FRACTION

TREND_POINTS = 12


def add_point(points: deque[tuple[float, float]], now: float, value: float, started: float,
              first_seen: float, window_seconds: float, startup_seconds: float,
              ) -> float | None:
    """Add one observation to a process's trend points; its growth per minute, or None
    while the figure would say more about its start-up than about a leak.

    A dozen points spread over the window keep the slope cheap at any tick rate. The
    start-up ramp (an agent loading, 1 GiB/min for seconds) is no leak: points are taken
    only ``startup_seconds`` (``[daemon] trend_startup``) after the process started, and a
    rate needs ``TREND_MIN_POINTS`` spanning half the window. Just after the ramp the points are
    closer together, so they fill that span evenly.

    >>> pts: deque[tuple[float, float]] = deque(maxlen=13)
    >>> [add_point(pts, t, 100.0 + t, 0.0, 0.0, 120.0, 60.0) for t in (10.0, 30.0)]
    [None, None]
    >>> rates = [add_point(pts, float(t), 100.0 + t, 0.0, 0.0, 120.0, 60.0)
    ...          for t in range(60, 130, 5)]
    >>> rates[:12] == [None] * 12, [round(rate) for rate in rates[12:]]
    (True, [60, 60])
    """
    ramp_end = started + startup_seconds
    if now < ramp_end:
        points.clear()
        return None
    age = now - max(ramp_end, first_seen)
    spacing = min(window_seconds / TREND_POINTS, age / (TREND_POINTS / 2))
    current = list(points)
    if not points or now - points[-1][0] >= spacing:
        points.append((now, value))
    # The latest observation always counts, whether or not it is kept as a point.
    return growth_rate_per_minute([*current, (now, value)], now, window_seconds,
                                  TREND_MIN_POINTS, window_seconds * TREND_MIN_SPAN_FRACTION)


def growth_rate_per_minute(
    points: Sequence[tuple[float, float]], now: float, window_seconds: float, min_points: int = 3,
    min_span_seconds: float = 0.0,
) -> float | None:
    """Least-squares slope of (time, value) points within the window, in units per minute.

    None when there are too few points or they span no time (or less than
    ``min_span_seconds``).

    >>> pts = [(0.0, 100.0), (30.0, 130.0), (60.0, 160.0)]
    >>> growth_rate_per_minute(pts, now=60, window_seconds=120)
    60.0
    >>> growth_rate_per_minute(pts[:2], now=60, window_seconds=120) is None
    True
    >>> growth_rate_per_minute(pts, now=60, window_seconds=120, min_span_seconds=90) is None
    True
    """
    times = [t for t, _ in points if now - t <= window_seconds]
    n = len(times)
    if n < min_points or times[-1] - times[0] < min_span_seconds:
        return None
    values = [v for t, v in points if now - t <= window_seconds]
    if values.count(values[0]) == n:  # a flat line (an idle tree, every tick): no sums
        return None if times.count(times[0]) == n else 0.0
    mean_t = sum(times) / n
    mean_v = sum(values) / n
    # Centred sums (two passes): epoch seconds squared would cancel out in one pass.
    dt = [t - mean_t for t in times]
    var_t = sum([d ** 2 for d in dt])
    if var_t == 0:
        return None
    cov = sum([d * (v - mean_v) for d, v in zip(dt, values, strict=True)])
    return cov / var_t * 60.0


def seconds_until(value: float, limit: float | None, rate_per_minute: float | None) -> float | None:
    """Estimated seconds until ``value`` reaches ``limit`` at the current rate; None if not growing.

    >>> seconds_until(100, 160, 60.0)
    60.0
    >>> seconds_until(100, 160, -5.0) is None
    True
    >>> seconds_until(200, 160, 60.0)
    0.0
    """
    if limit is None or rate_per_minute is None or rate_per_minute <= 0:
        return None
    if value >= limit:
        return 0.0
    return (limit - value) / rate_per_minute * 60.0

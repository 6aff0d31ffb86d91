"""Growth rate of memory and time until critical (pure)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

TREND_POINTS = 12


def growth_rate_per_minute(
    points: Sequence[tuple[float, float]], now: float, window_seconds: float, min_points: int = 3
) -> float | None:
    """Least-squares slope of (time, value) points within the window, in units per minute.

    None when there are too few points or they span no time.

    >>> pts = [(0.0, 100.0), (30.0, 130.0), (60.0, 160.0)]
    >>> growth_rate_per_minute(pts, now=60, window_seconds=120)
    60.0
    >>> growth_rate_per_minute(pts[:2], now=60, window_seconds=120) is None
    True
    """
    times = [t for t, _ in points if now - t <= window_seconds]
    n = len(times)
    if n < min_points:
        return None
    values = [v for t, v in points if now - t <= window_seconds]
    mean_t = sum(times) / n
    mean_v = sum(values) / n
    # Centred sums (two passes): epoch seconds squared would cancel out in one pass.
    dt = [t - mean_t for t in times]
    var_t = sum([d * d for d in dt])
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


class TrendPoints:
    """A dozen RSS points spread over the window, and the growth rate they give.

    While a process is young the points are closer together, so a fast leak has a rate
    within a few ticks rather than after a tenth of the window. The slope changes only
    with the points inside the window, so it is not computed again while they stay the
    same (an idle tree, most ticks).

    >>> trend = TrendPoints()
    >>> [trend.update(t, 100.0 + 10 * t, first_seen=0.0, window_seconds=120.0)
    ...  for t in (0.0, 10.0, 20.0)]
    [None, None, 600.0]
    """

    __slots__ = ("_inside", "points", "rate_per_minute")

    def __init__(self) -> None:
        self.points: deque[tuple[float, float]] = deque(maxlen=TREND_POINTS + 1)
        self.rate_per_minute: float | None = None
        self._inside: tuple[int, tuple[float, float], int] | None = None

    def update(self, now: float, value: float, first_seen: float,
               window_seconds: float) -> float | None:
        """Add this tick's value; the growth rate per minute (None while unknown)."""
        points = self.points
        spacing = min(window_seconds / TREND_POINTS, (now - first_seen) / (TREND_POINTS / 2))
        if not points or now - points[-1][0] >= spacing:
            points.append((now, value))
        elif points[-1][1] != value:
            points[-1] = (points[-1][0], value)
        first = 0  # the oldest point inside the window (points are in time order)
        for at, _ in points:
            if now - at <= window_seconds:
                break
            first += 1
        inside = (len(points), points[-1], first)
        if inside != self._inside:
            self._inside = inside
            self.rate_per_minute = growth_rate_per_minute(list(points), now, window_seconds)
        return self.rate_per_minute

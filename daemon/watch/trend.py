"""Growth rate of memory and time until critical (pure)."""

from __future__ import annotations

from collections.abc import Sequence


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
    recent = [(t, v) for t, v in points if now - t <= window_seconds]
    if len(recent) < min_points:
        return None
    n = len(recent)
    mean_t = sum(t for t, _ in recent) / n
    mean_v = sum(v for _, v in recent) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in recent)
    if var_t == 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in recent)
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

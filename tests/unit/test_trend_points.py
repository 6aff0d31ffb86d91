"""The growth rate's fast paths give exactly what the plain least-squares sums give."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from daemon.watch.trend import growth_rate_per_minute


def reference(points: list[tuple[float, float]], now: float, window: float, min_points: int,
              min_span: float) -> float | None:
    """The slope as the sums are written in a textbook (the code before it was made cheap)."""
    recent = [(t, v) for t, v in points if now - t <= window]
    if len(recent) < min_points or recent[-1][0] - recent[0][0] < min_span:
        return None
    n = len(recent)
    mean_t = sum(t for t, _ in recent) / n
    mean_v = sum(v for _, v in recent) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in recent)
    if var_t == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in recent) / var_t * 60.0


@given(steps=st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0, 7.0, 30.0]),
                                st.sampled_from([0.0, 0.0, 0.0, 4096.0, -1e6, 3e8])),
                      min_size=1, max_size=40),
       window=st.sampled_from([3.0, 60.0, 120.0]), min_points=st.integers(1, 6),
       min_span=st.sampled_from([0.0, 10.0, 60.0]))
def test_rate_equals_the_textbook_sums(steps: list[tuple[float, float]], window: float,
                                       min_points: int, min_span: float) -> None:
    """Flat runs (an idle process) included: the same figure or the same None, exactly."""
    now, value, points = 1.7e9, 5e8, []
    for gap, change in steps:
        now += gap
        value += change
        points.append((now, value))
    assert growth_rate_per_minute(points, now, window, min_points, min_span) == \
        reference(points, now, window, min_points, min_span)

"""The trend's cached slope is the slope of the points inside the window, tick after tick."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from daemon.watch.trend import TrendPoints, growth_rate_per_minute


@given(steps=st.lists(st.tuples(st.floats(0.05, 30.0), st.sampled_from([0.0, 0.0, 1e6, -5e5])),
                      min_size=1, max_size=120),
       window=st.sampled_from([3.0, 60.0, 120.0]))
def test_cached_rate_equals_the_rate_of_the_points_kept(steps: list[tuple[float, float]],
                                                         window: float) -> None:
    """Whatever the pace and the values (runs of equal ones included), the rate returned is
    the least-squares rate of the points the trend holds at that moment."""
    trend = TrendPoints()
    now, value = 1000.0, 5e8
    for gap, change in steps:
        now += gap
        value += change
        rate = trend.update(now, value, first_seen=1000.0, window_seconds=window)
        assert rate == growth_rate_per_minute(list(trend.points), now, window)

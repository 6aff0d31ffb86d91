"""The pure threshold state machine: sustained levels, hysteresis, one transition per crossing."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from daemon.watch.thresholds import Level, LevelRule, LevelState, Transition, step

RULE = LevelRule(warning=100.0, critical=200.0, sustained=3)


def run(values: Sequence[float], rule: LevelRule = RULE,
        state: LevelState | None = None) -> tuple[LevelState, list[Transition]]:
    """Feed values one per second; return the final state and every transition."""
    state = state or LevelState()
    found: list[Transition] = []
    for now, value in enumerate(values):
        state, transitions = step(state, value, rule, float(now))
        found.extend(transitions)
    return state, found


def test_warning_fires_on_the_sustained_sample_exactly() -> None:
    """With sustained=3 the warning fires on the third sample over, not before."""
    state, found = run([150, 150])
    assert state.level == Level.OK and found == []
    state, transitions = step(state, 150, RULE, now=2.0)
    assert state.level == Level.WARNING
    (transition,) = transitions
    assert transition.event == "threshold.warning"
    assert (transition.from_level, transition.to_level) == (Level.OK, Level.WARNING)
    assert transition.value == 150 and transition.level_value == 100 and transition.at == 2.0
    assert state.since == 2.0


@given(sustained=st.integers(min_value=1, max_value=8),
       over=st.floats(min_value=100, max_value=199))
def test_level_fires_only_after_sustained_consecutive_samples(sustained: int, over: float) -> None:
    """Exactly the sustained-th consecutive sample over the warning fires it."""
    rule = LevelRule(100.0, 200.0, sustained)
    state = LevelState()
    for index in range(sustained):
        state, transitions = step(state, over, rule, float(index))
        if index < sustained - 1:
            assert transitions == []
    assert [t.to_level for t in transitions] == [Level.WARNING]


@given(sustained=st.integers(min_value=2, max_value=6),
       gaps=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=8))
def test_interrupted_runs_never_fire(sustained: int, gaps: list[int]) -> None:
    """Runs shorter than sustained, each broken by a sample under the level, never fire."""
    rule = LevelRule(100.0, 200.0, sustained)
    values: list[float] = []
    for gap in gaps:
        values += [500.0] * min(gap, sustained - 1) + [10.0]
    state, found = run(values, rule)
    assert found == [] and state.level == Level.OK


def test_jump_straight_to_critical_is_one_transition() -> None:
    """A value over critical from ok goes ok -> critical in one transition after sustained."""
    state, found = run([500, 500, 500, 500, 500])
    assert state.level == Level.CRITICAL
    assert [(t.from_level, t.to_level) for t in found] == [(Level.OK, Level.CRITICAL)]
    assert found[0].event == "threshold.critical"
    assert found[0].level_value == 200


def test_warning_then_critical() -> None:
    """Rising through warning into critical gives two transitions, each once."""
    _, found = run([150] * 4 + [250] * 5)
    assert [t.event for t in found] == ["threshold.warning", "threshold.critical"]
    assert found[1].from_level == Level.WARNING and found[1].at == 6.0


def test_critical_falls_to_warning_then_clears() -> None:
    """From critical, a value below 90% of critical but near warning steps down to warning."""
    state, found = run([250] * 3 + [170, 95, 85])
    assert state.level == Level.OK
    steps = [(t.from_level, t.to_level, t.event) for t in found]
    assert steps == [
        (Level.OK, Level.CRITICAL, "threshold.critical"),
        (Level.CRITICAL, Level.WARNING, "threshold.cleared"),
        (Level.WARNING, Level.OK, "threshold.cleared"),
    ]
    assert found[1].level_value == 200 and found[2].level_value == 100
    assert state.since is None


def test_critical_clears_straight_to_ok() -> None:
    """A drop far below both levels clears critical in one transition."""
    state, found = run([250] * 3 + [10])
    assert state.level == Level.OK
    assert [(t.from_level, t.to_level) for t in found[1:]] == [(Level.CRITICAL, Level.OK)]


def test_value_just_below_line_holds_the_level() -> None:
    """At warning, 90..100% of the level keeps the warning; under 90% clears it."""
    state, _ = run([150] * 3)
    state, transitions = step(state, 90.0, RULE, 10.0)
    assert state.level == Level.WARNING and transitions == []
    state, transitions = step(state, 89.9, RULE, 11.0)
    assert state.level == Level.OK and [t.event for t in transitions] == ["threshold.cleared"]


@given(st.lists(st.floats(min_value=90.0, max_value=179.9), min_size=1, max_size=60))
def test_oscillating_in_the_warning_band_never_flaps(values: list[float]) -> None:
    """Values between 90% of warning and 90% of critical give at most one transition."""
    _, found = run(values)
    assert len(found) <= 1
    assert all(t.to_level == Level.WARNING for t in found)


@given(st.lists(st.floats(min_value=180.0, max_value=1e9), min_size=1, max_size=60))
def test_oscillating_around_critical_never_flaps(values: list[float]) -> None:
    """Once critical, values that stay over 90% of critical never leave it."""
    state, _ = run([500.0] * 3)
    _, found = run(values, state=state)
    assert found == []


@given(values=st.lists(st.floats(min_value=0, max_value=400), max_size=80),
       sustained=st.integers(min_value=1, max_value=4),
       warning=st.one_of(st.none(), st.floats(min_value=1, max_value=150)),
       critical=st.one_of(st.none(), st.floats(min_value=151, max_value=350)))
def test_every_transition_is_justified(
    values: list[float], sustained: int, warning: float | None, critical: float | None
) -> None:
    """Rises follow `sustained` samples over the level; falls happen only below 90% of it."""
    rule = LevelRule(warning, critical, sustained)
    state = LevelState()
    for now, value in enumerate(values):
        previous = state.level
        state, transitions = step(state, value, rule, float(now))
        assert len(transitions) <= 1
        if not transitions:
            assert state.level == previous
            continue
        (transition,) = transitions
        assert transition.from_level == previous and transition.to_level == state.level
        if transition.to_level > previous:
            level = warning if transition.to_level == Level.WARNING else critical
            assert level is not None
            window = values[max(0, now - sustained + 1): now + 1]
            assert len(window) == sustained and all(v >= level for v in window)
        else:
            left = critical if previous == Level.CRITICAL else warning
            assert left is not None and value < 0.9 * left
            if transition.to_level == Level.WARNING:
                assert warning is not None and value >= 0.9 * warning
        assert (state.since is None) == (state.level == Level.OK)


@given(st.lists(st.floats(min_value=0, max_value=1e12), max_size=40))
def test_switched_off_levels_never_fire(values: list[float]) -> None:
    """A rule with no levels never leaves ok."""
    state, found = run(values, LevelRule(None, None, 1))
    assert found == [] and state.level == Level.OK


def test_sustained_zero_acts_as_one() -> None:
    """A sustained of 0 fires on the first sample over, never never."""
    _, found = run([150], LevelRule(100.0, 200.0, 0))
    assert [t.to_level for t in found] == [Level.WARNING]


def test_custom_clear_ratio() -> None:
    """clear_ratio sets the hysteresis band."""
    rule = LevelRule(100.0, None, 1, clear_ratio=0.5)
    state, _ = run([100.0, 60.0], rule)
    assert state.level == Level.WARNING
    state, found = run([49.0], rule, state)
    assert state.level == Level.OK and len(found) == 1

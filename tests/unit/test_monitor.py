"""The Monitor: hand-built ticks in, log events and report requests out (no psutil, no clock)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config.schema import WatchRule
from daemon.watch.log_lines import LogLine, log_line
from daemon.watch.monitor import Action, Monitor, ReportRequest
from daemon.watch.proc.sampler import TickSample, TreeSample
from daemon.watch.thresholds import Level

MIB = 1024**2
RULE = WatchRule(
    name="agent",
    process_names=("agent",),
    rss_warning_bytes=100 * MIB,
    rss_critical_bytes=200 * MIB,
    cpu_warning_percent=150.0,
    cpu_critical_percent=300.0,
    sustained=2,
    cpu_sustained=2,
    cooldown_seconds=60.0,
)


def tree(pid: int, rss_mib: float, cpu: float = 0.0, start: int = 1000, watch: str = "agent",
         zombie: bool = False) -> TreeSample:
    """A sample of one process tree."""
    rss = int(rss_mib * MIB)
    return TreeSample(watch=watch, pid=pid, key=(pid, start), name="agent",
                      create_time=start / 100, rss_bytes=rss, cpu_percent=cpu,
                      root_rss_bytes=rss, root_cpu_percent=cpu, members=1, zombie=zombie)


def tick(at: float, *samples: TreeSample, watch: str = "agent") -> TickSample:
    """One tick holding these samples for one watch."""
    return TickSample(at=at, monotonic=at, by_watch={watch: list(samples)}, processes_scanned=100)


def make_monitor(rule: WatchRule = RULE) -> Monitor:
    """A monitor for one watch."""
    return Monitor((rule,), history_samples=5, trend_window_seconds=60.0)


def feed(monitor: Monitor, ticks: Sequence[TickSample]) -> list[Action]:
    """Observe every tick; return every action in order."""
    actions: list[Action] = []
    for one in ticks:
        actions.extend(monitor.observe(one))
    return actions


def lines(actions: Sequence[Action]) -> list[LogLine]:
    """The log lines the actions turn into."""
    return [line for line in map(log_line, actions) if line is not None]


def events(actions: Sequence[Action], name: str) -> list[LogLine]:
    """The log events of one name."""
    return [line for line in lines(actions) if line.event == name]


def reports(actions: Sequence[Action], kind: str | None = None) -> list[ReportRequest]:
    """The report requests (of one kind)."""
    return [a for a in actions if isinstance(a, ReportRequest) and kind in (None, a.kind)]


def test_process_seen_once() -> None:
    """A new process is announced on its first tick only."""
    monitor = make_monitor()
    actions = feed(monitor, [tick(t, tree(10, 50)) for t in range(5)])
    (seen,) = events(actions, "process.seen")
    assert seen.fields["pid"] == 10 and seen.fields["watch"] == "agent"
    assert len(actions) == 1


def test_warning_logged_once_per_crossing_not_every_tick() -> None:
    """Twenty ticks over the warning give one warning; a clear and a new rise give one more."""
    monitor = make_monitor()
    over = [tick(t, tree(10, 150)) for t in range(20)]
    actions = feed(monitor, over)
    (warning,) = events(actions, "threshold.warning")
    assert warning.level == "warning"
    assert warning.fields["rss_bytes"] == 150 * MIB
    assert warning.fields["level_bytes"] == 100 * MIB
    assert warning.fields["metric"] == "rss"
    actions = feed(monitor, [tick(20 + t, tree(10, 50)) for t in range(5)])
    (cleared,) = events(actions, "threshold.cleared")
    assert cleared.level == "info" and cleared.fields["from_level"] == "warning"
    actions = feed(monitor, [tick(30 + t, tree(10, 150)) for t in range(5)])
    assert len(events(actions, "threshold.warning")) == 1
    assert reports(actions) == []


def test_critical_gives_one_report_per_cooldown() -> None:
    """Critical, clear and critical again inside the cooldown: one report, one suppression."""
    monitor = make_monitor()
    actions = feed(monitor, [tick(t, tree(10, 250)) for t in range(10)])
    (report,) = reports(actions)
    assert report.kind == "rss_critical" and report.at == 1.0
    assert report.transition is not None and report.transition.to_level == Level.CRITICAL
    assert report.rule is RULE and report.process.pid == 10
    assert [s.rss_bytes for s in report.samples] == [250 * MIB, 250 * MIB]
    (critical,) = events(actions, "threshold.critical")
    assert critical.level == "error"

    actions = feed(monitor, [tick(10, tree(10, 10)), tick(11, tree(10, 250)),
                             tick(12, tree(10, 250))])
    assert reports(actions) == []
    (suppressed,) = events(actions, "report.suppressed")
    assert suppressed.fields == {"watch": "agent", "pid": 10, "kind": "rss_critical",
                                 "reason": "cooldown"}

    # 60 s after the first report the cooldown is over.
    actions = feed(monitor, [tick(59, tree(10, 10)), tick(60, tree(10, 250)),
                             tick(61, tree(10, 250))])
    (again,) = reports(actions)
    assert again.at == 61


def test_each_process_and_kind_has_its_own_cooldown() -> None:
    """Two processes both report, and RSS and CPU critical on one process both report."""
    monitor = make_monitor()
    actions = feed(monitor, [tick(t, tree(10, 250, cpu=400), tree(11, 250, start=2000))
                             for t in range(3)])
    found = sorted((r.process.pid, r.kind) for r in reports(actions))
    assert found == [(10, "cpu_critical"), (10, "rss_critical"), (11, "rss_critical")]


def test_process_vanishing_at_warning_reports_exited_under_pressure() -> None:
    """A process gone while at warning gives process.exited and an exited_under_pressure report."""
    monitor = make_monitor()
    feed(monitor, [tick(t, tree(10, 150, start=0)) for t in range(3)])
    actions = monitor.observe(tick(3))
    (exited,) = events(actions, "process.exited")
    assert exited.fields["pressure"] == "warning"
    assert exited.fields["last_rss_bytes"] == 150 * MIB
    assert exited.fields["lifetime_seconds"] == 3.0
    (report,) = reports(actions)
    assert report.kind == "exited_under_pressure"
    assert report.transition is None and report.at == 3
    assert len(report.samples) == 3
    assert monitor.tracked == {}
    assert feed(monitor, [tick(4), tick(5)]) == []


def test_lifetime_counts_from_the_process_start_time() -> None:
    """A process started an hour before it was first seen lived an hour and more, not 2 s."""
    monitor = make_monitor()
    started_at = 1000.0
    first_seen = started_at + 3600.0
    feed(monitor, [tick(first_seen + t, tree(10, 50, start=int(started_at * 100)))
                   for t in range(3)])
    (exited,) = events(monitor.observe(tick(first_seen + 3)), "process.exited")
    assert exited.fields["lifetime_seconds"] == 3603.0


def test_process_vanishing_at_ok_is_only_logged() -> None:
    """A healthy process that exits is logged and not reported."""
    monitor = make_monitor()
    feed(monitor, [tick(0, tree(10, 50))])
    actions = monitor.observe(tick(1))
    assert [line.event for line in lines(actions)] == ["process.exited"]
    assert reports(actions) == []


def test_zombie_counts_as_exited() -> None:
    """A watched process that turns zombie at critical is reported as exited under pressure."""
    monitor = make_monitor()
    feed(monitor, [tick(t, tree(10, 250)) for t in range(3)])
    actions = monitor.observe(tick(3, tree(10, 0, zombie=True)))
    assert [r.kind for r in reports(actions)] == ["exited_under_pressure"]
    assert feed(monitor, [tick(4, tree(10, 0, zombie=True))]) == []


def test_pid_reuse_is_a_different_process() -> None:
    """Same pid with another start time: the old one exits, the new one starts from ok."""
    monitor = make_monitor()
    first = feed(monitor, [tick(t, tree(10, 250, start=1000)) for t in range(2)])
    assert [r.kind for r in reports(first)] == ["rss_critical"]

    actions = monitor.observe(tick(2, tree(10, 250, start=5000)))
    (exited,) = events(actions, "process.exited")
    assert exited.fields["pressure"] == "critical"
    assert [r.kind for r in reports(actions)] == ["exited_under_pressure"]
    assert reports(actions)[0].process.key == (10, 1000)
    (seen,) = events(actions, "process.seen")
    assert seen.fields["pid"] == 10
    assert events(actions, "threshold.critical") == []  # one sample, sustained is 2
    assert list(monitor.tracked) == [("agent", (10, 5000))]

    # The new process has its own cooldown: it reports although the old one just did.
    actions = monitor.observe(tick(3, tree(10, 250, start=5000)))
    (report,) = reports(actions)
    assert report.kind == "rss_critical" and report.process.key == (10, 5000)


def test_growth_rate_and_eta_in_logs() -> None:
    """RSS growing 1 MiB/s past the start-up ramp shows about 60 MiB/min and an ETA to
    critical on the warning."""
    monitor = make_monitor()  # started at 10 s; a 60 s window wants a 30 s span
    actions = feed(monitor, [tick(100 + t * 5, tree(10, 60 + t * 5)) for t in range(10)])
    (warning,) = events(actions, "threshold.warning")
    assert warning.fields["rate_bytes_per_min"] == pytest.approx(60 * MIB, rel=1e-6)
    tracked = monitor.tracked[("agent", (10, 1000))]
    assert tracked.eta_seconds == pytest.approx((200 - 105) * 60 / 60, rel=1e-6)
    assert warning.fields["eta_seconds"] is not None


def test_start_up_ramp_gives_no_growth_or_eta() -> None:
    """An agent allocating 1.7 GiB/min in its first 40 s, then flat: no rate and no ETA
    while it starts, nor from too few points after; never an ETA (it stopped growing)."""
    monitor = make_monitor(dataclasses.replace(RULE, rss_warning_bytes=8 * 1024 * MIB,
                                               rss_critical_bytes=16 * 1024 * MIB))
    key = ("agent", (10, 1000))
    seen = []
    for second in range(11, 200, 2):  # the process started at 10 s
        rss = 50 + min(second - 10, 40) * 1.7 * 1024 / 60
        monitor.observe(tick(second, tree(10, rss)))
        tracked = monitor.tracked[key]
        seen.append((second, tracked.rate_bytes_per_min, tracked.eta_seconds))
    early = [(s, rate, eta) for s, rate, eta in seen if s < 10 + 60 + 30]
    assert all(rate is None and eta is None for _, rate, eta in early), early[:5]
    assert all(eta is None for _, _, eta in seen)
    assert seen[-1][1] == pytest.approx(0.0, abs=1.0)


def test_history_is_bounded() -> None:
    """Only the last history_samples samples go with a report."""
    monitor = make_monitor()
    actions = feed(monitor, [tick(t, tree(10, 10 + t)) for t in range(10)] +
                   [tick(10 + t, tree(10, 250)) for t in range(2)])
    (report,) = reports(actions)
    assert [s.at for s in report.samples] == [7, 8, 9, 10, 11]


def test_unknown_watch_is_ignored_and_removed_watch_forgotten() -> None:
    """Samples of a watch not in the rules are ignored; set_rules drops a removed watch silently."""
    monitor = make_monitor()
    assert monitor.observe(tick(0, tree(10, 500, watch="other"), watch="other")) == []
    feed(monitor, [tick(t, tree(10, 150)) for t in range(3)])
    monitor.set_rules(())
    assert monitor.tracked == {}
    assert monitor.observe(TickSample(5, 5, {}, 0)) == []


@settings(max_examples=150)
@given(rss=st.lists(st.sampled_from([10, 95, 150, 185, 250]), min_size=1, max_size=80),
       cooldown=st.sampled_from([1.0, 5.0, 20.0, 600.0]))
def test_reports_of_a_kind_are_at_least_a_cooldown_apart(rss: list[int], cooldown: float) -> None:
    """Whatever the RSS does, two rss_critical reports are never closer than the cooldown."""
    rule = WatchRule(name="agent", process_names=("agent",), rss_warning_bytes=100 * MIB,
                     rss_critical_bytes=200 * MIB, sustained=2, cooldown_seconds=cooldown)
    monitor = make_monitor(rule)
    actions = feed(monitor, [tick(t, tree(10, value)) for t, value in enumerate(rss)])
    times = [r.at for r in reports(actions, "rss_critical")]
    assert all(b - a >= cooldown for a, b in pairwise(times))
    crossings = events(actions, "threshold.critical")
    assert len(times) + len(events(actions, "report.suppressed")) == len(crossings)


def stepped(wall: float, clock: float, *samples: TreeSample) -> TickSample:
    """A tick whose wall time and monotonic time disagree (the wall clock was stepped)."""
    return TickSample(at=wall, monotonic=clock, by_watch={"agent": list(samples)},
                      processes_scanned=1)


def test_a_wall_clock_step_back_does_not_extend_the_report_cooldown() -> None:
    """The wall clock steps back an hour: the next report still comes one cooldown later."""
    monitor = make_monitor()
    hour = 3600.0
    first = reports(feed(monitor, [stepped(5000.0 + t, t, tree(10, 250)) for t in range(3)]))
    assert len(first) == 1
    feed(monitor, [stepped(5010.0, 10, tree(10, 10))])  # clears
    # 70 s (monotonic) after the first report, the wall clock now reads an hour earlier.
    again = reports(feed(monitor, [stepped(5000.0 - hour + t, t, tree(10, 250))
                                   for t in (70, 71, 72)]))
    assert len(again) == 1 and again[0].at == 5000.0 - hour + 71  # stored time: wall


def test_a_wall_clock_step_back_does_not_bend_the_growth_rate() -> None:
    """RSS growing 1 MiB/s keeps its 60 MiB/min rate across an hour's step back of the wall."""
    monitor = make_monitor()
    ticks = [stepped(5100.0 + t * 5 - (3600.0 if t >= 5 else 0.0), 100 + t * 5,
                     tree(10, 60 + t * 5)) for t in range(10)]
    feed(monitor, ticks)
    tracked = monitor.tracked[("agent", (10, 1000))]
    assert tracked.rate_bytes_per_min == pytest.approx(60 * MIB, rel=1e-6)

"""The guard's rules as units: once per episode and re-armed, bounded by max_subjects, one
spend counted once whatever channels repeat it, version figures compared, config ranges."""

from __future__ import annotations

import dataclasses
import json

import pytest

from crash_reports.event.kinds import ReportKind
from daemon.agents.decoding.records import Agent, ApiRequest, CostUsage, TokenUsage, ToolCall
from daemon.config.errors import ConfigError
from daemon.config.parse import parse_config_text
from daemon.config.render import as_toml, describe
from daemon.config.schema import GuardSettings
from daemon.guard.blocks import blocked_reason, encode_blocks
from daemon.guard.guard import Guard
from daemon.guard.report import build_guard_report
from daemon.guard.verdicts import CostSurgeEvidence, VersionRegressionEvidence
from daemon.guard.versions import VersionBook
from daemon.watch.proc.sampler import TickSample, TreeSample

CLAUDE = Agent("claude-code", None, "s1", None)


class Clock:
    """A pure unit's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard(**changes: object) -> tuple[Guard, Clock]:
    clock = Clock()
    return Guard(dataclasses.replace(GuardSettings(), **changes), clock), clock  # type: ignore[arg-type]


def failing_read(ts: float, session: str = "s1") -> ToolCall:
    return ToolCall(ts, CLAUDE, session, "Read", False, 1, 3.0, "event")


def tree(pid: int, members: tuple[int, ...], cpu: float = 0.0, rss: int = 100 << 20,
         version: str | None = None, watch: str = "claude-code") -> TreeSample:
    return TreeSample(watch=watch, pid=pid, key=(pid, 1), name="x", create_time=0.0,
                      rss_bytes=rss, cpu_percent=cpu, root_rss_bytes=rss, root_cpu_percent=cpu,
                      members=1 + len(members), member_pids=members, version=version)


def tick(g: Guard, clock: Clock, *trees: TreeSample) -> list[ReportKind]:
    sample = TickSample(clock.now, clock.now, {"claude-code": list(trees)}, 100)
    return [v.rule for v in g.on_tick(sample, {}, clock.now)]


def test_tool_loop_fires_once_per_episode_and_rearms_when_the_run_breaks() -> None:
    """Ten failing Reads: one verdict; more of them: none; a different call closes the
    episode; ten more: a second verdict."""
    g, clock = guard()
    g.observe_records([failing_read(float(i)) for i in range(15)])
    assert tick(g, clock) == [ReportKind.TOOL_LOOP]
    g.observe_records([failing_read(16.0)])
    assert tick(g, clock) == []
    g.observe_records([ToolCall(17.0, CLAUDE, "s1", "Bash", True, 1, 3.0, "event")])
    assert tick(g, clock) == [] and g.counts().active[1] == ("tool_loop", 0)
    g.observe_records([failing_read(float(20 + i)) for i in range(10)])
    assert tick(g, clock) == [ReportKind.TOOL_LOOP]


def test_tool_loop_lapses_after_its_window_and_blocks_only_while_open() -> None:
    """An open loop blocks its session; a window without calls closes it (the hook lets the
    session go on), so a blocked agent is never blocked for ever."""
    g, clock = guard(block=True)
    g.observe_records([failing_read(float(i)) for i in range(10)])
    tick(g, clock)
    [block] = g.blocks(clock.now)
    assert (block.rule, block.session) == (ReportKind.TOOL_LOOP, "s1")
    clock.now += GuardSettings.tool_loop_window_seconds + 1
    tick(g, clock)
    assert g.blocks(clock.now) == []


def test_successes_without_input_are_not_a_loop_but_identical_inputs_are() -> None:
    """Claude's successful Bash calls (no input sent) never loop; ten calls with the same
    input digest do, successful or not."""
    g, clock = guard()
    g.observe_records([ToolCall(float(i), CLAUDE, "s1", "Bash", True, 1, 3.0, "event")
                       for i in range(30)])
    assert tick(g, clock) == []
    g.observe_records([ToolCall(float(i), CLAUDE, "s2", "exec", True, 1, 3.0, "event",
                                input_hash="abc") for i in range(10)])
    assert tick(g, clock) == [ReportKind.TOOL_LOOP]


def test_metric_totals_never_count_as_calls() -> None:
    """A metric point of 50 tool calls is not 50 calls in a row."""
    g, clock = guard()
    g.observe_records([ToolCall(1.0, CLAUDE, "s1", "Read", False, 50, 3.0, "metric")
                       for _ in range(12)])
    assert tick(g, clock) == []


def test_one_spend_sent_three_ways_counts_once() -> None:
    """Claude sends its spend as a cost metric, a cost event and tokens priced by us: $0.9
    in the window is $27/h (no surge), not $81/h."""
    g, clock = guard()
    g.observe_records([CostUsage(1.0, CLAUDE, "s1", "opus", 0.9, "metric"),
                       CostUsage(1.0, CLAUDE, "s1", "opus", 0.9, "event"),
                       TokenUsage(1.0, CLAUDE, "s1", "opus", "input", 1000, "event",
                                  cost_usd=0.9, cost_status="computed")])
    assert tick(g, clock) == []
    g.observe_records([CostUsage(2.0, CLAUDE, "s1", "opus", 0.2, "event")])
    assert tick(g, clock) == [ReportKind.COST_SURGE]


def test_cost_surge_by_tokens_when_no_cost_is_known_and_rearms_when_the_rate_falls() -> None:
    """No cost figure: 200,000 tokens in two minutes is 6 M/h, over the 5 M/h default; once
    the window passes the episode closes, and a new burst raises again."""
    g, clock = guard()
    burst = [TokenUsage(1.0, CLAUDE, "s1", "mystery", "input", 200_000, "event")]
    g.observe_records(burst)
    assert tick(g, clock) == [ReportKind.COST_SURGE]
    clock.now += GuardSettings.cost_surge_window_seconds + 1
    assert tick(g, clock) == [] and g.counts().active[3] == ("cost_surge", 0)
    g.observe_records(burst)
    assert tick(g, clock) == [ReportKind.COST_SURGE]


def test_error_storm_counts_failures_of_one_agent_within_the_window() -> None:
    """19 failures then one more 6 minutes later: no storm; 20 within 5 minutes: one."""
    g, clock = guard()
    fail = ApiRequest(1.0, CLAUDE, "s1", "opus", 1, 0.0, "rate_limit", 429, source="event")
    g.observe_records([fail] * 19)
    clock.now += 360
    g.observe_records([fail])
    assert tick(g, clock) == []
    g.observe_records([fail] * 19)
    assert tick(g, clock) == [ReportKind.ERROR_STORM]


def test_memory_is_bounded_by_max_subjects() -> None:
    """A thousand looping sessions with max_subjects = 5: each rule remembers at most 5."""
    g, clock = guard(max_subjects=5, tool_loop_calls=2)
    for n in range(1000):
        g.observe_records([failing_read(1.0, f"s{n}"), failing_read(2.0, f"s{n}"),
                           CostUsage(1.0, CLAUDE, f"s{n}", "opus", 0.001, "event")])
    tick(g, clock)
    assert len(g.tools.runs) <= 5 and len(g.cost.sessions) <= 5
    assert all(len(episodes) <= 5 for episodes in g.episodes.values())
    assert len(g.activity) <= 5 and len(g.session_pids) <= 5


def test_fork_storm_from_ticks_and_no_alarm_for_20_children() -> None:
    """A tree gaining 200 members over three ticks raises fork_storm once; one gaining 20
    raises nothing; a tree already big when first seen raises nothing."""
    g, clock = guard()
    assert tick(g, clock, tree(1, ()), tree(2, ()), tree(3, tuple(range(5000, 5400)))) == []
    for step in range(1, 4):
        clock.now += 1
        found = tick(g, clock, tree(1, tuple(range(100, 100 + 70 * step))),
                     tree(2, tuple(range(900, 920))), tree(3, tuple(range(5000, 5400))))
    assert found == [ReportKind.FORK_STORM]
    clock.now += 1
    assert tick(g, clock, tree(1, tuple(range(100, 310))), tree(2, tuple(range(900, 920)))) == []


def test_version_regression_from_recorded_figures() -> None:
    """Recorded figures (issue #48748's shape): 2.1.104 idles at 1.8 % CPU; 2.1.108, after
    its hour of use, at 55 %: one version_regression naming both; never again for 2.1.108;
    the book survives a restart through its JSON."""
    g, clock = guard()
    for version, cpu in (("2.1.104", 1.8), ("2.1.108", 55.0)):
        found = []
        for _ in range(3601):
            clock.now += 1.0
            found += tick(g, clock, tree(7 if version == "2.1.104" else 8, (), cpu=cpu,
                                         version=version))
        # (55 % for an hour with no telemetry is also an idle_spin: another rule's business)
        regressions = [kind for kind in found if kind is ReportKind.VERSION_REGRESSION]
        assert regressions == ([] if version == "2.1.104" else [ReportKind.VERSION_REGRESSION])
    again = Guard(GuardSettings(), clock)
    again.versions.load(json.loads(json.dumps(g.versions.to_json())))
    assert again.versions.agents["claude-code"]["2.1.108"].reported


def test_version_regression_evidence_names_both_versions() -> None:
    """The evidence carries both versions' figures and which figure got worse."""
    book = VersionBook(factor=3.0, use_seconds=3.0, max_agents=2)
    found: list[VersionRegressionEvidence] = []
    for version, cpu, growth in (("1.0", 2.0, 0), ("1.1", 2.0, 64 << 20)):
        for t in range(5):
            result = book.observe("codex", version, "t", cpu, (100 << 20) + growth * t, True,
                                  1.0, 10.0 * len(found) + t)
            if result is not None:
                found.append(result)
    [evidence] = found
    assert (evidence.previous.version, evidence.current.version) == ("1.0", "1.1")
    assert evidence.worse == ("rss_growth",)


def test_guard_report_is_its_own_kind_and_keeps_no_input() -> None:
    """A verdict becomes an event of its rule's kind with its evidence as the guard context."""
    from daemon.guard.verdicts import Verdict

    verdict = Verdict(ReportKind.COST_SURGE, CostSurgeEvidence(
        "usd", 40.0, 30.0, 1.33, 120.0, 2.5, 90000, ("opus",)), agent="claude-code",
        session="s1")
    report = build_guard_report(verdict, host="box", version="0.1", environment="test",
                                at=5.0, system={})
    assert report.tags["kind"] == "cost_surge" and report.tags["watch"] == "claude-code"
    assert report.contexts["guard"]["rate_per_hour"] == 40.0
    assert report.title == "claude-code session s1: cost surge, $40.00/h (limit $30/h)"


def test_blocks_file_round_trip() -> None:
    """What the daemon writes, the hook reads: a block until its end time, for its session."""
    data = json.loads(encode_blocks([{"rule": "cost_surge", "session": "s1",
                                      "reason": "cost_surge: $40/h", "until": 10.0}], 1.0))
    assert blocked_reason(data, "s1", 9.0) == "cost_surge: $40/h"
    assert blocked_reason(data, "s1", 10.0) is None and blocked_reason(data, "s2", 9.0) is None


def test_guard_table_parses_with_ranges_and_renders() -> None:
    """[guard] keys parse with units; a value out of range names its key; check-config
    shows the table and its TOML parses back to the same settings."""
    text = ('[guard]\nblock = true\nfork_storm_processes = 50\ncost_surge_window = "5m"\n'
            '[[watch]]\nname = "a"\nprocess_name = "a"\nguard = false\n'
            'on_guard = [{ notify = true }]\n')
    config = parse_config_text(text, "t", {}, 8 << 30)
    assert config.guard.block and config.guard.fork_storm_processes == 50
    assert config.guard.cost_surge_window_seconds == 300.0
    assert not config.watches[0].guard and len(config.watches[0].on_guard) == 1
    again = parse_config_text(as_toml(describe(config)), "t", {}, 8 << 30)
    assert again.guard == config.guard
    with pytest.raises(ConfigError, match=r"guard.fork_storm_processes.*between 2"):
        parse_config_text("[guard]\nfork_storm_processes = 1\n", "t", {}, 8 << 30)
    with pytest.raises(ConfigError, match=r"guard\.idle_spin_fallback_window"):
        parse_config_text('[guard]\nidle_spin_window = "1h"\nidle_spin_fallback_window = "1m"\n',
                          "t", {}, 8 << 30)


def test_fork_arrivals_stay_bounded_in_a_tree_that_churns_every_tick() -> None:
    """A tree starting one process every tick for 10,000 ticks within a long window keeps at
    most MAX_ARRIVALS entries, and still counts every new process."""
    from daemon.guard.forks import MAX_ARRIVALS, ForkStormRule

    rule = ForkStormRule(threshold=1_000_000, window_seconds=1e9, max_trees=4)
    tree_id = ("w", (1, 1))
    for step in range(10_000):
        rule.observe(tree_id, (100_000 + step,), float(step))
    state = rule.trees[tree_id]
    assert len(state.arrivals) <= MAX_ARRIVALS
    assert sum(n for _, n, _ in state.arrivals) == 9_999

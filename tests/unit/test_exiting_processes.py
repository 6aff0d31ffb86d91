"""A process on its way out (memory released, not yet a zombie) counts as gone, not as cleared."""

from __future__ import annotations

from pathlib import Path

from daemon.config.parse import parse_config_text
from daemon.watch.log_lines import log_line
from daemon.watch.monitor import ChildrenGone, Monitor, ReportRequest
from daemon.watch.proc.proctable import ProcStat
from daemon.watch.proc.sampler import Sampler

MiB = 1024 * 1024


class TableSequence:
    """A process table that returns prepared snapshots, one per scan (a data source fixture)."""

    def __init__(self, snapshots: list[dict[int, ProcStat]]) -> None:
        self.snapshots = snapshots

    def scan(self, keep_fresh: object = None) -> dict[int, ProcStat]:
        return self.snapshots.pop(0)

    def stale(self, pids: object) -> list[int]:
        return []

    def refresh(self, pids: object) -> dict[int, ProcStat]:
        return {}

    def close(self) -> None:
        pass

    def create_time(self, stat: ProcStat) -> float:
        return 1000.0 + stat.start_ticks / 100


def stat(pid: int, rss: int, state: str = "S", ppid: int = 1) -> ProcStat:
    return ProcStat(pid, ppid, "agent", state, 1.0, rss, 500, 1)


def test_released_memory_means_exiting_but_kernel_threads_do_not():
    """RSS 0 marks a user process as exiting; kernel threads (children of pid 2) never are."""
    assert stat(10, 0, "R").is_exiting
    assert stat(10, 0, "Z").is_exiting and stat(10, 5 * MiB, "Z").is_exiting
    assert not stat(10, 5 * MiB, "R").is_exiting
    assert not stat(11, 0, "S", ppid=2).is_exiting


def test_killed_process_seen_with_no_memory_gets_an_exit_report(tmp_path: Path):
    """SIGKILL at warning: a tick that sees RSS 0 before the zombie still yields the report."""
    config = parse_config_text(
        '[[watch]]\nname = "a"\npid = 42\nrss_warning = "100MiB"\nrss_critical = "1GiB"\n'
        "sustained = 1\n", "<test>", {}, 8 * 1024**3)
    table = TableSequence([
        {42: stat(42, 200 * MiB)},       # over warning
        {42: stat(42, 0, "R")},          # killed: memory freed, still "running"
        {},                              # reaped
    ])
    sampler = Sampler(table, config.watches)
    monitor = Monitor(config.watches, 10, 60.0)
    actions = []
    for tick in range(3):
        actions += monitor.observe(sampler.sample(float(tick), 100.0 + tick))
    events = [line.event for line in map(log_line, actions) if line is not None]
    assert "threshold.cleared" not in events
    assert events.count("threshold.warning") == 1 and "process.exited" in events
    [report] = [a for a in actions if isinstance(a, ReportRequest)]
    assert report.kind == "exited_under_pressure"


def test_child_gone_under_pressure_is_a_report_only_when_the_oom_killer_struck():
    """A child leaving a tree at warning is reported with oom_kill moving, and not without."""
    config = parse_config_text(
        '[[watch]]\nname = "a"\npid = 42\nrss_warning = "100MiB"\nrss_critical = "1GiB"\n'
        "sustained = 1\n", "<test>", {}, 8 * 1024**3)

    def run(oom_deltas: list[int | None]) -> list:
        table = TableSequence([
            {42: stat(42, 50 * MiB), 43: stat(43, 90 * MiB, ppid=42)},
            {42: stat(42, 50 * MiB), 43: stat(43, 90 * MiB, ppid=42)},
            {42: stat(42, 50 * MiB), 43: stat(43, 0, "Z", ppid=42)},  # killed, not reaped
        ])
        sampler = Sampler(table, config.watches)
        monitor = Monitor(config.watches, 10, 60.0)
        actions: list = []
        for tick, delta in enumerate(oom_deltas):
            actions += monitor.observe(sampler.sample(float(tick), 100.0 + tick), delta)
        return actions

    struck = run([None, 0, 1])
    [report] = [a for a in struck if isinstance(a, ReportRequest)]
    assert (report.kind, report.gone_pids) == ("child_oom_killed", (43,))
    assert report.samples[-1].rss_bytes == 140 * MiB  # the tree before the kill
    assert any(isinstance(a, ChildrenGone) for a in struck)
    quiet = run([None, 0, 0])  # a child that simply finished: no report
    assert not [a for a in quiet if isinstance(a, ReportRequest)]

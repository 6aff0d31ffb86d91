"""Every figure a tick reports comes from a stat line read in that tick, partial scans or not."""

from __future__ import annotations

from pathlib import Path

from daemon.config.parse import parse_config_text
from daemon.watch.proc.proctable import LinuxProcTable
from daemon.watch.proc.sampler import Sampler
from tests.unit.test_proctable import PAGE_SIZE, proc_root, stat_line  # noqa: F401

GiB = 1024**3


def watches(pid: int):  # type: ignore[no-untyped-def]
    return parse_config_text(f'[[watch]]\nname = "w{pid}"\npid = {pid}\n', "<test>", {},
                             16 * GiB).watches


def test_a_watch_on_a_carried_over_process_reads_it_in_that_tick(proc_root: Path) -> None:  # noqa: F811
    """After a reload onto a process the scans were carrying over (it belonged to no tree),
    its first sample has the RSS its stat file holds now, not what an older scan read."""
    sampler = Sampler(LinuxProcTable(proc_root), watches(107))
    sampler.sample(0.0, 100.0)  # scan 1 reads everything
    sampler.sample(1.0, 101.0)  # scan 2: only 107 and the pids ending in 2
    (proc_root / "104" / "stat").write_text(stat_line(104, ")", ppid=100, rss_pages=4321))
    sampler.set_rules(watches(104))
    tick = sampler.sample(2.0, 102.0)  # scan 3 would carry 104 over (not its turn)
    [tree] = tick.by_watch["w104"]
    assert tree.rss_bytes == 4321 * PAGE_SIZE
    [tree] = sampler.sample(3.0, 103.0).by_watch["w104"]  # and from now on it is kept fresh
    assert tree.rss_bytes == 4321 * PAGE_SIZE

"""The status rows of one tick: tracked trees, zombies and orphans grouped under their
watches (pure; ``publish.py`` puts them into the StatusSnapshot)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from daemon.status.snapshot import OrphanStatus, ProcessStatus, WatchStatus
from daemon.watch.monitor import OrphanTrack, TrackedProcess
from daemon.watch.proc.sampler import TreeSample


def process_status(tracked: TrackedProcess) -> ProcessStatus:
    """A tracked process tree as a status row (pure)."""
    sample = tracked.last
    return ProcessStatus(
        pid=tracked.pid, name=sample.name, create_time=sample.create_time,
        rss_bytes=sample.rss_bytes, cpu_percent=sample.cpu_percent, members=sample.members,
        state=tracked.level, rss_level=tracked.rss.level, cpu_level=tracked.cpu.level,
        samples_over=max(tracked.rss.over_warning, tracked.cpu.over_warning),
        rate_bytes_per_min=tracked.rate_bytes_per_min, eta_seconds=tracked.eta_seconds,
        access_denied=sample.access_denied, version=sample.version,
    )


def orphan_status(orphan: OrphanTrack, now: float) -> OrphanStatus:
    """A left-behind process as a status row (pure)."""
    sample = orphan.last
    return OrphanStatus(
        pid=orphan.pid, name=sample.name, agent_pid=sample.agent_pid,
        agent_exited=orphan.agent_exited, rss_bytes=sample.rss_bytes,
        cpu_percent=sample.cpu_percent, members=sample.members,
        create_time=sample.create_time,
        age_seconds=round(max(0.0, now - sample.create_time), 1),
        orphaned_seconds=round(max(0.0, now - orphan.orphaned_at), 1))


def watch_statuses(
    watch_names: Sequence[str],
    tracked: Iterable[TrackedProcess],
    zombies: Mapping[str, Sequence[TreeSample]],
    orphans: Iterable[OrphanTrack] = (),
    now: float = 0.0,
    rss_levels: Mapping[str, tuple[int | None, int | None]] | None = None,
) -> tuple[WatchStatus, ...]:
    """Group tracked trees (zombies seen this tick, orphans) under their watches, in config
    order."""
    # Grouped in one pass: this runs every tick, over every tracked process.
    by_watch: dict[str, list[ProcessStatus]] = {}
    for process in sorted(tracked, key=lambda t: (t.watch, t.key)):
        by_watch.setdefault(process.watch, []).append(process_status(process))
    for watch, trees in zombies.items():
        for tree in trees:
            if tree.zombie:
                by_watch.setdefault(watch, []).append(
                    ProcessStatus(pid=tree.pid, name=tree.name, rss_bytes=0, cpu_percent=0.0,
                                  zombie=True))
    left: dict[str, list[OrphanStatus]] = {}
    for orphan in sorted(orphans, key=lambda o: (o.watch, o.key)):
        left.setdefault(orphan.watch, []).append(orphan_status(orphan, now))
    levels = rss_levels or {}
    return tuple(WatchStatus(name, tuple(by_watch.get(name, ())), tuple(left.get(name, ())),
                             *levels.get(name, (None, None)))
                 for name in watch_names)

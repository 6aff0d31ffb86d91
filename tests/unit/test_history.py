"""RSS/CPU history per tree: two tiers, bounded, kept across a reopen, read at a resolution."""

from __future__ import annotations

from pathlib import Path

from daemon.stats.history import (
    HistoryLimits,
    HistoryWriter,
    Tier,
    TreeKey,
    connect,
    read_history,
)

T0 = 1_700_000_000.0
KEY = TreeKey("claude", 4242, T0 - 100)


def points(path: Path, tier: Tier) -> int:
    """How many points of a tier the file holds."""
    with connect(path, read_only=True) as conn:
        return int(conn.execute("SELECT count(*) FROM history_point WHERE tier = ?",
                                (int(tier),)).fetchone()[0])


def test_a_day_of_two_second_ticks_stays_bounded_and_keeps_the_peak(tmp_path: Path) -> None:
    """25 h of ticks: at most an hour of fine points and a day of minutes; a spike survives."""
    path = tmp_path / "stats.sqlite3"
    writer = HistoryWriter.open(path)
    at = T0
    for i in range(25 * 1800):
        rss = 100 + (10_000 if i == 40_000 else 0)
        writer.record(KEY, at, rss, 50.0)
        if i % 30 == 0:
            writer.commit(at)
        at += 2.0
    writer.commit(at)
    writer.close()
    assert points(path, Tier.FINE) <= 1801
    assert 1439 <= points(path, Tier.MINUTE) <= 1441
    with connect(path, read_only=True) as conn:
        [tree] = read_history(conn, at - 86400, at, 600)
    assert tree.key == KEY
    assert max(p.rss_bytes for p in tree.points) == 10_100
    assert all(p.cpu_percent == 50.0 for p in tree.points)
    assert len(tree.points) <= 86400 / 600 + 2


def test_history_survives_reopening_and_reads_fine_points_for_the_last_hour(
    tmp_path: Path,
) -> None:
    """A restart keeps the points; the last hour reads at full resolution."""
    path = tmp_path / "stats.sqlite3"
    writer = HistoryWriter.open(path)
    for i in range(10):
        writer.record(KEY, T0 + i * 5, 1000 + i, 1.0)
    writer.commit(T0 + 50)
    writer.close()
    writer = HistoryWriter.open(path)
    writer.record(KEY, T0 + 60, 2000, 3.0)
    writer.commit(T0 + 60)
    writer.close()
    with connect(path, read_only=True) as conn:
        [tree] = read_history(conn, T0 - 10, T0 + 61, 1)
    assert [p.rss_bytes for p in tree.points] == [1000 + i for i in range(10)] + [2000]


def test_oldest_trees_go_first_beyond_max_trees(tmp_path: Path) -> None:
    """Only ``max_trees`` trees are kept: the ones seen most recently."""
    path = tmp_path / "stats.sqlite3"
    writer = HistoryWriter.open(path, HistoryLimits(max_trees=3, prune_every_seconds=0))
    for n in range(6):
        writer.record(TreeKey("w", n, T0), T0 + n, 1, 0.0)
        writer.commit(T0 + n)
    writer.close()
    with connect(path, read_only=True) as conn:
        kept = sorted(t.key.pid for t in read_history(conn, T0 - 1, T0 + 10, 1))
    assert kept == [3, 4, 5]


def test_watch_filter_and_a_file_without_history(tmp_path: Path) -> None:
    """Reading one watch returns only its trees; a database with no history reads as empty."""
    empty = tmp_path / "empty.sqlite3"
    connect(empty).close()
    with connect(empty, read_only=True) as conn:
        assert read_history(conn, 0, T0, 60) == []
    bare = tmp_path / "bare.sqlite3"
    import sqlite3
    sqlite3.connect(bare).execute("CREATE TABLE x (y)").connection.close()
    with connect(bare, read_only=True) as conn:
        assert read_history(conn, 0, T0, 60) == []
    path = tmp_path / "stats.sqlite3"
    writer = HistoryWriter.open(path)
    writer.record(TreeKey("a", 1, T0), T0, 5, 0.0)
    writer.record(TreeKey("b", 2, T0), T0, 7, 0.0)
    writer.commit(T0)
    with connect(path, read_only=True) as conn:
        [tree] = read_history(conn, T0 - 1, T0 + 1, 1, watch="b")
    assert tree.key.pid == 2

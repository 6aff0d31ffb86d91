"""The raw /proc reader against a fixture procfs tree, and once against the real /proc."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.watch.proc.proctable import ROTATE_SCANS, LinuxProcTable, ProcStat, parse_stat_line

BOOT_TIME = 1_700_000_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def stat_line(pid: int, comm: str, state: str = "S", ppid: int = 1, utime: int = 250,
              stime: int = 50, threads: int = 3, start: int = 1000, rss_pages: int = 512) -> str:
    """A /proc/PID/stat line as the kernel writes it (52 fields)."""
    fields = [state, ppid, pid, pid, 0, -1, 4194560, 100, 0, 0, 0, utime, stime, 0, 0, 20, 0,
              threads, 0, start, 123456789, rss_pages] + [0] * 30
    return f"{pid} ({comm}) " + " ".join(str(f) for f in fields) + "\n"


def write_proc(root: Path, pid: int, line: str | bytes) -> None:
    """Create <root>/<pid>/stat holding ``line``."""
    folder = root / str(pid)
    folder.mkdir()
    data = line.encode() if isinstance(line, str) else line
    (folder / "stat").write_bytes(data)


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    """A fixture procfs with odd names, a zombie, vanished and broken entries."""
    root = tmp_path / "proc"
    root.mkdir()
    (root / "stat").write_text(f"cpu  1 2 3 4\nbtime {BOOT_TIME}\nprocesses 99\n")
    write_proc(root, 1, stat_line(1, "init", ppid=0))
    write_proc(root, 100, stat_line(100, "claude", ppid=1, utime=300, stime=100, rss_pages=1000,
                                    start=5000))
    write_proc(root, 101, stat_line(101, "my (odd) cmd", ppid=100))
    write_proc(root, 102, stat_line(102, "a) S 1 2 3 (", ppid=100))
    write_proc(root, 103, stat_line(103, "two  spaces ", ppid=100))
    write_proc(root, 104, stat_line(104, ")", ppid=100))
    write_proc(root, 105, stat_line(105, "node", state="Z", ppid=100, rss_pages=0))
    write_proc(root, 106, f"106 ({'x' * 3}) ".encode() + b"\xff" + b" broken")  # garbage fields
    write_proc(root, 107, b"107 (caf\xe9) " + stat_line(107, "x")[len("107 (x) "):].encode())
    write_proc(root, 108, "")  # empty: the process died while being read
    write_proc(root, 109, stat_line(109, "short")[:20])  # truncated
    (root / "200").mkdir()  # vanished: its directory listed, stat already gone
    (root / "201").mkdir()
    (root / "201" / "stat").mkdir()  # not a file at all
    for name in ("self", "net", "sys", "12abc"):
        (root / name).mkdir()
    return root


def test_scan_reads_every_readable_process(proc_root: Path) -> None:
    """Good entries are read; vanished, empty, truncated and garbage entries are skipped."""
    table = LinuxProcTable(proc_root).scan()
    assert sorted(table) == [1, 100, 101, 102, 103, 104, 105, 107]


def test_scan_fields(proc_root: Path) -> None:
    """ppid, state, CPU seconds, RSS bytes, start ticks and threads come from the right fields."""
    claude = LinuxProcTable(proc_root).scan()[100]
    assert claude == ProcStat(pid=100, ppid=1, comm="claude", state="S",
                              cpu_seconds=400 / CLOCK_TICKS, rss_bytes=1000 * PAGE_SIZE,
                              start_ticks=5000, num_threads=3)
    assert claude.key == (100, 5000)
    assert not claude.is_zombie


def test_odd_command_names_survive(proc_root: Path) -> None:
    """Names with spaces, parentheses and non-UTF-8 bytes parse, and fields stay aligned."""
    table = LinuxProcTable(proc_root).scan()
    assert table[101].comm == "my (odd) cmd"
    assert table[102].comm == "a) S 1 2 3 ("
    assert table[103].comm == "two  spaces "
    assert table[104].comm == ")"
    assert table[107].comm == "caf\ufffd"
    for pid in (101, 102, 103, 104, 107):
        assert table[pid].state == "S"
        assert table[pid].num_threads == 3 and table[pid].start_ticks == 1000
    assert all(table[pid].ppid == 100 for pid in (101, 102, 103, 104))


def test_zombie_is_flagged(proc_root: Path) -> None:
    """A process in state Z is reported as a zombie."""
    assert LinuxProcTable(proc_root).scan()[105].is_zombie


def test_create_time_from_boot_time(proc_root: Path) -> None:
    """Start time is the fixture's btime plus start ticks over the clock rate."""
    reader = LinuxProcTable(proc_root)
    assert reader.boot_time == BOOT_TIME
    stat = reader.scan()[100]
    assert reader.create_time(stat) == BOOT_TIME + 5000 / CLOCK_TICKS


def test_process_vanishing_between_scans(proc_root: Path) -> None:
    """A pid removed between two scans just drops out of the second."""
    reader = LinuxProcTable(proc_root)
    assert 101 in reader.scan()
    (proc_root / "101" / "stat").unlink()
    assert 101 not in reader.scan()


def test_reused_pid_has_a_new_key(proc_root: Path) -> None:
    """The same pid started later gets another (pid, start) key."""
    reader = LinuxProcTable(proc_root)
    old = reader.scan()[101].key
    (proc_root / "101" / "stat").write_text(stat_line(101, "other", start=9999))
    new = reader.scan()[101].key
    assert old == (101, 1000) and new == (101, 9999)


def test_missing_proc_stat_falls_back_to_psutil_boot_time(tmp_path: Path) -> None:
    """Without <root>/stat the boot time still comes from somewhere real."""
    reader = LinuxProcTable(tmp_path)
    assert reader.boot_time == psutil.boot_time()
    assert reader.scan() == {}


@given(comm=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00\n"),
                    max_size=15),
       ppid=st.integers(min_value=0, max_value=4_194_304),
       start=st.integers(min_value=0, max_value=2**40))
def test_parse_stat_line_any_comm(comm: str, ppid: int, start: int) -> None:
    """Whatever the command name holds, the fields after it parse correctly."""
    stat = parse_stat_line(7, stat_line(7, comm, ppid=ppid, start=start), 100, 4096)
    assert stat.comm == comm and stat.ppid == ppid and stat.start_ticks == start
    assert stat.cpu_seconds == 3.0 and stat.rss_bytes == 512 * 4096


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_real_proc_matches_psutil() -> None:
    """On the real /proc this process is found with psutil's ppid, start time and threads."""
    reader = LinuxProcTable()
    me = reader.scan()[os.getpid()]
    proc = psutil.Process()
    assert me.ppid == os.getppid()
    assert me.rss_bytes > 0
    assert abs(reader.create_time(me) - proc.create_time()) < 0.05
    assert me.num_threads >= 1


def test_scan_with_keep_fresh_carries_idle_processes_over(proc_root: Path) -> None:
    """Given the pids that must be fresh, other known processes are carried over (``stale``)
    until their turn, and ``refresh`` reads them on demand."""
    reader = LinuxProcTable(proc_root)
    reader.scan()  # scan 1: everything is new, so everything is read
    (proc_root / "100" / "stat").write_text(stat_line(100, "claude", rss_pages=2000, start=5000))
    (proc_root / "103" / "stat").write_text(stat_line(103, "two  spaces ", rss_pages=7))
    table = reader.scan(keep_fresh={100})  # scan 2: pids ending in 2 take their turn
    assert table[100].rss_bytes == 2000 * PAGE_SIZE
    assert table[103].rss_bytes == 512 * PAGE_SIZE  # carried over from scan 1
    assert reader.stale([100, 102, 103]) == [103]
    assert reader.refresh([103, 999])[103].rss_bytes == 7 * PAGE_SIZE


def test_every_process_is_read_within_ten_scans(proc_root: Path) -> None:
    """A process no tree needs still has its line read at least every ROTATE_SCANS scans."""
    reader = LinuxProcTable(proc_root)
    reader.scan()
    (proc_root / "107" / "stat").write_text(stat_line(107, "renamed"))
    names = [reader.scan(keep_fresh=frozenset())[107].comm for _ in range(ROTATE_SCANS)]
    assert names[-1] == "renamed" and names.count("renamed") >= 1


def test_a_reused_pid_is_read_at_once(proc_root: Path) -> None:
    """A pid whose /proc entry is a new directory (a new process) is read on the next scan."""
    reader = LinuxProcTable(proc_root)
    reader.scan()
    (proc_root / "new").mkdir()  # made before the old one goes: another inode
    (proc_root / "new" / "stat").write_text(stat_line(101, "newcomer", start=9999))
    shutil.rmtree(proc_root / "101")
    (proc_root / "new").rename(proc_root / "101")
    table = reader.scan(keep_fresh=frozenset())
    assert table[101].key == (101, 9999)


def open_fds() -> int:
    """Descriptors this process holds now."""
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_held_stat_files_follow_the_process_and_are_closed() -> None:
    """A kept-fresh process's stat file stays open between scans; it is closed once the
    process exits or is no longer kept fresh, and a reader closes the rest."""
    child = subprocess.Popen(["sleep", "60"])
    other = subprocess.Popen(["sleep", "60"])
    reader = LinuxProcTable()
    try:
        before = open_fds()
        reader.scan(keep_fresh={child.pid, other.pid})
        assert open_fds() == before + 2
        assert reader.scan(keep_fresh={child.pid, other.pid})[child.pid].comm == "sleep"
        child.kill()
        child.wait()
        table = reader.scan(keep_fresh={child.pid, other.pid})
        assert child.pid not in table and open_fds() == before + 1
        reader.scan(keep_fresh=frozenset())
        assert open_fds() == before
        reader.scan(keep_fresh={other.pid})
        reader.close()
        assert open_fds() == before
    finally:
        for proc in (child, other):
            proc.kill()
            proc.wait()

"""What the selector keeps of real processes is bounded: command lines, cache entries, bytes."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import psutil
import pytest

from daemon.config.parse import parse_config_text
from daemon.config.patterns import MAX_SUBJECT_CHARS
from daemon.watch.proc.identity import read_proc_identity
from daemon.watch.proc.proctable import LinuxProcTable
from daemon.watch.proc.selection import PRUNE_SLACK, Selector, SelectorCache

BIG_ARG = "x" * (128 * 1024 - 1)


def rules(text: str):  # type: ignore[no-untyped-def]
    return parse_config_text(text, "<test>", {}, psutil.virtual_memory().total).watches


@pytest.fixture
def bomb() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A process with a 1.4 MB command line, a marker near its start."""
    marker = f"bomb-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(["/bin/sh", "-c", "sleep 60; :", marker, *([BIG_ARG] * 11)])
    yield proc, marker
    proc.kill()
    proc.wait()


def test_identity_of_a_huge_command_line_keeps_only_what_patterns_see(bomb) -> None:
    """1.4 MB of arguments: the cached identity holds at most 4096 characters of them (plus
    64 arguments' worth), and a pattern on the start of the command line still matches."""
    proc, marker = bomb
    [rule] = rules(f'[[watch]]\nname = "w"\ncmdline = "{marker}"\n')
    selector = Selector([rule])
    table = LinuxProcTable().scan()
    assert proc.pid in selector.match(table)[0]
    identity = selector.identity(table[proc.pid])
    assert identity is not None
    assert sum(map(len, identity.cmdline)) <= MAX_SUBJECT_CHARS * 2
    assert len(identity.cmdline_text) == MAX_SUBJECT_CHARS
    assert identity.size_bytes < 32 * 1024
    assert selector.cache.bytes < 2 * 1024**2 + len(table) * 1024


def _agrees(pid: int) -> bool | None:
    """Whether our /proc reader and psutil see the same process (None: it is gone)."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            cmdline, username = proc.cmdline(), proc.username()
            try:
                exe = proc.exe() or None
            except psutil.AccessDenied:
                exe = None
        found = read_proc_identity(pid)
    except psutil.Error:
        return None
    if found is None:
        return None
    identity = found[0]
    if sum(map(len, cmdline)) + len(cmdline) > 2048:
        cmdline = cmdline[:1]  # a long command line is cut: compare its start
    return (list(identity.cmdline[:len(cmdline)]) == cmdline and identity.exe == exe
            and identity.username == username)


def test_the_proc_reader_agrees_with_psutil_on_every_process() -> None:
    """For each process: the same arguments (cut where the bound cuts), exe and user (a
    process that changed between the two reads is read again)."""
    verdicts = []
    for pid in psutil.pids():
        verdict = None
        for _ in range(3):
            verdict = _agrees(pid)
            if verdict is not False:
                break
        assert verdict is not False, pid
        verdicts.append(verdict)
    assert verdicts.count(True) >= 10


def test_cache_past_its_caps_evicts_and_counts() -> None:
    """A cache capped below the process table holds no more than its caps and counts what
    it evicted; matching still works for every process."""
    watch = rules('[[watch]]\nname = "w"\ncmdline = "never-matches-[0-9]{40}"\n')
    table = LinuxProcTable().scan()
    by_entries = Selector(watch, cache=SelectorCache(max_images=16))
    assert by_entries.match(table) == [[]]
    assert len(by_entries.cache.images) <= 16 and by_entries.evicted >= len(table) - 1 - 16
    by_bytes = Selector(watch, cache=SelectorCache(max_bytes=16 * 1024))
    by_bytes.match(table)
    assert by_bytes.cache.bytes <= 16 * 1024 and by_bytes.evicted > 0


def test_images_of_exited_processes_are_dropped() -> None:
    """Eighty processes come and go: once they exited, their cached images are pruned."""
    watch = rules('[[watch]]\nname = "w"\ncmdline = "never-matches-[0-9]{40}"\n')
    selector = Selector(watch)
    reader = LinuxProcTable()
    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(80)]
    try:
        selector.match(reader.scan())
        assert len(selector.cache.images) >= 80
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    table = reader.scan()
    selector.match(table)
    assert len(selector.cache.images) <= len(table) + PRUNE_SLACK
    assert not {proc.pid for proc in procs} & {key[0] for key in selector.cache.images}

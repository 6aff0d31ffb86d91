"""Who may get the heap-snapshot signal: read from a procfs tree, never guessed by name."""

from __future__ import annotations

from pathlib import Path

from daemon.runtime.reports.node_heap import node_options_of, why_not_signal
from daemon.runtime.reports.node_options import heap_flags

FOLDER = Path("/state/heap snapshots")
CAUGHT = "SigCgt:\t0000000100004e02\n"  # node with --heapsnapshot-signal=SIGUSR2
NOT_CAUGHT = "SigCgt:\t0000000100004602\n"  # the same node without it


def member(proc: Path, pid: int, environ: dict[str, str], status: str) -> int:
    """A /proc/PID with an environ (NUL-separated) and a status file."""
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    (folder / "environ").write_bytes(b"".join(f"{k}={v}".encode() + b"\0"
                                              for k, v in environ.items()))
    (folder / "status").write_text(f"Name:\tnode\n{status}")
    return pid


def test_only_a_member_that_asked_and_catches_the_signal_may_get_it(tmp_path: Path) -> None:
    """Our flags + SIGUSR2 caught: yes. No flags, another folder, not caught, gone: no."""
    secret = {"API_KEY": "sk-secret-value", "PATH": "/bin"}
    ours = {**secret, "NODE_OPTIONS": "--max-old-space-size=64 " + heap_flags(str(FOLDER))}
    asked = member(tmp_path, 10, ours, CAUGHT)
    plain = member(tmp_path, 11, secret, CAUGHT)
    elsewhere = member(tmp_path, 12, {"NODE_OPTIONS": heap_flags("/tmp/x")}, CAUGHT)
    starting = member(tmp_path, 13, ours, NOT_CAUGHT)
    assert why_not_signal(tmp_path, asked, FOLDER) is None
    for pid in (plain, elsewhere):
        why = why_not_signal(tmp_path, pid, FOLDER)
        assert why is not None and "--heapsnapshot-signal" in why
    assert "not caught" in (why_not_signal(tmp_path, starting, FOLDER) or "")
    assert "unreadable" in (why_not_signal(tmp_path, 99, FOLDER) or "")
    # Only the NODE_OPTIONS entry is ever read back; the rest of the environment is not kept.
    assert node_options_of(tmp_path, asked) == ours["NODE_OPTIONS"]
    assert node_options_of(tmp_path, plain) is None


def test_a_huge_environment_is_read_only_up_to_its_bound(tmp_path: Path) -> None:
    """NODE_OPTIONS after 2 MiB of other variables is not looked for (bounded read)."""
    padding = {f"V{i}": "x" * 1000 for i in range(2100)}
    pid = member(tmp_path, 20, {**padding, "NODE_OPTIONS": heap_flags(str(FOLDER))}, CAUGHT)
    assert node_options_of(tmp_path, pid) is None
    assert why_not_signal(tmp_path, pid, FOLDER) is not None

"""Run one child in the foreground for ``telemetryd wrap`` and watch it until it ends.

The child stays in our process group, so it is the terminal's foreground job with the same
controlling terminal (key presses, ``SIGWINCH``, Ctrl-Z and ``fg`` reach it as if it had been
started by the shell), like ``env`` or ``nice`` do. While waiting we ignore ``SIGINT`` and
``SIGQUIT`` (the terminal sends them to the child too) and forward ``SIGTERM`` and ``SIGHUP``.
The child waits on a pipe until its announcement file exists, so the daemon can watch it
from its first instruction.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from crash_reports.event.redact import redact_name
from daemon.watch.proc.members import MemberHistory, MemberRss

SAMPLE_SECONDS = 0.5
KEPT_SAMPLES = 120
FORWARDED = (signal.SIGTERM, signal.SIGHUP)
IGNORED = (signal.SIGINT, signal.SIGQUIT)


@dataclass
class Outcome:
    """How the child ended and what was seen of it."""

    pid: int
    wait_status: int
    started_at: float
    ended_at: float
    samples: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEPT_SAMPLES))
    members: list[dict[str, Any]] = field(default_factory=list)
    oom_before: dict[str, int | None] = field(default_factory=dict)
    oom_after: dict[str, int | None] = field(default_factory=dict)
    member_history: MemberHistory = field(
        default_factory=lambda: MemberHistory(KEPT_SAMPLES * SAMPLE_SECONDS))

    @property
    def signal_number(self) -> int | None:
        """The signal that ended the child, if one did."""
        return os.WTERMSIG(self.wait_status) if os.WIFSIGNALED(self.wait_status) else None

    @property
    def exit_code(self) -> int:
        """What ``wrap`` exits with: the child's status, or 128 + N for signal N."""
        number = self.signal_number
        return 128 + number if number is not None else os.waitstatus_to_exitcode(
            self.wait_status)

    def oom_kill_delta(self) -> dict[str, int]:
        """OOM kills counted while the child ran, per source (cgroup, vmstat)."""
        return {key: after - before for key, after in self.oom_after.items()
                if after is not None and (before := self.oom_before.get(key)) is not None
                and after > before}


def oom_counters(pid: int, proc: Path = Path("/proc"), sys_fs: Path = Path("/sys/fs/cgroup")
                 ) -> dict[str, int | None]:
    """``oom_kill`` of the memory cgroup ``pid`` is in (cgroup v2) and of the whole system."""
    found: dict[str, int | None] = {"cgroup": None, "vmstat": None}
    with contextlib.suppress(OSError, ValueError):
        for line in (proc / str(pid) / "cgroup").read_text().splitlines():
            if line.startswith("0::"):
                events = sys_fs / line[3:].lstrip("/") / "memory.events"
                found["cgroup"] = _field(events.read_text(), "oom_kill")
    with contextlib.suppress(OSError, ValueError):
        found["vmstat"] = _field((proc / "vmstat").read_text(), "oom_kill")
    return found


def _field(text: str, name: str) -> int | None:
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return int(value)
    return None


def tree_snapshot(pid: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """A sample of the child's tree (total RSS, members) and each member's RSS, or None."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    members: list[dict[str, Any]] = []
    for proc in procs:
        with contextlib.suppress(psutil.Error), proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue  # dead, not yet reaped: no memory of its own any more
            members.append({"pid": proc.pid, "ppid": proc.ppid(), "name": redact_name(proc.name()),
                            "rss_bytes": proc.memory_info().rss})
    total = sum(int(member["rss_bytes"]) for member in members)
    return {"at": time.time(), "rss_bytes": total, "members": len(members)}, members


@contextlib.contextmanager
def _signals_for(pid_box: list[int]) -> Iterator[None]:
    """Ignore SIGINT/SIGQUIT and forward SIGTERM/SIGHUP to the child; restore on exit."""
    def forward(signum: int, _frame: object) -> None:
        if pid_box:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid_box[0], signum)

    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in IGNORED}
    previous.update({sig: signal.signal(sig, forward) for sig in FORWARDED})
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(
    argv: Sequence[str],
    environment_for: Callable[[int], Mapping[str, str]],
    announce: Callable[[int], None],
    on_sample: Callable[[dict[str, Any]], None] | None = None,
) -> Outcome:
    """Start ``argv``, announce it, let it run, sample its tree, return how it ended."""
    ready_read, ready_write = os.pipe()
    pid_box: list[int] = []
    with _signals_for(pid_box):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; it leaves through exec or _exit
            _exec_child(argv, environment_for, ready_read, ready_write)
        pid_box.append(pid)
        os.close(ready_read)
        started = time.time()
        outcome = Outcome(pid, 0, started, started, oom_before=oom_counters(pid))
        try:
            announce(pid)
        finally:
            os.write(ready_write, b"go")
            os.close(ready_write)
        outcome.wait_status = _wait(pid, outcome, on_sample)
        outcome.ended_at = time.time()
        # The child is reaped: its cgroup is ours (it was born in it) unless it moved itself.
        outcome.oom_after = oom_counters(os.getpid())
    return outcome


def _exec_child(argv: Sequence[str], environment_for: Callable[[int], Mapping[str, str]],
                ready_read: int, ready_write: int) -> None:  # pragma: no cover - in the child
    code = 127
    try:
        os.close(ready_write)
        for sig in (*IGNORED, *FORWARDED):
            signal.signal(sig, signal.SIG_DFL)
        os.read(ready_read, 2)
        os.close(ready_read)
        env = dict(environment_for(os.getpid()))
        os.execvpe(argv[0], list(argv), env)  # noqa: S606 - no shell, by design
    except OSError as exc:
        code = 127 if exc.errno == errno.ENOENT else 126
        os.write(2, f"telemetryd wrap: cannot run {argv[0]}: {exc.strerror}\n".encode())
    finally:
        os._exit(code)


def _wait(pid: int, outcome: Outcome, on_sample: Callable[[dict[str, Any]], None] | None) -> int:
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    try:
        while True:
            snapshot = tree_snapshot(pid)
            if snapshot is not None:
                sample, members = snapshot
                if members:
                    outcome.samples.append(sample)
                    outcome.members = members
                    outcome.member_history.observe(sample["at"], [
                        MemberRss(m["pid"], m["name"], m["rss_bytes"]) for m in members])
                    if on_sample is not None:
                        on_sample(sample)
            if poller.poll(SAMPLE_SECONDS * 1000):
                _, status = os.waitpid(pid, 0)
                return status
    finally:
        os.close(pidfd)

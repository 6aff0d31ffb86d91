"""kill -9 at random points while spooling and flushing loses nothing; two flushers never race."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from crash_reports.spool.store import Spool, SpoolLimits
from tests.support.fault_server import Behaviour, FaultServer, make_envelope

REPO = Path(__file__).resolve().parents[2]

# The child spools `new` reports (printing each id once put() returned), then flushes
# until nothing is pending.  In "race" mode it first waits for a start file, then
# flushes without waiting for the lock and counts how often it found it busy.
CHILD = r"""
import sys, time
from pathlib import Path
import structlog
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from crash_reports.delivery.flusher import Flusher
from crash_reports.delivery.retry import RetryPolicy
from crash_reports.spool.store import Spool, SpoolLimits
from crash_reports.delivery.upload import Uploader
from tests.support.fault_server import make_envelope

root, dsn, new, mode = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
spool = Spool(root, SpoolLimits(max_reports=100_000))
print("ready", flush=True)
for _ in range(new):
    print("stored", spool.put(make_envelope()), flush=True)
flusher = Flusher(
    spool, Uploader(dsn, "test", timeout_seconds=10), RetryPolicy(0.01, 0.05)
)
if mode == "race":
    go = root.parent / "go"
    while not go.exists():
        time.sleep(0.001)
busy = delivered = 0
while True:
    result = flusher.flush(force=True, lock_timeout_seconds=0 if mode == "race" else 10)
    delivered += result.delivered
    if result.status == "busy":
        busy += 1
        time.sleep(0.002)
    elif result.status == "ok" and result.still_pending == 0:
        break
print("done", busy, delivered, flush=True)
"""


def start_child(root: Path, dsn: str, new: int, mode: str, stderr: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with stderr.open("ab") as errors:
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), dsn, str(new), mode],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
            cwd=REPO,
        )


def read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout: float) -> bytes:
    """Read the child's stdout until ``marker`` appears, the child exits, or the deadline."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    deadline = time.monotonic() + timeout
    while marker not in buffer and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buffer += chunk
    return buffer


def stored_ids(output: bytes) -> set[str]:
    """The report ids the child announced as stored (put() had returned)."""
    lines = [line for line in output.splitlines() if line.startswith(b"stored")]
    # A print is one write of a short line to a pipe, so a kill never cuts one in half.
    assert all(len(line.split()) == 2 for line in lines), output.decode(errors="replace")
    return {line.split()[1].decode() for line in lines}


def assert_spool_sane(spool: Spool) -> None:
    """Nothing half-written is visible and nothing was ever corrupt."""
    for entry in spool.list_all():
        if entry.state != "delivered":
            spool.read(entry.id)  # parses, or KeyError
    assert list(spool.corrupt_dir.iterdir()) == []


def wait_until(
    proc: subprocess.Popen[bytes],
    output: bytearray,
    reached: Callable[[bytes], bool],
    timeout: float,
) -> bool:
    """Read the child's stdout into ``output`` until ``reached``, its exit, or the deadline."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    while not reached(bytes(output)):
        if time.monotonic() >= deadline:
            return False
        ready, _, _ = select.select([fd], [], [], 0.001)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:  # the child exited before the point
                return reached(bytes(output))
            output += chunk
    return True


def stored_count(output: bytes) -> int:
    """How many complete ``stored`` lines the child printed so far."""
    return sum(1 for line in output.split(b"\n")[:-1] if line.startswith(b"stored"))


KillPoint = tuple[str, int]


def at_point(point: KillPoint, server: FaultServer, sent_before: int) -> Callable[[bytes], bool]:
    """A test on the child's output so far: has this round reached ``point``?"""
    kind, count = point
    if kind == "stored":
        return lambda output: stored_count(output) >= count
    return lambda _: len(server.received) >= sent_before + count


# Where a round is killed: after the child announced k reports stored (0: just started,
# so the kill lands inside a put()), or once the server has read the j-th upload of the
# round (the answer is delayed, so the kill lands with a report on the wire, or between
# the 2xx and the removal from the spool).  Every point is hit KILLS_PER_POINT times.
KILL_POINTS: list[KillPoint] = [("stored", k) for k in range(4)] + [("sent", j) for j in (1, 2, 3)]
KILLS_PER_POINT = 3
MIN_ROUNDS = 30
ROUNDS_DEADLINE_SECONDS = 300.0


@pytest.mark.slow
@pytest.mark.timeout(ROUNDS_DEADLINE_SECONDS + 60)  # its own deadline says more than a timeout
def test_kill9_at_random_points_loses_no_report(tmp_path: Path) -> None:
    """Spool+flush rounds killed at every progress point; every stored report arrives once."""
    seed = int(os.environ.get("KILL9_SEED", "0")) or random.randrange(1, 2**32)
    rng = random.Random(seed)
    root = tmp_path / "spool"
    promised: set[str] = set()
    kills: Counter[KillPoint] = Counter()
    rounds = 0
    deadline = time.monotonic() + ROUNDS_DEADLINE_SECONDS
    # A few milliseconds per answer so kills land while a report is on the wire.
    with FaultServer(default=Behaviour(delay_seconds=0.003)) as server:
        schedule: list[KillPoint] = []
        while (
            min(kills[point] for point in KILL_POINTS) < KILLS_PER_POINT
            or rounds < MIN_ROUNDS
            or len(promised) < MIN_ROUNDS
        ):
            assert time.monotonic() < deadline, f"seed {seed}: only {dict(kills)} after {rounds}"
            if not schedule:
                schedule = rng.sample(KILL_POINTS, len(KILL_POINTS))
            point = schedule.pop()
            rounds += 1
            sent_before = len(server.received)
            child = start_child(root, server.dsn(), 3, "plain", tmp_path / "stderr")
            output = bytearray()
            assert wait_until(child, output, lambda out: b"ready\n" in out, timeout=30), (
                "child did not start: " + (tmp_path / "stderr").read_text()[-3000:]
            )
            reached = wait_until(child, output, at_point(point, server, sent_before), 30)
            # A little jitter so kills spread over the whole step, not just its start.
            time.sleep(rng.uniform(0, 0.004))
            if reached and child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
                kills[point] += 1
            remaining, _ = child.communicate(timeout=30)
            if child.returncode != -signal.SIGKILL:
                assert child.returncode == 0, (tmp_path / "stderr").read_text()[-3000:]
            promised |= stored_ids(bytes(output) + remaining)
            assert_spool_sane(Spool(root, SpoolLimits(max_reports=100_000)))
        final = start_child(root, server.dsn(), 0, "plain", tmp_path / "stderr")
        out = read_until(final, b"done", timeout=60)
        out += final.communicate(timeout=30)[0]
        assert b"done" in out, (tmp_path / "stderr").read_text()[-3000:]
        accepted = server.accepted_ids()
        bodies: dict[str, set[bytes]] = {}
        for request in server.received:
            if request.accepted and request.event_id:
                bodies.setdefault(request.event_id, set()).add(request.body.split(b"\n", 1)[1])

    spool = Spool(root, SpoolLimits(max_reports=100_000))
    killed_rounds = sum(kills.values())
    assert killed_rounds >= KILLS_PER_POINT * len(KILL_POINTS)
    assert promised <= set(accepted), f"seed {seed}: lost {sorted(promised - set(accepted))}"
    assert spool.pending() == [] and spool.quarantined() == []
    assert list(spool.corrupt_dir.iterdir()) == []
    duplicates = sum(count - 1 for count in Counter(accepted).values())
    print(
        f"kill9 seed {seed}: killed {killed_rounds}/{rounds}, promised {len(promised)}, "
        f"re-sent {duplicates}"
    )
    assert duplicates <= killed_rounds  # at most one re-send per kill
    # A re-send is the very same report under the same event_id.
    assert all(len(items) == 1 for items in bodies.values())


@pytest.mark.slow
def test_two_processes_flushing_at_once_never_send_a_report_twice(tmp_path: Path) -> None:
    """Two flusher processes started together deliver each report exactly once."""
    root = tmp_path / "spool"
    spool = Spool(root, SpoolLimits(max_reports=100_000))
    ids = {spool.put(make_envelope()) for _ in range(40)}
    with FaultServer(default=Behaviour(delay_seconds=0.02)) as server:
        children = [
            start_child(root, server.dsn(), 0, "race", tmp_path / f"stderr{i}") for i in range(2)
        ]
        for child in children:
            assert b"ready" in read_until(child, b"ready", timeout=30)
        (tmp_path / "go").touch()
        outputs = [read_until(child, b"done", timeout=60) for child in children]
        outputs = [
            out + child.communicate(timeout=30)[0]
            for out, child in zip(outputs, children, strict=True)
        ]
        accepted = server.accepted_ids()
    for i, out in enumerate(outputs):
        assert b"done" in out, (tmp_path / f"stderr{i}").read_text()[-3000:]
    summaries = [out.split(b"done", 1)[1].split() for out in outputs]
    busy = sum(int(fields[0]) for fields in summaries)
    delivered = sum(int(fields[1]) for fields in summaries)
    assert sorted(accepted) == sorted(ids)  # each exactly once
    assert delivered == 40
    assert busy > 0, "the two flushers never overlapped: the test proved nothing"
    assert spool.pending() == []

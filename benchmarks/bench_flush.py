"""How fast the flusher delivers spooled envelopes to a fast local receiver.

Prints, for the same envelopes: raw POSTs with no spool (the baseline), spooling
(``put``), listing a cold spool, and the flusher's delivery rate, with the ratio of the
flusher to the baseline.  The receiver runs in its own process so it does not compete
for this process's GIL.

    .venv/bin/python benchmarks/bench_flush.py [--reports 500] [--dir PATH]
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import structlog

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crash_reports.delivery.flusher import Flusher  # noqa: E402
from crash_reports.delivery.upload import Uploader  # noqa: E402
from crash_reports.spool.store import Spool, SpoolLimits  # noqa: E402
from tests.support.fault_server import make_envelope  # noqa: E402

RECEIVER = r"""
import sys, threading
from tests.support.fault_server import FaultServer
server = FaultServer()
print(server.port, flush=True)
sys.stdin.read()
server.stop()
"""


def start_receiver() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", RECEIVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def raw_posts(port: int, bodies: list[bytes]) -> float:
    """Seconds to POST every body with a fresh connection each, as the uploader does."""
    started = time.perf_counter()
    for body in bodies:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/api/1/envelope/", body=body)
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        conn.close()
    return time.perf_counter() - started


def filesystem_of(path: Path) -> str:
    try:
        out = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True, check=True)
        return out.stdout.splitlines()[1].split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--attachment-bytes", type=int, default=4096)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the spool")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    attachment = b"x" * args.attachment_bytes
    envelopes = [make_envelope(attachment=attachment) for _ in range(args.reports)]
    receiver, port = start_receiver()
    try:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            root = Path(tmp) / "spool"
            spool = Spool(root, SpoolLimits(max_reports=10**6, max_bytes=2**40))
            raw_posts(port, envelopes[:20])  # warm up the receiver and the stack
            baseline = raw_posts(port, envelopes)

            started = time.perf_counter()
            for data in envelopes:
                spool.put(data)
            put_seconds = time.perf_counter() - started

            started = time.perf_counter()
            listed = len(Spool(root).pending())
            list_seconds = time.perf_counter() - started

            flusher = Flusher(spool, Uploader(f"http://key@127.0.0.1:{port}/1", "bench"))
            started = time.perf_counter()
            result = flusher.flush()
            flush_seconds = time.perf_counter() - started
            assert result.delivered == args.reports, result
            fs = filesystem_of(root)
    finally:
        assert receiver.stdin is not None
        receiver.stdin.close()
        receiver.wait(timeout=10)

    n = args.reports
    size = len(envelopes[0])
    print(f"envelopes: {n} of {size} bytes; spool on {fs}; receiver in its own process")
    print(f"raw POST baseline (no spool):     {n / baseline:8.0f} envelopes/s")
    print(f"flusher (read, send, mark, fsync): {n / flush_seconds:8.0f} envelopes/s")
    print(f"ratio flusher / baseline:          {baseline / flush_seconds:8.2f}")
    print(f"spool put (atomic write + fsync):  {n / put_seconds:8.0f} envelopes/s")
    print(f"cold listing of {listed} pending:    {list_seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()

"""Time from `telemetryd run` to its first sample, with an empty spool and with 1,000 pending.

The daemon flushes pending reports at start; this shows the backlog does not delay
sampling. One unmeasured start comes first, so the measured ones find the bytecode cache an
installed daemon has (unless PYTHONDONTWRITEBYTECODE is set: then every start compiles the
daemon's own sources again, ~180 ms here; `bench_against.py` unsets it).
Reports go to a fast local receiver (loopback) that answers 200. Each case is run several
times; the ratio is against the empty-spool start measured in the same run.

    python benchmarks/bench_startup.py [--pending 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import structlog

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crash_reports.spool.store import Spool, SpoolLimits  # noqa: E402
from tests.support.fault_server import FaultServer, make_envelope  # noqa: E402


def start_to_first_sample(state: Path, dsn: str, max_reports: int) -> tuple[float, int]:
    """Seconds from spawning the daemon to its `daemon.ready` line; pending count at that time."""
    config = state.parent / "telemetryd.toml"
    config.write_text(
        f'[daemon]\ninterval = 1.0\nstate_dir = "{state}"\nlog_format = "json"\n'
        f'[sentry]\ndsn = "{dsn}"\n[spool]\nmax_reports = {max_reports}\n'
        '[otlp]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n'
        '[[watch]]\nname = "init"\npid = 1\n'
    )
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if b'"daemon.ready"' in line:
                elapsed = time.perf_counter() - started
                status = json.loads((state / "status.json").read_text())
                return elapsed, int(status["reports"]["pending"])
        raise RuntimeError("daemon exited before its first sample")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    server = FaultServer()
    try:
        envelope_ids = [make_envelope() for _ in range(args.pending)]
        results: dict[str, list[float]] = {"empty spool": [], f"{args.pending} pending": []}
        pending_seen: list[int] = []
        with tempfile.TemporaryDirectory() as tmp:  # writes the bytecode cache; not measured
            start_to_first_sample(Path(tmp) / "state", server.dsn(), args.pending * 2)
        for _ in range(args.runs):
            for case in results:
                with tempfile.TemporaryDirectory() as tmp:
                    state = Path(tmp) / "state"
                    if case != "empty spool":
                        spool = Spool(state / "spool", SpoolLimits(max_reports=args.pending * 2))
                        for envelope in envelope_ids:
                            spool.put(envelope)
                    elapsed, pending = start_to_first_sample(state, server.dsn(),
                                                             args.pending * 2)
                    results[case].append(elapsed)
                    if case != "empty spool":
                        pending_seen.append(pending)
        baseline = statistics.median(results["empty spool"])
        print(f"start to first sample, median of {args.runs} runs (includes Python start-up "
              "and imports):")
        for case, times in results.items():
            median = statistics.median(times)
            print(f"  {case:>14}: {median * 1000:7.1f} ms  (min {min(times) * 1000:.1f}, "
                  f"max {max(times) * 1000:.1f})  ratio {median / baseline:.2f}x")
        print(f"  reports still pending when the first sample was taken: "
              f"{min(pending_seen)}..{max(pending_seen)} of {args.pending}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

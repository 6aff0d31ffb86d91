"""What junk in ``spool/pending`` costs a listing (``reports list``, every flush).

A spool with ``--reports`` real reports is listed (``Spool.list_all``) clean, then again
after ``--junk`` files are planted in ``pending/`` (90 % names that cannot be reports, 10 %
well named but not envelopes), and a third time (the junk is gone by then if it was set
aside). Each figure is the wall time of one listing in a fresh process; the ratios are
against the clean listing of the same run. ``--baseline-repo`` runs the same measurement on
another checkout (the code before a change) in the same run.

    python benchmarks/bench_spool_junk.py [--junk 20000] [--reports 20]
        [--baseline-repo /path/to/old/checkout]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def measure(repo: Path, junk: int, reports: int) -> dict[str, float | str]:
    """Run in a child whose imports come from ``repo``; the figures in seconds."""
    sys.path.insert(0, str(repo))
    sys.path.insert(1, str(REPO))  # the envelope builder of the tests' support
    from crash_reports.spool.store import Spool
    from tests.support.fault_server import make_envelope

    with tempfile.TemporaryDirectory(prefix="bench-spool-") as tmp:
        spool = Spool(Path(tmp) / "spool")
        for _ in range(reports):
            spool.put(make_envelope())
        def listing() -> list[object]:
            return list(Spool(spool.root).list_all())

        timed(listing, reports)  # imports and caches warmed
        figures: dict[str, float | str] = {"clean": timed(listing, reports)}
        pending = spool.pending_dir
        well_named = junk // 10
        for index in range(junk - well_named):
            (pending / f"junk-{index}.txt").write_bytes(b"x")
        for index in range(well_named):
            (pending / f"{index + 1:020d}-{index:032x}.env").write_bytes(b"\0not an envelope")
        figures["junk_first"] = timed(listing, reports)
        figures["junk_second"] = timed(listing, reports)
        started = time.perf_counter()
        spool.pending_count()
        figures["count_after"] = time.perf_counter() - started
    figures["code"] = str(Path(sys.modules[Spool.__module__].__file__ or "?").parents[2])
    return figures


def timed(listing: Callable[[], list[object]], reports: int) -> float:
    import structlog

    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # no log output
    started = time.perf_counter()
    found = listing()
    seconds = time.perf_counter() - started
    assert len(found) == reports, (len(found), reports)
    return seconds


def run_child(repo: Path, junk: int, reports: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(repo), "--junk", str(junk),
         "--reports", str(reports)], capture_output=True, text=True, check=True)
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--junk", type=int, default=20_000)
    parser.add_argument("--reports", type=int, default=20)
    parser.add_argument("--baseline-repo", type=Path)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.junk, args.reports)))
        return
    runs = [("this tree", REPO)]
    if args.baseline_repo:
        runs.append(("baseline", args.baseline_repo.resolve()))
    print(f"spool listing: {args.reports} reports, {args.junk} junk files in pending/")
    print(f"{'code':<10} {'clean ms':>9} {'junk 1st ms':>12} {'junk 2nd ms':>12} "
          f"{'1st/clean':>10} {'2nd/clean':>10} {'count ms':>9}")
    for label, repo in runs:
        f = run_child(repo, args.junk, args.reports)
        print(f"{label:<10} {f['clean'] * 1e3:9.1f} {f['junk_first'] * 1e3:12.1f} "
              f"{f['junk_second'] * 1e3:12.1f} {f['junk_first'] / f['clean']:10.1f} "
              f"{f['junk_second'] / f['clean']:10.1f} {f['count_after'] * 1e3:9.2f}  {f['code']}")


if __name__ == "__main__":
    main()

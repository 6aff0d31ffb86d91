"""One benchmark script, run in two checkouts in turn: old median, new median, ratio new/old.

    python benchmarks/bench_against.py --old /path/to/old --new /path/to/new \\
        --script benchmarks/bench_tick.py --runs 3 -- --quick --latency-trials 0

Each run uses the script and the `.venv/bin/python` of its own checkout (so each side
imports its own code), and the runs alternate old, new, old, new… (the first side swapping
each round) so a neighbour's load lands on both alike. The figure lines the script prints are
parsed (bench_tick.py, bench_startup.py and bench_idle.py are known); each run's full output
is kept under --log-dir when given. Standard library only.

Both checkouts are first byte-compiled (`compileall`, as `pip install` does for an installed
package) and the scripts run without PYTHONDONTWRITEBYTECODE, so a daemon they start loads
its bytecode as an installed one does. `--no-bytecode` compiles nothing and passes the
variable on (remove the checkouts' __pycache__ folders first): every start then compiles the
checkout's sources again, ~180 ms for 2026-12's main, more for a larger side.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

NUMBER = r"([-+]?\d+(?:\.\d+)?)"


@dataclass(frozen=True)
class Figure:
    """One figure a benchmark prints: its name, unit and the pattern that captures it."""

    name: str
    unit: str
    pattern: re.Pattern[str]


def figure(name: str, unit: str, pattern: str) -> Figure:
    return Figure(name, unit, re.compile(pattern))


FIGURES: dict[str, list[Figure]] = {
    "bench_tick.py": [
        figure("tick CPU median (long run)", "ms",
               r"long run .*?CPU median " + NUMBER + " ms"),
        figure("tick wall median (long run)", "ms",
               r"long run .*?: wall median " + NUMBER + " ms"),
        figure("tick CPU median (interleaved)", "ms",
               r"daemon tick .*?CPU median " + NUMBER + " ms"),
        figure("tick/raw by CPU", "x", r"daemon/raw: " + NUMBER + "x by CPU"),
        figure("daemon CPU at 1 s", "% core", r"daemon\s+" + NUMBER + " % of one core"),
        figure("daemon RSS", "MiB", r"daemon\s+.*; RSS " + NUMBER + " MiB"),
        figure("in-process RSS at end", "MiB",
               r"RSS\s+start .*, after \d+ " + NUMBER + " MiB"),
        figure("report latency slack, median", "ms",
               r"report latency - sustained x interval: .*median " + NUMBER + " ms"),
    ],
    "bench_startup.py": [
        figure("start to first sample, empty spool", "ms",
               r"empty spool: +" + NUMBER + " ms"),
        figure("start to first sample, pending backlog", "ms",
               r"\d+ pending: +" + NUMBER + " ms"),
    ],
    "bench_idle.py": [
        figure("idle CPU telemetryd", "% core", r"telemetryd \(.*\): +" + NUMBER + " %"),
        figure("idle CPU monit", "% core", r"monit \(.*\): +" + NUMBER + " %"),
        figure("idle CPU telemetryd / monit", "x", r"CPU ratio telemetryd / monit: " + NUMBER),
    ],
}


def parse_figures(script: str, output: str) -> dict[str, float]:
    """The known figures found in one run's output (a figure missing from it is left out)."""
    found: dict[str, float] = {}
    for fig in FIGURES.get(Path(script).name, []):
        match = fig.pattern.search(output)
        if match:
            found[fig.name] = float(match.group(1))
    return found


def byte_compile(checkout: Path) -> None:
    """Write the bytecode cache of the checkout's own packages (what an install would hold)."""
    python = checkout / ".venv" / "bin" / "python"
    packages = [name for name in ("daemon", "crash_reports")
                if (checkout / name).is_dir()]
    subprocess.run([str(python), "-m", "compileall", "-q", "-j", "0", *packages],
                   cwd=checkout, check=True, stdout=subprocess.DEVNULL)


def run_once(checkout: Path, script: str, extra: list[str], log: Path | None,
             env: dict[str, str]) -> dict[str, float]:
    """Run the script in one checkout with its own venv; its figures."""
    python = checkout / ".venv" / "bin" / "python"
    started = time.monotonic()
    done = subprocess.run([str(python), str(checkout / script), *extra], cwd=checkout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False, env=env)
    if log is not None:
        log.write_text(done.stdout)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:])
        raise RuntimeError(f"{script} in {checkout} exited {done.returncode}")
    figures = parse_figures(script, done.stdout)
    if not figures:
        sys.stderr.write(done.stdout[-3000:])
        raise RuntimeError(f"no known figure in the output of {script} in {checkout}")
    print(f"  {checkout.name}: {time.monotonic() - started:.0f} s, "
          + ", ".join(f"{k} {v:g}" for k, v in figures.items()), flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--old", type=Path, required=True, help="the old checkout")
    parser.add_argument("--new", type=Path, required=True, help="the new checkout")
    parser.add_argument("--script", required=True,
                        help="benchmark script, relative to each checkout")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (alternated)")
    parser.add_argument("--log-dir", type=Path, help="keep each run's output here")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="compile nothing; keep PYTHONDONTWRITEBYTECODE if it is set")
    parser.add_argument("extra", nargs=argparse.REMAINDER,
                        help="after --: arguments for the benchmark script")
    args = parser.parse_args()
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    sides = {"old": args.old.resolve(), "new": args.new.resolve()}
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not args.no_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for checkout in sides.values():
            byte_compile(checkout)
    results: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    load_before = os.getloadavg()
    print(f"{args.script} {' '.join(extra)}: {args.runs} runs per side, "
          f"{'no bytecode cache' if args.no_bytecode else 'bytecode compiled'}, load "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)
    for index in range(args.runs):
        order = ("old", "new") if index % 2 == 0 else ("new", "old")
        for side in order:
            log = (args.log_dir / f"{Path(args.script).stem}-{side}-{index + 1}.txt"
                   if args.log_dir is not None else None)
            results[side].append(run_once(sides[side], args.script, extra, log, env))
    load_after = os.getloadavg()
    names = [fig.name for fig in FIGURES.get(Path(args.script).name, [])]
    units = {fig.name: fig.unit for fig in FIGURES.get(Path(args.script).name, [])}
    print(f"\nold {sides['old']}\nnew {sides['new']}\nload before {load_before[0]:.2f}, "
          f"after {load_after[0]:.2f} (1-min average)")
    print("\n| figure | unit | old median | new median | new/old | runs |")
    print("|---|---|---:|---:|---:|---:|")
    for name in names:
        old = [run[name] for run in results["old"] if name in run]
        new = [run[name] for run in results["new"] if name in run]
        if not old or not new:
            continue
        old_median, new_median = statistics.median(old), statistics.median(new)
        ratio = f"{new_median / old_median:.2f}" if old_median else "-"
        print(f"| {name} | {units[name]} | {old_median:g} | {new_median:g} | {ratio} | "
              f"{len(old)}+{len(new)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

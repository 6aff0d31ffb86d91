"""The benchmarks still run end to end on the smallest inputs that exercise every phase; their
figures are not judged here (run a benchmark on its own for figures: see benchmarks/README.md).
The tick under each flood is tested once, in tests/e2e/test_tick_under_*flood*.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def small(script: str, args: list[str], expected: str, *marks: pytest.MarkDecorator) -> object:
    """One smoke run: the script, its small arguments, the text its figures are printed with."""
    return pytest.param(script, args, expected, marks=marks, id=script)


SMALL_RUNS = [
    small("bench_startup.py", ["--pending", "50", "--runs", "1"], "start to first sample"),
    small("bench_flush.py", ["--reports", "40"], "envelopes/s"),
    small("bench_otlp.py", ["--requests", "20", "--agents", "3", "--models", "2"], "points/s"),
    small("bench_metrics.py", ["--agents", "3", "--models", "2", "--tools", "2", "--runs", "3"],
          "median"),
    small("bench_tick.py", ["--sizes", "10", "--ticks", "100", "--pairs", "20",
                            "--cpu-seconds", "1", "--latency-trials", "1"], "report latency"),
    small("bench_views.py", ["--quick"], "first load"),
    # One short flood: the benchmark's machinery, not the property (tested in tests/e2e).
    small("bench_flood.py", ["--quick", "--only", "fat,bombs,decode"],
          "largest tick gap under flood",
          pytest.mark.xdist_group("tick-gaps")),
    small("bench_budget_check.py", ["--runs", "5", "--sessions", "50", "--events", "10"],
          "hook, over budget"),
    small("bench_idle.py", ["--processes", "5", "--seconds", "2", "--warmup", "1", "--runs", "1"],
          "CPU ratio"),
    small("bench_argv_churn.py", ["--seconds", "2", "--quiet-seconds", "2", "--after", "2"],
          "largest tick gap",
          pytest.mark.xdist_group("tick-gaps")),
    small("bench_clock_step.py", ["--seconds", "3"], "largest tick gap across a 1 h step back",
          pytest.mark.xdist_group("tick-gaps")),
    small("bench_redaction.py", ["--quick"], "false positives"),
    small("bench_peer_lookup.py", ["--connections", "5", "--requests", "20"], "ratio"),
    small("bench_spool_junk.py", ["--junk", "200", "--reports", "5"], "spool listing"),
    small("bench_listeners.py", ["--quick"], "exports accepted under churn"),
    small("bench_guard.py", ["--quick"], "tick, median CPU: guard on"),
    small("bench_fleet_series.py", [], "5 watched agents sending telemetry"),
    # Both sides this checkout (its .venv, as .ci/run makes it): the alternation and parsing.
    small("bench_against.py", ["--old", str(REPO), "--new", str(REPO), "--script",
                               "benchmarks/bench_startup.py", "--runs", "1", "--",
                               "--pending", "5", "--runs", "1"],
          "| start to first sample, empty spool | ms |"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("script", "args", "expected"), SMALL_RUNS)
def test_benchmark_runs_and_prints_its_figures(script: str, args: list[str], expected: str):
    """Each benchmark completes on small inputs and prints the figure it exists for."""
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args],
                            capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert expected in result.stdout

"""The benchmarks still run end to end (small sizes); their figures are not judged here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SMALL_RUNS = [
    ("bench_startup.py", ["--pending", "50", "--runs", "1"], "start to first sample"),
    ("bench_flush.py", ["--reports", "40"], "envelopes/s"),
    ("bench_otlp.py", ["--requests", "20", "--agents", "3", "--models", "2"], "points/s"),
    ("bench_metrics.py", ["--agents", "3", "--models", "2", "--tools", "2", "--runs", "3"],
     "median"),
    ("bench_tick.py", ["--quick"], "report latency"),
    ("bench_views.py", ["--quick"], "first load"),
    ("bench_flood.py", ["--quick"], "largest tick gap under flood"),
    ("bench_budget_check.py", ["--runs", "5", "--sessions", "50", "--events", "10"],
     "hook, over budget"),
    ("bench_idle.py", ["--processes", "5", "--seconds", "3", "--warmup", "3", "--runs", "1"],
     "CPU ratio"),
    ("bench_argv_churn.py", ["--quick"], "largest tick gap"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("script", "args", "expected"), SMALL_RUNS,
                         ids=[run[0] for run in SMALL_RUNS])
def test_benchmark_runs_and_prints_its_figures(script: str, args: list[str], expected: str):
    """Each benchmark completes on small inputs and prints the figure it exists for."""
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args],
                            capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert expected in result.stdout

"""How long `telemetryd budget check --hook` takes, as Claude Code runs it before each tool call.

A state dir holds a real event store with ``--sessions`` sessions of ``--events`` cost and
token events each (30 days of them), and a config with session, daily and monthly budgets.
The hook command is run ``--runs`` times as a fresh process with a PreToolUse JSON on stdin,
alternating with ``python -c pass`` (the interpreter's own start-up) as the baseline.
Byte-code caches are allowed (as in an installed package) and warmed by one run first.

    python benchmarks/bench_budget_check.py [--runs 200] [--sessions 2000] [--events 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from daemon.agents.decoding.records import Agent, CostUsage, TokenUsage  # noqa: E402
from daemon.agents.store.event_store import EventStore  # noqa: E402


def fill_store(path: Path, sessions: int, events: int) -> None:
    """Sessions spread over 30 days, each with cost reports and priced tokens."""
    store = EventStore(path, 31.0, 4 * 1024**3)
    now = time.time()
    for index in range(sessions):
        agent = Agent("claude-code", f"i-{index}", None, None)
        start = now - 30 * 86400 * (index / sessions)
        batch = []
        for step in range(events):
            ts = start + step
            if step % 2:
                batch.append(CostUsage(ts, agent, f"s-{index}", "claude-sonnet-4-5", 0.01))
            else:
                batch.append(TokenUsage(ts, agent, f"s-{index}", "claude-sonnet-4-5", "input",
                                        1200, "metric", 1, 0.0036, "computed"))
        store.append(batch)
    store.close()


def timed(argv: list[str], stdin: bytes, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds of one run and its exit code."""
    started = time.perf_counter()
    result = subprocess.run(argv, input=stdin, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started, result.returncode


def p99(values: list[float]) -> float:
    """99th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    executable = Path(sys.executable).parent / "telemetryd"
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "daemon"]
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "TELEMETRYD_CONFIG", "SENTRY_DSN")}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir(mode=0o700)
        started = time.perf_counter()
        fill_store(state / "events.db", args.sessions, args.events)
        fill_seconds = time.perf_counter() - started
        config = Path(tmp) / "telemetryd.toml"
        # Half of what one session spent (its cost reports, 0.01 USD each): s-1 is over.
        session_usd = max(0.001, args.events // 2 * 0.01 / 2)
        config.write_text(f'[daemon]\nstate_dir = "{state}"\n[sentry]\n'
                          'dsn = "https://key@o1.ingest.sentry.io/1"\n'
                          f'[[budget]]\nagent = "claude-code"\nsession_usd = {session_usd}\n'
                          'daily_usd = 100000.0\nmonthly_usd = 1000000.0\n')
        hook_argv = [*command, "--config", str(config), "budget", "check", "--hook"]
        over = json.dumps({"session_id": "s-1", "tool_name": "Bash"}).encode()
        within = json.dumps({"session_id": "new-session", "tool_name": "Bash"}).encode()
        baseline_argv = [sys.executable, "-c", "pass"]
        for _ in range(2):  # warm the byte-code caches and the page cache
            timed(hook_argv, over, env)
        results: dict[str, list[float]] = {"python -c pass": [], "hook, over budget": [],
                                           "hook, within budget": []}
        codes: dict[str, set[int]] = {key: set() for key in results}
        for _ in range(args.runs):
            for case, argv, stdin in (("python -c pass", baseline_argv, b""),
                                      ("hook, over budget", hook_argv, over),
                                      ("hook, within budget", hook_argv, within)):
                seconds, code = timed(argv, stdin, env)
                results[case].append(seconds)
                codes[case].add(code)
        size = (state / "events.db").stat().st_size
    print(f"event store: {args.sessions} sessions x {args.events} events "
          f"({size / 1024**2:.1f} MiB, filled in {fill_seconds:.1f} s); {args.runs} runs each, "
          f"interleaved; load average {os.getloadavg()[0]:.2f}")
    baseline = statistics.median(results["python -c pass"])
    for case, times in results.items():
        median = statistics.median(times)
        print(f"  {case:>20}: median {median * 1000:6.1f} ms  p99 {p99(times) * 1000:6.1f} ms  "
              f"ratio {median / baseline:.2f}x  exit codes {sorted(codes[case])}")
    assert codes["hook, over budget"] == {2} and codes["hook, within budget"] == {0}


if __name__ == "__main__":
    main()

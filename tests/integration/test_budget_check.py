"""`telemetryd budget check` against a real event store: limits, the cost rule, bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

from daemon.agents.records import Agent, CostUsage, TokenUsage
from daemon.agents.store import EventStore
from tests.support.daemon_proc import cli


def setup(tmp_path: Path, budget: str) -> Path:
    """A config with one [[budget]] and a state dir holding a real event store."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = tmp_path / "telemetryd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{state}"\n[[budget]]\n{budget}\n')
    store = EventStore(state / "events.db", 30.0, 64 * 1024**2)
    now = time.time()
    bot = Agent("bot", "i-1", None, None)
    store.append([
        # Session a: the agent reports 0.50 for model m; the computed 9.00 must not count.
        CostUsage(now, bot, "a", "m", 0.5),
        TokenUsage(now, bot, "a", "m", "input", 10, cost_usd=9.0, cost_status="computed"),
        # Session b: only computed cost, 3.00.
        TokenUsage(now, bot, "b", "n", "input", 10, cost_usd=3.0, cost_status="computed"),
    ])
    store.close()
    return config


def check(config: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    """Exit code and stderr of `budget check ARGS`."""
    result = cli("--config", str(config), "budget", "check", *args, input_text=stdin)
    return result.returncode, result.stderr


def test_session_budget_counts_reported_cost_over_computed(tmp_path: Path) -> None:
    """A session's reported cost wins over cost computed from its tokens for the same model."""
    config = setup(tmp_path, 'agent = "bot"\nsession_usd = 1.0')
    assert check(config, "--session", "a")[0] == 0
    code, stderr = check(config, "--session", "b")
    assert code == 2 and "3.00 USD of its 1.00 USD session budget" in stderr
    assert check(config, "--session", "unknown-session")[0] == 0


def test_daily_budget_for_an_agent_and_for_all_agents(tmp_path: Path) -> None:
    """--agent checks that agent's daily budget; without options every daily budget counts."""
    config = setup(tmp_path, 'agent = "*"\ndaily_usd = 3.4')
    code, stderr = check(config, "--agent", "bot")
    assert code == 2 and "all agents spent 3.50 USD of its 3.40 USD daily budget" in stderr
    assert check(config)[0] == 2


def test_hook_input_that_is_not_a_hook_fails_open(tmp_path: Path) -> None:
    """Garbage on stdin exits 1 (Claude Code does not block on 1), naming the problem."""
    config = setup(tmp_path, 'agent = "bot"\nsession_usd = 0.1')
    code, stderr = check(config, "--hook", stdin="not json")
    assert code == 1 and "not JSON" in stderr
    code, stderr = check(config, "--hook", stdin=json.dumps({"tool_name": "Bash"}))
    assert code == 1 and "no session_id" in stderr
    code, stderr = check(config, "--hook", stdin=json.dumps({"session_id": "b",
                                                              "tool_name": "Edit"}))
    assert code == 2 and stderr.count("\n") == 1 and "Edit blocked" in stderr


def test_no_event_store_yet_is_within_budget(tmp_path: Path) -> None:
    """Before the daemon stored any telemetry nothing is spent."""
    config = tmp_path / "telemetryd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "none"}"\n'
                      '[[budget]]\nagent = "bot"\nsession_usd = 1.0\n')
    assert check(config, "--session", "x")[0] == 0

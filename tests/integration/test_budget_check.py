"""`telemetryd budget check` against a real event store: limits, the cost rule, bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

from daemon.agents.budget.integrity import screen
from daemon.agents.decoding.records import Agent, CostUsage, TokenUsage
from daemon.agents.store.event_store import EventStore
from tests.support.daemon_proc import cli


def setup(tmp_path: Path, budget: str) -> Path:
    """A config with one [[budget]] and a state dir holding a real event store."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700, parents=True)
    config = tmp_path / "telemetryd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{state}"\n[[budget]]\n{budget}\n')
    store = EventStore(state / "events.db", 30.0, 64 * 1024**2)
    now = time.time()
    bot = Agent("bot", "i-1", None, None)
    for export in (
        # Session a: the agent reports 0.50 for model m; the computed 0.60 must not count.
        [CostUsage(now, bot, "a", "m", 0.5),
         TokenUsage(now, bot, "a", "m", "input", 10, cost_usd=0.6, cost_status="computed")],
        # Session b: only computed cost, 3.00.
        [TokenUsage(now, bot, "b", "n", "input", 10, cost_usd=3.0, cost_status="computed")],
    ):
        store.append(screen(export).records)  # what the ingest writer does with one export
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


def test_implausible_reported_cost_counts_at_the_priced_figure(tmp_path: Path) -> None:
    """A reported cost far below the price of the tokens it came with is refused: the
    session counts the priced 4.00 USD, not the 0.000001 it said."""
    config = setup(tmp_path, 'agent = "bot"\nsession_usd = 1.0')
    store = EventStore(tmp_path / "state" / "events.db", 30.0, 64 * 1024**2)
    bot = Agent("bot", "i-1", None, None)
    screened = screen([
        CostUsage(time.time(), bot, "c", "m", 0.000001),
        TokenUsage(time.time(), bot, "c", "m", "input", 10**6, cost_usd=4.0,
                   cost_status="computed")])
    store.append(screened.records)
    store.close()
    assert screened.refused == 1
    code, stderr = check(config, "--session", "c")
    assert code == 2 and "4.00 USD of its 1.00 USD session budget" in stderr


def test_a_session_without_telemetry_meets_its_agents_daily_budget(tmp_path: Path) -> None:
    """A session nothing was stored for yet is checked against the daily budget of the agent
    named by --agent, or by the hook (a Claude Code hook: claude-code)."""
    config = setup(tmp_path, 'agent = "bot"\ndaily_usd = 3.4')
    code, stderr = check(config, "--session", "fresh", "--agent", "bot")
    assert code == 2 and "bot spent 3.50 USD of its 3.40 USD daily budget" in stderr
    assert check(config, "--session", "fresh")[0] == 0  # no agent known: bot's rule unseen
    claude = setup(tmp_path / "claude", 'agent = "claude-code"\ndaily_usd = 0.1')
    store = EventStore(tmp_path / "claude" / "state" / "events.db", 30.0, 64 * 1024**2)
    store.append([CostUsage(time.time(), Agent("claude-code", None, "old", None), "old", "m",
                            0.25)])
    store.close()
    hook = {"session_id": "fresh", "hook_event_name": "PreToolUse", "tool_name": "Bash"}
    code, stderr = check(claude, "--hook", stdin=json.dumps(hook))
    assert code == 2, stderr
    assert "claude-code spent 0.25 USD of its 0.10 USD daily budget; Bash blocked" in stderr


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

"""`budget check --hook` given hostile JSON on stdin: a bounded parse, one clear line, the
hook's documented exit code (1: Claude Code reports it and does not block)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from daemon.agents.decoding.records import Agent, CostUsage
from daemon.agents.store.event_store import EventStore
from daemon.cli.budget import MAX_HOOK_NESTING
from tests.support.daemon_proc import cli


def over_budget_session(tmp_path: Path) -> Path:
    """A config whose session ``s`` has spent 2.00 USD of a 1.00 USD session budget."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    store = EventStore(state / "events.db", 30.0, 64 * 1024**2)
    store.append([CostUsage(time.time(), Agent("bot", "i-1", None, None), "s", "m", 2.0)])
    store.close()
    config = tmp_path / "telemetryd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{state}"\n'
                      '[[budget]]\nagent = "bot"\nsession_usd = 1.0\n')
    return config


def hook(config: Path, stdin: str) -> tuple[int, str]:
    done = cli("--config", str(config), "budget", "check", "--hook", input_text=stdin)
    return done.returncode, done.stderr


def nested(depth: int) -> str:
    return ('{"session_id": "s", "tool_name": "Bash", "tool_input": '
            + "[" * depth + "]" * depth + "}")


def test_hook_json_nested_100k_deep_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    """100,000 nested arrays: exit 1 and one line saying how deep is allowed."""
    code, stderr = hook(over_budget_session(tmp_path), nested(100_000))
    assert code == 1, stderr
    assert "Traceback" not in stderr and "RecursionError" not in stderr
    assert f"nested deeper than {MAX_HOOK_NESTING} levels" in stderr
    assert len(stderr.splitlines()) == 1, stderr


def test_hook_json_nested_within_the_bound_is_still_judged(tmp_path: Path) -> None:
    """Tool input nested up to the bound (strings full of brackets too) is read as before:
    the over-budget session is blocked with exit 2."""
    config = over_budget_session(tmp_path)
    levels = MAX_HOOK_NESTING - 1  # the outer object is one level
    inner = "[" * levels + json.dumps("[[[{{{ \\\" ]]") + "]" * levels
    payload = '{"session_id": "s", "tool_name": "Bash", "tool_input": ' + inner + "}"
    code, stderr = hook(config, payload)
    assert code == 2, stderr
    assert "over budget" in stderr

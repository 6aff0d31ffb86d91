"""The budget check's small config reader agrees with the full parser."""

from __future__ import annotations

import tomllib

import pytest

from daemon.config.budget_view import read_budget_view
from daemon.config.errors import ConfigError
from daemon.config.parse import parse_config

RAM = 8 * 1024**3
GOOD = """
[daemon]
state_dir = "/tmp/somewhere"
[[budget]]
agent = "claude-code"
session_usd = 2.5
daily_usd = 10
[[budget]]
agent = "*"
monthly_usd = 100.0
"""


def test_same_state_dir_and_budgets_as_the_full_parser() -> None:
    """state_dir and every [[budget]] field read the same by both readers."""
    data = tomllib.loads(GOOD)
    full = parse_config(data, "f", {}, RAM)
    view = read_budget_view(data, "f", {})
    assert view.state_dir == full.daemon.state_dir
    assert [tuple(b) for b in view.budgets] == [
        (b.agent, b.daily_usd, b.monthly_usd, b.session_usd) for b in full.budgets]


def test_default_state_dir_from_the_environment() -> None:
    """Without state_dir both honour $STATE_DIRECTORY."""
    env = {"STATE_DIRECTORY": "/run/x:/run/y"}
    full = parse_config({}, "f", env, RAM)
    assert read_budget_view({}, "f", env).state_dir == full.daemon.state_dir


@pytest.mark.parametrize("budget", [
    {"daily_usd": 1},
    {"agent": "a"},
    {"agent": "a", "session_usd": -1},
    {"agent": "a", "session_usd": "two"},
    {"agent": "a", "session_usd": True},
    {"agent": "a", "daily_usd": 1, "weekly_usd": 1},
])
def test_same_key_path_errors(budget: dict[str, object]) -> None:
    """A bad [[budget]] is refused by both, naming the same key path."""
    data = {"budget": [{"agent": "ok", "daily_usd": 1}, budget]}
    with pytest.raises(ConfigError) as full:
        parse_config(data, "f", {}, RAM)
    with pytest.raises(ConfigError) as fast:
        read_budget_view(data, "f", {})
    assert fast.value.key == full.value.key


def test_state_dir_must_be_text() -> None:
    """A state_dir that is not a string names its key."""
    with pytest.raises(ConfigError) as caught:
        read_budget_view({"daemon": {"state_dir": 3}}, "f", {})
    assert caught.value.key == "daemon.state_dir"

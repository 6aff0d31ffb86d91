"""A flood of new service names costs the tick, the status snapshot and `top` a bounded number
of agents: the watched and budgeted ones and the busiest others."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from daemon.agents.decoding.records import Agent, TokenUsage
from daemon.agents.store.today import MAX_AGENTS_SHOWN
from daemon.config.parse import parse_config_text
from daemon.runtime.agent_link import AgentLink
from daemon.runtime.paths import StatePaths

CONFIG = f"""
[otlp]
enabled = false
[[watch]]
name = "claude"
pid = {os.getpid()}
rss_warning = "100GiB"
rss_critical = "200GiB"
[[budget]]
agent = "aider"
daily_usd = 5
"""


def test_agents_shown_stay_bounded_under_a_flood_of_service_names(tmp_path: Path) -> None:
    """300 flooding agents busier than the real ones: today's view holds the watched agent
    (claude-code), the budgeted one (aider) and the 50 busiest, not all 302 (reading every
    agent of the day took the tick 1 s at 5,000 agents, and gaps of 6-8 s under a flood)."""
    config = parse_config_text(CONFIG, "<t>", {}, psutil.virtual_memory().total)
    link = AgentLink(config, StatePaths(tmp_path).events_db, StatePaths(tmp_path).budgets)
    now = time.time()
    try:
        records = [TokenUsage(now, Agent(f"flood-{n}", None, None, None), None, "m", "input",
                              10_000 + n) for n in range(300)]
        records += [TokenUsage(now, Agent("claude-code", None, None, None), None, "m", "input", 5),
                    TokenUsage(now, Agent("aider", None, None, None), None, "m", "input", 1)]
        link.telemetry.store.append(records)
        shown = {row.agent for row in link.today(now)}
    finally:
        link.stop()
    assert len(shown) == MAX_AGENTS_SHOWN + 2
    assert {"claude-code", "aider", "flood-299"} <= shown
    assert "flood-0" not in shown

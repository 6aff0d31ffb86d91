"""`stats --by tool` names the agent of every tool row and shows no cost it cannot attribute."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.cli.stats import _print_agents
from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.integration.agents.test_captures import FOREVER
from tests.support.captures import replay


def test_tool_rows_name_their_agent_and_print_without_a_cost_column(
    make_agents: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    """Claude Code's and Codex's captured sessions in one store: each tool row has its agent."""
    agents: AgentTelemetry = make_agents()
    for folder in ("claude-fakeapi-protobuf", "codex-fakeapi-tools-binary"):
        statuses = replay(agents.receiver.port, folder)
        assert statuses and all(200 <= s < 300 for s in statuses), statuses
    assert agents.ingestor.flush(30.0)
    rows = agents.reader.stats(*FOREVER, "tool")
    by_tool = {(r.key, r.agent): r for r in rows}
    assert {("Bash", "claude-code"), ("Read", "claude-code"), ("exec", "codex"),
            ("exec_command", "codex")} <= set(by_tool)
    assert by_tool[("Read", "claude-code")].tool_failures == 1
    _print_agents({"rows": [r.as_dict() for r in rows]}, "tool")
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("TOOL"))
    assert header.split() == ["TOOL", "AGENT", "CALLS", "FAILED", "TOTAL", "TIME", "MEAN",
                              "TIME"]
    assert "COST" not in "\n".join(lines) and "unknown" not in "\n".join(lines)
    bash = next(line for line in lines if line.startswith("Bash "))
    assert bash.split()[:4] == ["Bash", "claude-code", "1", "0"]

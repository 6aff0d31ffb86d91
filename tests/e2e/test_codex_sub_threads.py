"""End to end: a Codex terminal UI's thread_title sub-thread is not a second session.

Two real processes (two pids) send Codex-terminal-UI-shaped logs built from the real
``codex-exec-json`` capture (tests/support/codex_tui.py) to a real daemon under the default
``[otlp] trust = "watched"``, which finds each sender's pid from its loopback socket (Codex
sends no ``process.pid``). Process A also sends its sub-thread, under a conversation id of
its own, shortly after its prompt; process B sends only its session.

Expected figures, decoded by hand from the capture's ``004-v1_logs.json``: each of its 3
``codex.api_request`` events (status 200) is followed by a ``codex.sse_event``
``response.completed`` with input 1300 (600 of them cached) and output 40 (25 of them
reasoning): per request 700 uncached input, 600 cache read, 15 output, 25 reasoning. A
session is 3 requests; A's sub-thread adds 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from daemon.agents.store.queries import StoreReader
from daemon.runtime.paths import StatePaths
from tests.e2e.test_agent_telemetry import otlp_port, scrape
from tests.e2e.test_budget_integrity import WATCH_ALL
from tests.e2e.test_watchdog import write_config
from tests.support.captures import REPOSITORY
from tests.support.daemon_proc import DaemonProcess, cli
from tests.support.waiting import wait_for

PER_REQUEST = {"input": 700, "cache_read": 600, "output": 15, "reasoning": 25}


def tui_process(port: int, conversation: str, title: str | None = None) -> int:
    """One terminal UI: its own process sends its session (and sub-thread), then exits;
    its pid."""
    argv = [sys.executable, "-m", "tests.support.codex_tui", str(port), conversation]
    result = subprocess.run(argv + ([title] if title else []), cwd=REPOSITORY,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[0])


def session_rows(config: Path) -> list[dict[str, Any]]:
    result = cli("--config", str(config), "stats", "--json", "--by", "session")
    rows: list[dict[str, Any]] = json.loads(result.stdout)["agents"].get("rows") or []
    return rows


def test_a_terminal_ui_and_its_title_sub_thread_are_one_session(tmp_path: Path) -> None:
    """Process A's sub-thread counts under A's session (4 requests, its tokens included);
    process B is a second session: 2 sessions, not 3, in `stats` and on /metrics; a report
    on process A matches its telemetry by pid (Codex sends none: the sender's)."""
    config = write_config(tmp_path, WATCH_ALL, trust=None)
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        port = otlp_port(config)
        pid_a = tui_process(port, "conv-a", title="conv-a-title")
        pid_b = tui_process(port, "conv-b")
        rows = wait_for(lambda: (r := session_rows(config)) and sum(
            x.get("requests", 0) for x in r) >= 7 and r,
            message="both terminal UIs' requests stored")
        exposition = scrape(config)
    finally:
        assert daemon.stop() == 0
    by_session = {row["key"]: row for row in rows}
    assert sorted(by_session) == ["codex/conv-a", "codex/conv-b"], rows
    for session, requests in (("conv-a", 4), ("conv-b", 3)):
        row = by_session[f"codex/{session}"]
        assert row["agent"] == "codex"
        assert row["requests"] == requests, row
        assert row["sessions"] == 1, row
        assert {kind: row["tokens"].get(kind) for kind in PER_REQUEST} == {
            kind: count * requests for kind, count in PER_REQUEST.items()}, row
    assert 'telemetryd_agent_sessions_total{agent="codex"} 2.0' in exposition
    reader = StoreReader(StatePaths(tmp_path / "state").events_db)
    context = reader.agent_context(pid_a, None, None, time.time())
    assert context is not None and pid_a != pid_b
    assert (context["sessions"], context["requests"]) == (["conv-a"], 4), context

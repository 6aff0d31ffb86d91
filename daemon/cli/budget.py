"""``telemetryd budget check``: exit 0 within budget, 2 over it; fast enough for every tool call.

As a Claude Code ``PreToolUse`` hook (``--hook``) it reads the hook's JSON on stdin; exit 2
blocks the tool call and Claude Code shows our stderr line to the model. Any other failure
exits 1, which Claude Code reports without blocking: a broken telemetryd never stops an agent.
Imports stay light (no pricing library, no sentry-sdk, no logging setup, not the config
schema): ``cli.entry`` routes ``budget`` here without building the other commands' parsers.
See benchmarks/bench_budget_check.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from crash_reports.common.humanize import printable
from daemon.agents.budget import budget_gate
from daemon.cli.output import err, out
from daemon.cli.parsing import CommandParser
from daemon.exit_codes import ExitCode

MAX_HOOK_INPUT_BYTES = 1024 * 1024
# The agent whose hook sends this event name: its daily and monthly budgets apply to a
# session even before the session has sent any telemetry (Gemini CLI's hooks take the same
# JSON as Claude Code's, under their own event names).
HOOK_AGENTS = {"PreToolUse": "claude-code", "BeforeTool": "gemini"}

# Hook JSON nested deeper than this is refused before it is decoded (json recurses once per
# level: 100,000 levels would end in a RecursionError). Claude Code's own input is a few
# levels deep; tool inputs nest rarely past ten.
MAX_HOOK_NESTING = 200
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    """Declare ``budget check [--agent A] [--session S] [--hook]``."""
    parser = subparsers.add_parser("budget", help="cost budgets: check whether an agent may go on")
    actions = parser.add_subparsers(dest="budget_command", metavar="ACTION", required=True)
    check_parser = actions.add_parser(
        "check", help="exit 0 within budget, 2 over it (one-line reason on stderr)")
    check_parser.add_argument("--agent",
                              help="agent (service.name) whose daily/monthly budgets count")
    check_parser.add_argument("--session", help="agent session id whose session_usd counts")
    check_parser.add_argument("--hook", action="store_true",
                              help="read a Claude Code hook's JSON (session_id, tool_name) "
                              "on stdin")
    return parser


def main(argv: Sequence[str]) -> int:
    """``telemetryd [--config PATH] budget ...`` parsed without the other commands."""
    parser: argparse.ArgumentParser = CommandParser(prog="telemetryd")
    parser.set_defaults(config=None)
    add_parser(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    os.umask(0o077)
    return int(run(args))


def run(args: argparse.Namespace) -> ExitCode:
    """Run ``budget check``; never raises for a user's mistake or an unreadable store."""
    from daemon.config.budget_view import load_budget_view
    from daemon.config.errors import ConfigError
    from daemon.config.files.locations import environ_snapshot
    from daemon.runtime.paths import StatePaths

    session: str | None = args.session
    tool: str | None = None
    agent: str | None = args.agent
    if args.hook:
        try:
            session, tool, hook_agent = read_hook(sys.stdin.buffer)
        except ValueError as exc:
            err(f"telemetryd budget check: {printable(str(exc))}")
            return ExitCode.FAILURE
        agent = agent or hook_agent
    try:
        view = load_budget_view(args.config, environ_snapshot())
    except ConfigError as exc:
        err(f"telemetryd budget check: config error: {exc}")
        return ExitCode.FAILURE
    blocked = guard_blocked(view.state_dir, session if args.hook else None)
    if blocked is not None:
        suffix = f"; {printable(tool)} blocked by telemetryd" if tool else ""
        err(f"telemetryd: guard: {printable(blocked)}{suffix}")
        return ExitCode.OVER_BUDGET
    try:
        verdict = check(view.budgets, StatePaths(view.state_dir).events_db, agent,
                        session, time.time(), explicit_agent=args.agent is not None)
    except Exception as exc:  # sqlite3 errors of every kind: fail open, say why
        err(f"telemetryd budget check: cannot read the event store: {exc}")
        return ExitCode.FAILURE
    if verdict.over:
        # One line whatever the session id, the agent or the tool name hold.
        suffix = f"; {printable(tool)} blocked by telemetryd" if tool else ""
        err(f"telemetryd: over budget: {printable(verdict.reason)}{suffix}")
        return ExitCode.OVER_BUDGET
    if not args.hook:
        out(f"telemetryd: {printable(verdict.reason)}")
    return ExitCode.OK


def check(rules: Iterable[budget_gate.BudgetLimits], events_db: Path, agent: str | None,
          session: str | None, now: float, *, explicit_agent: bool = True
          ) -> budget_gate.Verdict:
    """Read what the applicable limits spent from the event store and decide.

    A session is held to the daily and monthly budgets of its agent whether or not it has
    sent anything: ``agent`` (given, or the hook's agent) and, unless ``explicit_agent``,
    every agent the store saw under that session id.
    """
    from crash_reports.common import sqlite
    from daemon.agents.budget import spend
    from daemon.agents.budget.periods import period_start

    if not events_db.exists():
        # No telemetry stored yet: nothing spent.
        return budget_gate.decide({limit: 0.0 for limit in budget_gate.limits_for(
            rules, [agent] if agent else None, session is not None)}, session)
    db = sqlite.connect(events_db, busy_timeout_seconds=spend.HOOK_BUSY_TIMEOUT_SECONDS,
                        read_only=True)
    try:
        per_agent = spend.session_spend(db, session) if session else {}
        agents = budget_gate.session_agents(
            agent, explicit_agent, session,
            set(per_agent) | (spend.session_agents(db, session) if session else set()))
        spent: dict[budget_gate.Limit, float] = {}
        for limit in budget_gate.limits_for(rules, agents, session is not None):
            if limit.scope == "session":
                usd = (sum(per_agent.values()) if limit.agent == "*"
                       else per_agent.get(limit.agent, 0.0))
            else:
                usd = spend.period_spend(db, limit.agent, period_start(limit.scope, now), now)
            spent[limit] = usd
    finally:
        db.close()
    return budget_gate.decide(spent, session)


def guard_blocked(state_dir: Path, session: str | None) -> str | None:
    """Why the behaviour guard blocks this session now (an open tool_loop or cost_surge
    with ``[guard] block = true``, daemon/guard/blocks.py), or None."""
    from daemon.guard.blocks import read_blocked_reason

    return read_blocked_reason(state_dir, session, time.time())


def read_hook(stream: BinaryIO) -> tuple[str, str | None, str | None]:
    """Session id, tool name and the agent whose hook it is (``HOOK_AGENTS``) from a hook's
    JSON (bounded); ValueError if bad."""
    raw = stream.read(MAX_HOOK_INPUT_BYTES + 1)
    if len(raw) > MAX_HOOK_INPUT_BYTES:
        raise ValueError("hook input larger than 1 MiB")
    if nesting_exceeds(raw, MAX_HOOK_NESTING):
        raise ValueError(f"hook input is JSON nested deeper than {MAX_HOOK_NESTING} levels")
    try:
        data: Any = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"hook input is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("session_id"), str):
        raise ValueError("hook input has no session_id")
    tool = data.get("tool_name")
    event = data.get("hook_event_name")
    return (data["session_id"], tool if isinstance(tool, str) else None,
            HOOK_AGENTS.get(event) if isinstance(event, str) else None)


def nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Whether the JSON text ``raw`` nests arrays/objects more than ``limit`` deep (pure).

    Strings are cut out (brackets inside them do not count), then the brackets left are
    counted, stopping at the first one past ``limit``. Not a validator: text that is not
    JSON is left to the decoder, which says so.

    >>> nesting_exceeds(b'{"a": [[1], {"b": "]]]"}]}', 3), nesting_exceeds(b'[[[[]]]]', 3)
    (False, True)
    """
    text = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if text.count(b"[") + text.count(b"{") <= limit:
        return False  # the usual hook input: a handful of brackets
    depth = 0
    for byte in text:
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False

"""``telemetryd budget check``: exit 0 within budget, 2 over it; fast enough for every tool call.

As a Claude Code ``PreToolUse`` hook (``--hook``) it reads the hook's JSON on stdin; exit 2
blocks the tool call and Claude Code shows our stderr line to the model. Any other failure
exits 1, which Claude Code reports without blocking: a broken telemetryd never stops an agent.
Imports stay light (no pricing library, no sentry-sdk, no logging setup): it answers in tens of
milliseconds, see benchmarks/bench_budget_check.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from daemon.agents import budget_gate, spend
from daemon.agents.budgets import period_start
from daemon.cli.output import err, out
from daemon.runtime.paths import StatePaths

EXIT_WITHIN = 0
EXIT_ERROR = 1
EXIT_OVER = 2  # what Claude Code's hooks read as "block this tool call"
MAX_HOOK_INPUT_BYTES = 1024 * 1024


def add_parser(sub: Any, **kwargs: Any) -> None:
    """``budget check`` under a parser's subcommands."""
    budget = sub.add_parser("budget", help="cost budgets: check whether an agent may go on",
                            **kwargs)
    budget_sub = budget.add_subparsers(dest="budget_command", metavar="ACTION")
    budget_sub.required = True
    check = budget_sub.add_parser(
        "check", help="exit 0 within budget, 2 over it (one-line reason on stderr)", **kwargs
    )
    check.add_argument("--agent", help="agent (service.name) whose daily/monthly budgets count")
    check.add_argument("--session", help="agent session id whose session_usd budget counts")
    check.add_argument("--hook", action="store_true",
                       help="read a Claude Code hook's JSON (session_id, tool_name) on stdin")


def main(argv: list[str]) -> int:
    """``telemetryd [--config PATH] budget ...`` with its own small parser (see ``cli.entry``)."""
    import os
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="telemetryd")
    parser.add_argument("--config", "-c", type=Path, metavar="PATH", help="config file")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", type=Path, metavar="PATH", help="config file",
                        default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_parser(sub, parents=[common])
    args = parser.parse_args(argv)
    os.umask(0o077)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run ``budget check``; never raises for a user's mistake or an unreadable store."""
    from daemon.config.schema import ConfigError, environ_snapshot, load_budget_view

    session: str | None = args.session
    tool: str | None = None
    if args.hook:
        try:
            session, tool = _read_hook(sys.stdin.buffer)
        except ValueError as exc:
            err(f"telemetryd budget check: {exc}")
            return EXIT_ERROR
    try:
        view = load_budget_view(getattr(args, "config", None), environ_snapshot())
    except ConfigError as exc:
        err(f"telemetryd budget check: config error: {exc}")
        return EXIT_ERROR
    try:
        verdict = check(view.budgets, StatePaths(view.state_dir).events_db, args.agent,
                        session, time.time())
    except Exception as exc:  # sqlite3 errors of every kind: fail open, say why
        err(f"telemetryd budget check: cannot read the event store: {exc}")
        return EXIT_ERROR
    if verdict.over:
        suffix = f"; {tool} blocked by telemetryd" if tool else ""
        err(f"telemetryd: over budget: {verdict.reason}{suffix}")
        return EXIT_OVER
    if not args.hook:
        out(f"telemetryd: {verdict.reason}")
    return EXIT_WITHIN


def check(
    rules: Any, events_db: Path, agent: str | None, session: str | None, now: float
) -> budget_gate.Verdict:
    """Read what the applicable limits spent from the event store and decide."""
    if not events_db.exists():
        # No telemetry stored yet: nothing spent.
        return budget_gate.decide({limit: 0.0 for limit in budget_gate.limits_for(
            rules, [agent] if agent else None, session is not None)}, session)
    db = spend.connect_read_only(events_db)
    try:
        per_agent = spend.session_spend(db, session) if session else {}
        if agent is not None:
            agents: list[str] | None = [agent]
        elif session is not None:
            agents = sorted(per_agent)
        else:
            agents = None
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


def _read_hook(stream: Any) -> tuple[str, str | None]:
    raw = stream.read(MAX_HOOK_INPUT_BYTES + 1)
    if len(raw) > MAX_HOOK_INPUT_BYTES:
        raise ValueError("hook input larger than 1 MiB")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"hook input is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("session_id"), str):
        raise ValueError("hook input has no session_id")
    tool = data.get("tool_name")
    return data["session_id"], tool if isinstance(tool, str) else None

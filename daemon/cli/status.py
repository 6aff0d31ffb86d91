"""``telemetryd status``: what the running daemon sees; exits like a monitoring plugin."""

from __future__ import annotations

import argparse
import json
import time

from daemon.cli.output import out
from daemon.config.files.load import load_config_here
from daemon.exit_codes import ExitCode


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    """Declare ``status [--json]``."""
    parser = subparsers.add_parser(
        "status", help="show what the running daemon sees; exit 0/1/2/3 like a monitoring plugin")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def run(args: argparse.Namespace) -> ExitCode:
    """Read the status snapshot, judge it, print it; the verdict is the exit code."""
    from daemon.runtime.lock import is_locked
    from daemon.runtime.paths import StatePaths
    from daemon.status.snapshot import StatusUnreadableError
    from daemon.status.status_file import (
        disk_full,
        evaluate,
        pid_alive,
        read_snapshot,
        render_table,
    )

    config = load_config_here(args.config)
    paths = StatePaths(config.daemon.state_dir)
    now = time.time()
    try:
        snapshot = read_snapshot(paths.status)
    except StatusUnreadableError as exc:
        if args.json:
            out(json.dumps({"running": False, "exit_code": ExitCode.UNKNOWN, "error": str(exc)}))
        else:
            out(f"telemetryd: not running or status unreadable: {exc}")
        return ExitCode.UNKNOWN
    verdict = evaluate(snapshot, is_locked(paths.lock), pid_alive(snapshot.pid), now,
                       disk_full=disk_full(paths.root))
    if args.json:
        out(json.dumps({**snapshot.to_json(), "running": verdict.running,
                        "exit_code": verdict.exit_code, "summary": verdict.summary}, indent=2))
    else:
        out(render_table(snapshot, verdict, now))
    return verdict.exit_code

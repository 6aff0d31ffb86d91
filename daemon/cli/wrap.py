"""``telemetryd wrap [--watch NAME] -- COMMAND [ARGS...]``: run an agent watched from its start.

The child runs in the foreground with the terminal untouched; ``wrap`` exits with its status
(128 + N for signal N). See ``daemon.runtime.wrap_run`` for how, and the README.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
import uuid
from typing import Any

from daemon.cli.output import err
from daemon.config.schema import Config

EXIT_USAGE = 64


def add_parser(sub: Any) -> None:
    """``wrap`` under the main parser's subcommands."""
    wrap = sub.add_parser("wrap", help="run an agent in the foreground, watched from its start, "
                          "its telemetry sent to the daemon")
    wrap.add_argument("--watch", default=None,
                      help="watch the child joins (default: wrapped, the levels' defaults)")
    wrap.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")


def receiver_endpoint(config: Config) -> str | None:
    """``http://host:port`` of the running daemon's OTLP receiver, or None when it is down."""
    from daemon.runtime.paths import StatePaths
    from daemon.runtime.status import StatusUnreadableError, pid_alive, read_snapshot

    try:
        snapshot = read_snapshot(StatePaths(config.daemon.state_dir).status)
    except StatusUnreadableError:
        return None
    otlp = snapshot.get("otlp") or {}
    if not otlp.get("up") or not snapshot.get("pid") or not pid_alive(int(snapshot["pid"])):
        return None
    if snapshot.get("stopped"):
        return None
    return f"http://{otlp['listen']}"


def run(args: argparse.Namespace, config: Config) -> int:
    """Run the child; write a ``killed`` report when a signal or the OOM killer ended it."""
    from daemon.runtime import wrap_run
    from daemon.runtime.paths import StatePaths
    from daemon.runtime.wrap_env import child_environment
    from daemon.runtime.wrap_report import should_report, write_killed_report
    from daemon.runtime.wrapped import DEFAULT_WATCH, WrappedChild, announce

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        err("telemetryd wrap: a command is needed: telemetryd wrap [--watch NAME] -- COMMAND")
        return EXIT_USAGE
    watch = args.watch or DEFAULT_WATCH
    names = {rule.name for rule in config.watches} | {DEFAULT_WATCH}
    if watch not in names:
        err(f"telemetryd wrap: no watch named {watch!r} in {config.source}")
        return EXIT_USAGE
    paths = StatePaths(config.daemon.state_dir)
    wrap_id = uuid.uuid4().hex[:16]
    endpoint = receiver_endpoint(config)
    parent_env = dict(os.environ)
    announced: list[Any] = []

    def tell_daemon(pid: int) -> None:
        try:
            paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            announced.append(announce(paths.wrapped, WrappedChild(wrap_id, pid, watch,
                                                                   time.time())))
        except OSError as exc:
            err(f"telemetryd wrap: cannot tell the daemon about the child: {exc}")

    try:
        outcome = wrap_run.run(
            argv, lambda pid: child_environment(parent_env, endpoint, pid, wrap_id), tell_daemon)
    finally:
        for path in announced:
            with contextlib.suppress(OSError):
                path.unlink()
    if should_report(outcome):
        try:
            write_killed_report(config, watch, wrap_id, argv, outcome)
        except Exception as exc:  # the child's status matters more than our report
            err(f"telemetryd wrap: could not write the killed report: {exc}")
    return outcome.exit_code

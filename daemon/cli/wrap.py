"""``telemetryd wrap [--watch NAME] -- COMMAND [ARGS...]``: run an agent watched from its start.

The child runs in the foreground with the terminal untouched; ``wrap`` exits with its status
(128 + N for signal N). See ``daemon.wrap.child`` for how, and the README.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

from daemon.cli.output import err
from daemon.config.schema import Config
from daemon.exit_codes import ExitCode

if TYPE_CHECKING:
    from daemon.runtime.paths import StatePaths


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    """Declare ``wrap [--watch NAME] -- COMMAND [ARGS...]``."""
    parser = subparsers.add_parser(
        "wrap", help="run an agent in the foreground, watched from its start, its telemetry "
        "sent to the daemon")
    parser.add_argument("--watch", default=None,
                        help="watch the child joins (default: wrapped, the levels' defaults)")
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")
    return parser


def receiver_endpoint(config: Config) -> str | None:
    """``http://host:port`` of the running daemon's OTLP receiver, or None when it is down."""
    from daemon.runtime.paths import StatePaths
    from daemon.status.snapshot import StatusUnreadableError
    from daemon.status.status_file import pid_alive, read_snapshot

    try:
        snapshot = read_snapshot(StatePaths(config.daemon.state_dir).status)
    except StatusUnreadableError:
        return None
    otlp = snapshot.otlp
    if otlp is None or not otlp.up or not otlp.listen or snapshot.stopped:
        return None
    if not snapshot.pid or not pid_alive(snapshot.pid):
        return None
    return f"http://{otlp.listen}"


def node_heap_dir(config: Config, watch: str, paths: StatePaths) -> str | None:
    """The folder Node writes heap snapshots to (created 0700) when the watch asks for them."""
    from crash_reports.common.files import ensure_private_dir

    if not any(rule.name == watch and rule.evidence_node_heap for rule in config.watches):
        return None
    try:
        paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        ensure_private_dir(paths.heap_snapshots)
    except OSError as exc:
        err(f"telemetryd wrap: no Node heap snapshots: {exc}")
        return None
    return str(paths.heap_snapshots)


def otlp_token(paths: StatePaths, wrap_id: str) -> str | None:
    """The child's token for the daemon's receiver (None, said on stderr, when the key in the
    state dir cannot be read or made: the child's telemetry then counts only if the daemon
    trusts it by its process)."""
    from daemon.agents.trust.sender_token import load_key, token_for

    try:
        paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return token_for(load_key(paths.otlp_key), wrap_id)
    except OSError as exc:
        err(f"telemetryd wrap: no telemetry token for the child: {exc}")
        return None


def run(args: argparse.Namespace) -> ExitCode | int:
    """Run the child; write a ``killed`` report when a signal or the OOM killer ended it.

    Returns the child's exit status (128 + N for signal N), not an ``ExitCode``, unless
    ``wrap`` itself is misused.
    """
    from daemon.config.files.load import load_config_here
    from daemon.runtime.paths import StatePaths
    from daemon.watch.proc.announcements import DEFAULT_WATCH, WrappedChild, announce
    from daemon.wrap import child as wrap_run
    from daemon.wrap.killed_report import should_report, write_killed_report
    from daemon.wrap.telemetry_env import child_environment

    config = load_config_here(args.config)
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        err("telemetryd wrap: a command is needed: telemetryd wrap [--watch NAME] -- COMMAND")
        return ExitCode.USAGE
    watch = args.watch or DEFAULT_WATCH
    names = {rule.name for rule in config.watches} | {DEFAULT_WATCH}
    if watch not in names:
        err(f"telemetryd wrap: no watch named {watch!r} in {config.source}")
        return ExitCode.USAGE
    paths = StatePaths(config.daemon.state_dir)
    heap_dir = node_heap_dir(config, watch, paths)
    wrap_id = uuid.uuid4().hex[:16]
    endpoint = receiver_endpoint(config)
    token = otlp_token(paths, wrap_id) if endpoint is not None else None
    parent_env = dict(os.environ)
    announced: list[WrappedChild] = []

    def tell_daemon(pid: int) -> None:
        child = WrappedChild(wrap_id, pid, watch, time.time(), os.getpid())
        try:
            paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            announce(paths.wrapped, child)
            announced.append(child)
        except OSError as exc:
            err(f"telemetryd wrap: cannot tell the daemon about the child: {exc}")

    def publish_sample(sample: dict[str, Any]) -> None:
        # The last sample is published beside the announcement (status, tests, a post-mortem
        # when wrap itself is killed); failing to write it never disturbs the child.
        if announced:
            announced[0] = dataclasses.replace(announced[0], last_rss_bytes=sample["rss_bytes"],
                                               last_sample_at=sample["at"])
            with contextlib.suppress(OSError):
                announce(paths.wrapped, announced[0])

    try:
        outcome = wrap_run.run(
            argv, lambda pid: child_environment(parent_env, endpoint, pid, wrap_id, heap_dir,
                                                token),
            tell_daemon,
            publish_sample)
    finally:
        for child in announced:
            with contextlib.suppress(OSError):
                (paths.wrapped / f"{child.wrap_id}.json").unlink()
    if should_report(outcome):
        try:
            write_killed_report(config, watch, wrap_id, argv, outcome)
        except Exception as exc:  # the child's status matters more than our report
            err(f"telemetryd wrap: could not write the killed report: {exc}")
    return outcome.exit_code

"""The ``telemetryd`` command: the argument parser and the dispatch; each command is a module.

Every command module exposes ``add_parser(subparsers) -> ArgumentParser`` and
``run(args) -> ExitCode``, and imports what its work needs inside ``run`` so that
building the parser stays cheap (``status`` is run by monitoring every minute).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from daemon import __version__
from daemon.cli import budget, check_config, demo, install_unit, reports, run, stats, status, wrap
from daemon.cli.output import err
from daemon.cli.parsing import CommandParser
from daemon.cli.top import command as top
from daemon.config.errors import ConfigError
from daemon.exit_codes import ExitCode

COMMANDS = (run, status, check_config, reports, stats, demo, top, install_unit, wrap, budget)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = CommandParser(
        prog="telemetryd",
        description="Watch long-running AI agents' memory and CPU; write crash reports "
        "before the OOM killer strikes; ship them to Sentry.",
    )
    parser.set_defaults(config=None)
    parser.add_argument("--version", action="version", version=f"telemetryd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub).set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    # Everything telemetryd writes (reports, databases, status) is for its owner only.
    os.umask(0o077)
    if args.command not in ("run", "demo", "budget"):
        # Commands print their results on stdout; their log lines (a corrupt spool file
        # moved aside, a flush outage) go to stderr so `--json` output stays parseable.
        from daemon.system.logs import configure_logging

        configure_logging("console", "warning", stream=sys.stderr)
    try:
        code: ExitCode = args.handler(args)
    except ConfigError as exc:
        err(f"telemetryd: config error: {exc}")
        return ExitCode.CONFIG
    except BrokenPipeError:
        return ExitCode.OK
    return code


if __name__ == "__main__":  # pragma: no cover
    os._exit(main())

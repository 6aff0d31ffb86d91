"""The ``telemetryd`` executable: ``budget`` takes a short path, everything else ``cli.main``.

``budget check`` runs before every tool call of an agent (a Claude Code hook), so it skips
building the parser of every other command and importing what they need.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (skipping ``--config PATH`` before it).

    >>> command_of(["--config", "x.toml", "budget", "check"]), command_of(["-c=x", "run"])
    ('budget', 'run')
    """
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--config", "-c"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = command_of(args)
    if command == "budget":
        from daemon.cli.budget import main as budget_main

        return budget_main(args)
    if command == "run":
        # The daemon's imports build ~60,000 objects that live as long as it does; collecting
        # while they are built frees nothing and cost ~30 ms before the first sample.
        # ``cli/run.py`` freezes them and turns the collector back on before starting.
        gc.disable()
    try:
        from daemon.cli.main import main as full_main

        return full_main(args)
    finally:
        gc.enable()

"""The ``telemetryd`` executable: ``budget`` takes a short path, everything else ``cli.main``.

``budget check`` runs before every tool call of an agent (a Claude Code hook), so it skips
building the parser of every other command and importing what they need.
"""

from __future__ import annotations

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
    if command_of(args) == "budget":
        from daemon.cli.budget import main as budget_main

        return budget_main(args)
    from daemon.cli.main import main as full_main

    return full_main(args)

"""The parser class every ``telemetryd`` command parser is built from (standard library only).

Kept apart from ``main.py`` so the fast ``budget`` path (``cli.entry``) builds its parser
the same way without importing every command module.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

CONFIG_HELP = ("config file (default: $TELEMETRYD_CONFIG, the user config dir, "
               "/etc/telemetryd/telemetryd.toml, else the embedded default)")


class CommandParser(argparse.ArgumentParser):
    """A parser that takes ``--config`` itself, as do the subcommand parsers it creates.

    ``add_subparsers`` builds subcommand parsers of the parent's class, so ``--config``
    is accepted after a command and after a sub-subcommand (``reports list --config X``).
    Its default is SUPPRESS so a subcommand does not overwrite one given before it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--config", "-c", type=Path, metavar="PATH", help=CONFIG_HELP,
                          default=argparse.SUPPRESS)

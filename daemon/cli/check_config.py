"""``telemetryd check-config [PATH]``: validate a config and print it as in force."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crash_reports.common.humanize import printable
from daemon.cli.output import out
from daemon.config.files.load import load_config_here
from daemon.config.render import as_toml, describe
from daemon.exit_codes import ExitCode


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    """Declare ``check-config [PATH] [--json]``."""
    parser = subparsers.add_parser("check-config",
                                   help="validate a config and print it as in force")
    parser.add_argument("path", nargs="?", type=Path, help="file to check (default: as found)")
    parser.add_argument("--json", action="store_true", help="print the config as JSON")
    return parser


def run(args: argparse.Namespace) -> ExitCode:
    """Print the effective config; a bad one raises ConfigError (exit 78 in ``main``)."""
    config = load_config_here(args.path or args.config)
    data = describe(config)
    if args.json:
        out(json.dumps(data, indent=2))
    else:
        out(f"# config OK: {printable(config.source)}")
        out(as_toml(data))
    return ExitCode.OK

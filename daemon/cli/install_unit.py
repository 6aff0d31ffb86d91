"""``telemetryd install-unit``: print a service definition whose ExecStart is this install.

The unit texts themselves are rendered by ``daemon/system/service_files.py``, which is
also the source of the files shipped in ``systemd/``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from daemon.cli.output import err
from daemon.exit_codes import ExitCode


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    """Declare ``install-unit [--user|--launchd]``."""
    parser = subparsers.add_parser("install-unit",
                                   help="print a service definition for this install")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--user", action="store_true", help="systemd user unit")
    kind.add_argument("--launchd", action="store_true", help="launchd agent plist (macOS)")
    return parser


def installed_executable() -> str:
    """The `telemetryd` script of this install: beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "telemetryd"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside.absolute())
    found = shutil.which("telemetryd")
    return str(Path(found).absolute()) if found else str(beside.absolute())


def run(args: argparse.Namespace) -> ExitCode:
    """Print the unit on stdout and where to save it on stderr."""
    from daemon.system.service_files import unit_file_name, unit_text

    kind = "launchd" if args.launchd else ("user" if args.user else "system")
    try:
        text = unit_text(kind, installed_executable(), home=str(Path.home()))
    except ValueError as exc:
        err(f"telemetryd: {exc}")
        return ExitCode.USAGE
    err(f"# save as {unit_file_name(kind)}")
    if isinstance(text, bytes):
        sys.stdout.buffer.write(text)
    else:
        sys.stdout.write(text)
    return ExitCode.OK

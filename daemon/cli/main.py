"""The ``telemetryd`` command: argument parsing and output formatting; the work is elsewhere."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daemon import __version__
from daemon.cli.output import err, out
from daemon.config.schema import (
    EXIT_CONFIG_ERROR,
    Config,
    ConfigError,
    describe,
    environ_snapshot,
    load_config,
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 64
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: cannot start (lock held, state dir unusable)



def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="telemetryd",
        description="Watch long-running AI agents' memory and CPU; write crash reports "
        "before the OOM killer strikes; ship them to Sentry.",
    )
    parser.add_argument("--version", action="version", version=f"telemetryd {__version__}")
    config_help = ("config file (default: $TELEMETRYD_CONFIG, the user config dir, "
                   "/etc/telemetryd/telemetryd.toml, else the embedded default)")
    parser.add_argument("--config", "-c", type=Path, metavar="PATH", help=config_help)
    # Also accepted after the subcommand (`telemetryd run --config X`); SUPPRESS keeps a
    # subcommand from overwriting a --config given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", type=Path, metavar="PATH", help=config_help,
                        default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    original_add_parser = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("parents", [common])
        return original_add_parser(name, **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign]
    sub.required = True

    sub.add_parser("run", help="run the daemon in the foreground (what the service runs)")

    status = sub.add_parser("status", help="show what the running daemon sees; exit 0/1/2/3 "
                            "like a monitoring plugin")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    check = sub.add_parser("check-config", help="validate a config and print it as in force")
    check.add_argument("path", nargs="?", type=Path, help="file to check (default: as found)")
    check.add_argument("--json", action="store_true", help="print the config as JSON")

    reports = sub.add_parser("reports", help="crash reports in the spool")
    reports_sub = reports.add_subparsers(dest="reports_command", metavar="ACTION")
    reports_sub.required = True
    listing = reports_sub.add_parser("list", help="pending, quarantined and recently "
                                     "delivered reports")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = reports_sub.add_parser("show", help="one report, decoded")
    show.add_argument("id", help="report id (event id) or a unique prefix of it")
    show.add_argument("--raw", action="store_true", help="print the envelope bytes as stored")
    reports_sub.add_parser("flush", help="send pending reports now; exit 1 if any remain")
    requeue = reports_sub.add_parser("requeue", help="move quarantined reports back to pending "
                                     "(e.g. after fixing a wrong DSN key)")
    requeue.add_argument("ids", nargs="*", metavar="ID",
                         help="report ids or unique prefixes (default: every quarantined one)")
    purge = reports_sub.add_parser("purge", help="delete reports")
    group = purge.add_mutually_exclusive_group()
    group.add_argument("--quarantined", action="store_true",
                       help="delete quarantined reports (default)")
    group.add_argument("--all", action="store_true", help="delete every report, pending too")

    stats = sub.add_parser("stats", help="persisted stats and agent telemetry")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.add_argument("--since", default="24h", help="how far back (e.g. 90m, 24h, 7d)")
    stats.add_argument("--by", choices=("agent", "model", "tool"), default="agent",
                       help="how to group agent telemetry")

    demo = sub.add_parser("demo", help="watch a synthetic leaking agent through warning, "
                          "critical and a report (about 10 s)")
    demo.add_argument("--keep", action="store_true", help="keep the demo's state dir")

    unit = sub.add_parser("install-unit", help="print a service definition for this install")
    kind = unit.add_mutually_exclusive_group()
    kind.add_argument("--user", action="store_true", help="systemd user unit")
    kind.add_argument("--launchd", action="store_true", help="launchd agent plist (macOS)")

    from daemon.cli import budget, wrap

    budget.add_parser(sub)
    wrap.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Everything telemetryd writes (reports, databases, status) is for its owner only.
    os.umask(0o077)
    if args.command == "budget":
        # Before logging is set up: structlog alone would cost more than its whole budget.
        from daemon.cli.budget import run as run_budget

        return run_budget(args)
    if args.command not in ("run", "demo"):
        # Commands print their results on stdout; their log lines (a corrupt spool file
        # moved aside, a flush outage) go to stderr so `--json` output stays parseable.
        from daemon.runtime.logs import configure_logging

        configure_logging("console", "warning", stream=sys.stderr)
    handlers = {
        "run": cmd_run,
        "status": cmd_status,
        "check-config": cmd_check_config,
        "reports": cmd_reports,
        "stats": cmd_stats,
        "demo": cmd_demo,
        "install-unit": cmd_install_unit,
        "wrap": cmd_wrap,
    }
    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        err(f"telemetryd: config error: {exc}")
        return EXIT_CONFIG_ERROR
    except BrokenPipeError:
        return EXIT_OK


def _load(args: argparse.Namespace, path: Path | None = None) -> Config:
    import psutil  # here, not at the top: `budget check` must start fast

    return load_config(path or args.config, environ_snapshot(), psutil.virtual_memory().total)


def cmd_run(args: argparse.Namespace) -> int:
    """telemetryd run."""
    import structlog

    from daemon.runtime.lock import AlreadyRunningError
    from daemon.runtime.logs import configure_logging
    from daemon.runtime.notify import Notifier
    from daemon.runtime.service import Service, StartupError, environ_for_notify

    try:
        config = _load(args)
    except ConfigError as exc:
        configure_logging("auto", "info")
        structlog.get_logger("telemetryd").error(
            "config.error", source=exc.source, key=exc.key, error=exc.message)
        err(f"telemetryd: config error: {exc}")
        return EXIT_CONFIG_ERROR
    configure_logging(config.daemon.log_format, config.daemon.log_level)
    service = Service(
        config,
        notifier=Notifier.from_environ(environ_for_notify()),
        config_loader=lambda: _load(args),
    )
    try:
        service.run()
    except (AlreadyRunningError, StartupError) as exc:
        structlog.get_logger("telemetryd").error("daemon.start_failed", error=str(exc))
        err(f"telemetryd: {exc}")
        return EXIT_UNAVAILABLE
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """telemetryd status."""
    from daemon.runtime.lock import is_locked
    from daemon.runtime.paths import StatePaths
    from daemon.runtime.status import (
        EXIT_UNKNOWN,
        StatusUnreadableError,
        evaluate,
        pid_alive,
        read_snapshot,
        render_table,
    )

    config = _load(args)
    paths = StatePaths(config.daemon.state_dir)
    now = time.time()
    try:
        snapshot = read_snapshot(paths.status)
    except StatusUnreadableError as exc:
        if args.json:
            out(json.dumps({"running": False, "exit_code": EXIT_UNKNOWN, "error": str(exc)}))
        else:
            out(f"telemetryd: not running or status unreadable: {exc}")
        return EXIT_UNKNOWN
    verdict = evaluate(snapshot, is_locked(paths.lock), pid_alive(int(snapshot.get("pid", 0))),
                       now)
    if args.json:
        out(json.dumps({**snapshot, "running": verdict.running, "exit_code": verdict.exit_code,
                          "summary": verdict.summary}, indent=2))
    else:
        out(render_table(snapshot, verdict, now))
    return verdict.exit_code


def cmd_check_config(args: argparse.Namespace) -> int:
    """telemetryd check-config [PATH]."""
    config = _load(args, args.path)
    data = describe(config)
    if args.json:
        out(json.dumps(data, indent=2))
    else:
        out(f"# config OK: {config.source}")
        out(_as_toml(data))
    return EXIT_OK


def _as_toml(data: dict[str, Any]) -> str:
    """Print the effective config in a TOML-like form people can paste from."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        return str(v)

    for section, content in data.items():
        if section == "source":
            continue
        tables = content if isinstance(content, list) else [content]
        for table in tables:
            header = f"[[{section}]]" if isinstance(content, list) else f"[{section}]"
            lines.append(header)
            for key, item in table.items():
                if key == "dsn_redacted":
                    if item is not None:
                        lines.append(f"# dsn = {value(item)}  (key hidden)")
                elif item is not None:
                    lines.append(f"{key} = {value(item)}")
            lines.append("")
    return "\n".join(lines)


def cmd_reports(args: argparse.Namespace) -> int:
    """telemetryd reports list|show|flush|purge."""
    from daemon.cli.reports import run as run_reports

    config = _load(args)
    return run_reports(args, config)


def cmd_stats(args: argparse.Namespace) -> int:
    """telemetryd stats."""
    from daemon.cli.stats import run as run_stats

    config = _load(args)
    return run_stats(args, config)


def cmd_wrap(args: argparse.Namespace) -> int:
    """telemetryd wrap."""
    from daemon.cli.wrap import run as run_wrap

    return run_wrap(args, _load(args))


def cmd_demo(args: argparse.Namespace) -> int:
    """telemetryd demo."""
    from daemon.cli.demo import run_demo

    return run_demo(keep=args.keep)


def installed_executable() -> str:
    """The `telemetryd` script of this install: beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "telemetryd"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside.absolute())
    found = shutil.which("telemetryd")
    return str(Path(found).absolute()) if found else str(beside.absolute())


def cmd_install_unit(args: argparse.Namespace) -> int:
    """telemetryd install-unit."""
    from daemon.runtime.service_files import unit_file_name, unit_text

    kind = "launchd" if args.launchd else ("user" if args.user else "system")
    executable = installed_executable()
    try:
        text = unit_text(kind, executable, home=str(Path.home()))
    except ValueError as exc:
        err(f"telemetryd: {exc}")
        return EXIT_USAGE
    err(f"# save as {unit_file_name(kind)}")
    if isinstance(text, bytes):
        sys.stdout.buffer.write(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    os._exit(main())

"""``telemetryd run``: the daemon in the foreground (what the service manager runs)."""

from __future__ import annotations

import argparse
import gc

from daemon.cli.output import err
from daemon.config.errors import ConfigError
from daemon.config.files.load import load_config_here
from daemon.exit_codes import ExitCode


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    """Declare ``run``."""
    return subparsers.add_parser(
        "run", help="run the daemon in the foreground (what the service runs)")


def run(args: argparse.Namespace) -> ExitCode:
    """Load the config, start the service and run until stopped."""
    import structlog

    from daemon.runtime.lock import AlreadyRunningError
    from daemon.runtime.service import (
        Service,
        StartupError,
        UnsafeStateDirError,
        environ_for_notify,
    )
    from daemon.system.heap import keep_large_blocks_unmapped_when_freed
    from daemon.system.logs import configure_logging
    from daemon.system.notify import Notifier

    try:
        config = load_config_here(args.config)
    except ConfigError as exc:
        configure_logging("auto", "info")
        structlog.get_logger(component="service").error(
            "config.error", source=exc.source, key=exc.key, error=exc.message)
        err(f"telemetryd: config error: {exc}")
        return ExitCode.CONFIG
    configure_logging(config.daemon.log_format, config.daemon.log_level)
    keep_large_blocks_unmapped_when_freed()
    # What the imports built stays for good: set it aside (later full collections skip it)
    # and collect from here on (``entry.py`` paused the collector for the imports).
    gc.freeze()
    gc.enable()
    service = Service(
        config,
        notifier=Notifier.from_environ(environ_for_notify()),
        config_loader=lambda: load_config_here(args.config),
    )
    try:
        service.run()
    except UnsafeStateDirError as exc:
        # EX_CANTCREAT: the daemon will not create its files where others could hijack them.
        structlog.get_logger(component="service").error("daemon.start_failed", error=str(exc))
        err(f"telemetryd: {exc}")
        return ExitCode.CANT_CREATE
    except (AlreadyRunningError, StartupError) as exc:
        structlog.get_logger(component="service").error("daemon.start_failed", error=str(exc))
        err(f"telemetryd: {exc}")
        return ExitCode.UNAVAILABLE
    return ExitCode.OK

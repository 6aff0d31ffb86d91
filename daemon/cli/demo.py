"""``telemetryd demo``: a leaking synthetic agent taken through warning, critical and a report."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from crash_reports.spool.store import Spool
from daemon.cli.reports import show_report
from daemon.config.parse import parse_config_text
from daemon.exit_codes import ExitCode

if TYPE_CHECKING:
    pass

# The synthetic agent: grows by 8 MiB every half second (touching every page so it
# is resident), up to a cap, then idles until it is stopped.
LEAKER = """
import sys, time
hoard = []
while len(hoard) < 64:
    hoard.append(bytearray(8 * 1024 * 1024))
    time.sleep(0.5)
time.sleep(600)
"""

DEMO_CONFIG = """
[daemon]
interval = 0.5
state_dir = "{state_dir}"
log_format = "console"
log_level = "info"
trend_window = "6s"

[otlp]
listen = "127.0.0.1:0"

[metrics]
listen = "127.0.0.1:0"

[[watch]]
name = "demo-agent"
pid = {pid}
include_children = true
rss_warning = "{warning}"
rss_critical = "{critical}"
cpu_warning = 400
cpu_critical = 800
sustained = 2
cooldown = 600
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    """Declare ``demo [--keep]``."""
    parser = subparsers.add_parser("demo", help="watch a synthetic leaking agent through "
                                   "warning, critical and a report (about 10 s)")
    parser.add_argument("--keep", action="store_true", help="keep the demo's state dir")
    return parser


def run(args: argparse.Namespace) -> ExitCode:
    """Run the demo with the command line's options."""
    return run_demo(keep=args.keep)


def _say(text: str) -> None:
    sys.stdout.write(f"\n>>> {text}\n")
    sys.stdout.flush()


def run_demo(keep: bool = False, timeout_seconds: float = 60.0) -> ExitCode:
    """Run the demo; OK when a report was written and shown."""
    from daemon.runtime.service import Service
    from daemon.system.logs import configure_logging

    state_dir = Path(tempfile.mkdtemp(prefix="telemetryd-demo-"))
    agent = subprocess.Popen([sys.executable, "-c", LEAKER])
    try:
        baseline = psutil.Process(agent.pid).memory_info().rss
        warning = baseline + 48 * 1024 * 1024
        critical = baseline + 112 * 1024 * 1024
        _say(f"started a synthetic agent (pid {agent.pid}) that leaks 16 MiB/s; "
             f"warning at {warning >> 20} MiB, critical at {critical >> 20} MiB; "
             f"state in {state_dir}")
        config = parse_config_text(
            DEMO_CONFIG.format(state_dir=state_dir, pid=agent.pid, warning=warning,
                               critical=critical),
            "<demo>", {}, psutil.virtual_memory().total,
        )
        configure_logging("console", "info")
        service = Service(config)
        service.startup()
        assert service.running is not None
        spool = service.running.spool
        try:
            report_id = _wait_for_report(spool, timeout_seconds)
        finally:
            service.shutdown()
        if report_id is None:
            _say(f"no report within {timeout_seconds:.0f}s; something is wrong")
            return ExitCode.FAILURE
        _say(f"telemetryd reports show {report_id}")
        show_report(spool, report_id, raw=False)
        _say("that report is a Sentry envelope waiting in the spool; with [sentry] dsn set, "
             "the daemon delivers it and removes it only once Sentry confirms.")
        return ExitCode.OK
    finally:
        agent.terminate()
        try:
            agent.wait(timeout=5)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        if keep:
            _say(f"kept {state_dir}")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)


def _wait_for_report(spool: Spool, timeout_seconds: float) -> str | None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        pending = spool.pending()
        if pending:
            return str(pending[0].id)
        time.sleep(0.1)
    return None

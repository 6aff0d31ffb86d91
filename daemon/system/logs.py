"""structlog configuration: JSON lines off a TTY (journald reads stdout), console on one.

Every logger is made one way, ``log = structlog.get_logger(component="tick")``: the
``component`` field (the part of telemetryd that wrote the line; the names are listed in
docs/architecture.md) is bound lazily, so it rides on every line whatever pipeline
``configure_logging`` later sets up. Libraries' stdlib records get their library's name.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from crash_reports.common.humanize import printable

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def resolve_format(log_format: str, stream: TextIO) -> str:
    """Pick json or console; "auto" means console on a TTY.

    >>> import io
    >>> resolve_format("auto", io.StringIO())
    'json'
    """
    if log_format != "auto":
        return log_format
    isatty = getattr(stream, "isatty", None)
    return "console" if isatty is not None and isatty() else "json"


class _StdlibToStructlog(logging.Handler):
    """Route libraries' stdlib logging (APScheduler) through the structlog pipeline."""

    def emit(self, record: logging.LogRecord) -> None:
        method = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning"}.get(
            record.levelname, "error")
        logger = structlog.get_logger(component=record.name.split(".")[0])
        fields: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = repr(record.exc_info[1])
        getattr(logger, method)(f"{record.name.split('.')[0]}.log", **fields)


def _escaped(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return printable(value)
    if depth >= 3:
        return value
    if isinstance(value, list | tuple):
        return [_escaped(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_escaped(k, depth + 1): _escaped(v, depth + 1) for k, v in value.items()}
    return value


def escape_controls(logger: Any, method: str,
                    event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """Every string of a log line through ``humanize.printable``, the one escaping helper:
    a process name or an error text from outside can neither drive the terminal the console
    format writes to nor break a JSON line (json leaves DEL raw).

    >>> escape_controls(None, "info", {"event": "process.seen", "name": "x\x1b[2J\x7f"})
    {'event': 'process.seen', 'name': 'x\\\\x1b[2J\\\\x7f'}
    """
    return {key: _escaped(value) for key, value in event_dict.items()}


def configure_stdlib_logging(log_level: str) -> None:
    """Send stdlib log records to structlog; quiet what the daemon already reports itself."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StdlibToStructlog):
            root.removeHandler(handler)
    root.addHandler(_StdlibToStructlog())
    root.setLevel(_LEVELS.get(log_level, logging.INFO))
    # Job failures and misses reach the daemon through scheduler events (tick.error,
    # tick.missed); the executor's own traceback lines would only repeat them.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


def configure_logging(log_format: str, log_level: str, stream: TextIO | None = None) -> None:
    """Set up the structlog pipeline for the process (called by the shell, never on import)."""
    out = stream if stream is not None else sys.stdout
    chosen = resolve_format(log_format, out)
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if chosen == "console"
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            escape_controls,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(log_level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    configure_stdlib_logging(log_level)

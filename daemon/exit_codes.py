"""Every exit code ``telemetryd`` returns, in one enum.

``status`` follows the monitoring-plugin convention (0 ok, 1 warning, 2 critical,
3 unknown) so it can be a Nagios/Icinga/monit check; the other failures use
sysexits.h, which service managers and scripts understand.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a command's exit status means.

    ``WARNING`` is the same number as ``FAILURE`` (an alias): 1 is both the plugin
    "warning" of ``status`` and "something remains to do" for the other commands.

    >>> int(ExitCode.CONFIG)
    78
    >>> ExitCode(2).name
    'CRITICAL'
    """

    OK = 0
    FAILURE = 1
    WARNING = 1
    CRITICAL = 2
    OVER_BUDGET = 2  # `budget check`: what Claude Code's hooks read as "block this tool call"
    UNKNOWN = 3
    USAGE = 64  # EX_USAGE: a bad argument
    NO_INPUT = 66  # EX_NOINPUT: the report asked for does not exist
    UNAVAILABLE = 69  # EX_UNAVAILABLE: cannot start (lock held, state dir unusable)
    CANT_CREATE = 73  # EX_CANTCREAT: an output file cannot be created
    CONFIG = 78  # EX_CONFIG: the config is wrong, what service managers expect
    INTERRUPTED = 130  # 128 + SIGINT: `top` left on Ctrl-C
    TERMINATED = 143  # 128 + SIGTERM: `top` stopped by a signal

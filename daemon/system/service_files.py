"""Service definitions for systemd (system and user) and launchd, rendered for one executable.

This module is the one source of the unit texts: the files shipped in ``systemd/`` are
``shipped_files()`` for ``SHIPPED_EXECUTABLE``, and a test fails if they drift.
"""

from __future__ import annotations

import plistlib
import re
from typing import Literal

UnitKind = Literal["system", "user", "launchd"]

UNIT_KINDS: tuple[UnitKind, ...] = ("system", "user", "launchd")
SHIPPED_EXECUTABLE = "/usr/local/bin/telemetryd"
LAUNCHD_LABEL = "dev.telemetryd"

_EXEC = "@EXEC_START@"

# Options shared by both systemd units: life cycle, watchdog and resource limits.
_LIFECYCLE = f"""\
[Service]
Type=notify
# Only the daemon itself may send READY/WATCHDOG/STATUS, not something it spawns.
NotifyAccess=main
ExecStart={_EXEC} run
ExecReload=/bin/kill -HUP $MAINPID
# Pinged after every tick (and by the main loop while ticks are on time, if the interval
# is longer than half this); a daemon whose sampling hangs is killed and restarted.
WatchdogSec=30s
Restart=on-failure
RestartSec=5s
TimeoutStartSec=30s
# Leaves time to finish a spool flush after SIGTERM.
TimeoutStopSec=30s
# Sets $STATE_DIRECTORY, which the daemon prefers over its platformdirs default.
StateDirectory=telemetryd
# Python block-buffers stdout on a pipe; JSON log lines must reach the journal as they happen.
Environment=PYTHONUNBUFFERED=1
SyslogIdentifier=telemetryd
UMask=0077
# The daemon's own bounds: a watchdog that leaks must not take the machine with it.
MemoryMax=256M
TasksMax=64

"""

# Sandboxing that works without privileges: seccomp only, no namespaces.
_SECCOMP = """\
NoNewPrivileges=yes
# AF_UNIX for the journal and $NOTIFY_SOCKET, AF_INET/AF_INET6 for OTLP, Prometheus and Sentry.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
# No MemoryDenyWriteExecute=: libffi closures (ctypes, cffi) need writable executable pages.
"""

_SYSTEM_TEMPLATE = f"""\
[Unit]
Description=telemetryd: resource watchdog and crash reporter for long-running AI agents
StartLimitIntervalSec=300
StartLimitBurst=5

{_LIFECYCLE}\
# The OOM killer should take what is watched before the watchdog that reports it.
OOMScoreAdjust=-900

# Runs as root, but keeps only two capabilities, both needed to see every user's agents:
# CAP_SYS_PTRACE passes the ptrace read-access check on other users' /proc/PID/exe, cwd,
# environ and smaps_rollup (it does not allow attaching: ptrace(2) itself is not in
# @system-service); CAP_DAC_READ_SEARCH opens their /proc/PID/fd (0500) and environ (0400).
# /proc stays fully visible: ProtectProc= and ProcSubset= are left at their defaults.
CapabilityBoundingSet=CAP_SYS_PTRACE CAP_DAC_READ_SEARCH
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
{_SECCOMP}\

[Install]
WantedBy=multi-user.target
"""

_USER_TEMPLATE = f"""\
[Unit]
Description=telemetryd: resource watchdog and crash reporter for long-running AI agents (user)
StartLimitIntervalSec=300
StartLimitBurst=5

{_LIFECYCLE}\
# An unprivileged manager cannot go below its own score (user@.service sets 100), and other
# user services default to 200: 100 makes the daemon the last of them the OOM killer picks.
OOMScoreAdjust=100

# No ProtectSystem=/ProtectHome=/PrivateTmp= here: in a user manager they imply
# PrivateUsers=yes, which needs unprivileged user namespaces (refused on some hosts) and
# maps every other user's processes to nobody. The seccomp-only options below still apply.
{_SECCOMP}\

[Install]
WantedBy=default.target
"""

# A path systemd reads literally: no spaces, quotes, specifiers (%) or escapes.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9/_.+:,=@-]+")


def quote_exec_path(path: str) -> str:
    r"""Quote an executable path for ``ExecStart=`` so systemd reads it back unchanged.

    >>> quote_exec_path("/usr/local/bin/telemetryd")
    '/usr/local/bin/telemetryd'
    >>> quote_exec_path("/opt/my apps/100%/telemetryd")
    '"/opt/my apps/100%%/telemetryd"'
    """
    # systemd refuses quotes and backslashes in an executable name ("special characters"),
    # keeps "$" literal there in 252 while other versions may expand it: refuse all of them.
    if any(ord(ch) < 0x20 or ch in "\x7f\"'\\$" for ch in path):
        raise ValueError(f"executable path has a character systemd cannot take: {path!r}")
    if _PLAIN_WORD.fullmatch(path):
        return path
    return '"' + path.replace("%", "%%") + '"'


def _check_executable(executable: str) -> None:
    if not executable.startswith("/"):
        raise ValueError(f"executable must be an absolute path, got {executable!r}")


def render_systemd_unit(executable: str, user: bool) -> str:
    """Return the system (``user=False``) or user unit text that runs ``executable run``.

    >>> "ExecStart=/opt/td run" in render_systemd_unit("/opt/td", user=True)
    True
    """
    _check_executable(executable)
    template = _USER_TEMPLATE if user else _SYSTEM_TEMPLATE
    return template.replace(_EXEC, quote_exec_path(executable))


def launchd_log_path(home: str | None) -> str:
    """Return where the launchd agent's stdout and stderr go: ``~/Library/Logs`` when known.

    >>> launchd_log_path("/Users/ada")
    '/Users/ada/Library/Logs/telemetryd.log'
    """
    # launchd does not expand "~", so without a home directory the path must be fixed.
    if home is None:
        return "/tmp/telemetryd.log"
    _check_executable(home)
    return f"{home.rstrip('/')}/Library/Logs/telemetryd.log"


def render_launchd_plist(executable: str, home: str | None = None) -> bytes:
    """Return the launchd agent plist (XML) that keeps ``executable run`` running.

    >>> plistlib.loads(render_launchd_plist("/opt/td/telemetryd"))["ProgramArguments"]
    ['/opt/td/telemetryd', 'run']
    """
    _check_executable(executable)
    log_path = launchd_log_path(home)
    agent = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": [executable, "run"],
        "RunAtLoad": True,
        "KeepAlive": True,
        # Same pause between restarts as RestartSec= in the systemd units.
        "ThrottleInterval": 5,
        "ProcessType": "Background",
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
        "StandardOutPath": log_path,
        "StandardErrorPath": log_path,
    }
    return plistlib.dumps(agent, fmt=plistlib.FMT_XML, sort_keys=True)


def unit_text(kind: str, executable: str, home: str | None = None) -> str | bytes:
    """Return the service definition of ``kind`` ("system", "user" or "launchd").

    >>> unit_text("launchd", "/opt/td/telemetryd")[:5]
    b'<?xml'
    """
    if kind == "system":
        return render_systemd_unit(executable, user=False)
    if kind == "user":
        return render_systemd_unit(executable, user=True)
    if kind == "launchd":
        return render_launchd_plist(executable, home)
    raise ValueError(f"unknown unit kind {kind!r}; expected one of {', '.join(UNIT_KINDS)}")


def unit_file_name(kind: str) -> str:
    """Return the file name a service definition of ``kind`` is installed under.

    >>> unit_file_name("user")
    'telemetryd.service'
    """
    if kind == "launchd":
        return f"{LAUNCHD_LABEL}.plist"
    if kind in ("system", "user"):
        return "telemetryd.service"
    raise ValueError(f"unknown unit kind {kind!r}; expected one of {', '.join(UNIT_KINDS)}")


def shipped_files() -> dict[str, bytes]:
    """Return the exact contents of the files in ``systemd/``, keyed by file name.

    >>> sorted(shipped_files())
    ['dev.telemetryd.plist', 'telemetryd-user.service', 'telemetryd.service']
    """
    return {
        "telemetryd.service": render_systemd_unit(SHIPPED_EXECUTABLE, user=False).encode(),
        "telemetryd-user.service": render_systemd_unit(SHIPPED_EXECUTABLE, user=True).encode(),
        "dev.telemetryd.plist": render_launchd_plist(SHIPPED_EXECUTABLE),
    }

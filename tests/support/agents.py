"""Real processes that behave like misbehaving agents, driven over stdin."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from daemon.config.schema import ListenSettings, OtlpSettings, WireLimits

AGENT_SCRIPT = r"""
import os, subprocess, sys, time
hoard = []
children = []
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "grow":
        hoard.append(bytearray(int(float(args[0]) * 1024 * 1024)))
        for block in hoard[-1:]:
            for i in range(0, len(block), 4096):
                block[i] = 1
    elif cmd == "free":
        hoard.clear()
    elif cmd == "burn":
        end = time.monotonic() + float(args[0])
        while time.monotonic() < end:
            pass
    elif cmd == "child":
        code = ("import sys,time; b=bytearray(int(float(sys.argv[1])*1048576)); "
                "[b.__setitem__(i,1) for i in range(0,len(b),4096)]; "
                "print('ok', flush=True); time.sleep(3600)")
        child = subprocess.Popen([sys.executable, "-c", code, args[0]], stdout=subprocess.PIPE)
        child.stdout.readline()
        children.append(child)
    elif cmd == "exit":
        break
    print("ok", flush=True)
"""


class Agent:
    """A child process that allocates, burns CPU or spawns children when told to."""

    def __init__(self, name_hint: str = "agent", extra_args: list[str] | None = None) -> None:
        argv = [sys.executable, "-c", AGENT_SCRIPT, name_hint, *(extra_args or [])]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("ready"), line
        self.pid = self.proc.pid

    def command(self, text: str) -> None:
        """Send one command and wait until the agent has carried it out."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply.strip() == "ok", f"agent answered {reply!r} to {text!r}"

    def rss_bytes(self) -> int:
        """Resident memory of the agent itself, from /proc."""
        statm = Path(f"/proc/{self.pid}/statm").read_text().split()
        return int(statm[1]) * os.sysconf("SC_PAGE_SIZE")

    def kill(self) -> None:
        """SIGKILL the agent's whole process group (only what it started)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def loopback_otlp(host: str = "127.0.0.1", **overrides: Any) -> OtlpSettings:
    """The schema's [otlp] defaults on an ephemeral loopback port, with ``overrides``
    (a wire limit's field name sets it in ``wire``).

    ``trust`` is "any" unless overridden: a receiver without a daemon's tick watches no
    process, so by default it would take no sender (tests of trust set it themselves)."""
    settings = OtlpSettings(listen=ListenSettings(True, host, 0), trust="any")
    wire_fields = {field.name for field in dataclasses.fields(WireLimits)}
    wire = {key: overrides.pop(key) for key in list(overrides) if key in wire_fields}
    return dataclasses.replace(settings, wire=dataclasses.replace(settings.wire, **wire),
                               **overrides)

"""Run the real ``telemetryd`` daemon as a subprocess and read what it logs and writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0,
        input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m daemon ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args], capture_output=True, text=True,
        timeout=timeout, env=env or clean_env(), cwd=REPO, input=input_text,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without telemetryd or Sentry settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEMETRYD_CONFIG", "SENTRY_DSN", "STATE_DIRECTORY", "NOTIFY_SOCKET")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class DaemonProcess:
    """``telemetryd run`` with its JSON log lines captured to a file."""

    def __init__(self, config_path: Path, log_path: Path, env: dict[str, str] | None = None):
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(config_path), "run"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env or clean_env(), cwd=REPO,
        )
        self.pid = self.proc.pid

    def events(self) -> list[dict[str, Any]]:
        """Every JSON log line so far."""
        result = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                result.append(item)
        return result

    def wait_event(self, name: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """Wait until an event with this name (and these field values) is logged."""
        def found() -> dict[str, Any] | None:
            for event in self.events():
                if event.get("event") == name and all(event.get(k) == v for k, v in fields.items()):
                    return event
            if self.proc.poll() is not None and name not in ("daemon.stopped",):
                raise AssertionError(f"daemon exited ({self.proc.returncode}) before {name}: "
                                     f"{self.log_path.read_text()[-2000:]}")
            return None
        return wait_for(found, timeout, message=f"log event {name} {fields}")  # type: ignore[no-any-return]

    def signal(self, signum: int) -> None:
        """Send a signal to the daemon."""
        os.kill(self.pid, signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._log.close()
        return code

    def kill(self) -> None:
        """SIGKILL (only this daemon) and wait."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()

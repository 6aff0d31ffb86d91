"""A running daemon watching a leaking agent, for the tests of `top` and the status page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.test_watchdog import memory_watch, write_config
from tests.support.agents import Agent
from tests.support.daemon_proc import REPO, DaemonProcess, cli
from tests.support.waiting import wait_for

ARTIFACTS_ENV = "TELEMETRYD_ARTIFACTS"
DOCS_IMAGES = REPO / "docs" / "images"


@dataclass
class WatchedLeak:
    """The daemon, its config, the agent it watches and the base URL of its listener."""

    daemon: DaemonProcess
    config: Path
    agent: Agent
    base_url: str


def listener_url(config: Path) -> str:
    """http://host:port of the daemon's [metrics] listener, as `status --json` reports it."""
    def url() -> str | None:
        status = json.loads(cli("--config", str(config), "status", "--json").stdout or "{}")
        listen = (status.get("metrics") or {}).get("listen")
        return f"http://{listen}" if listen else None
    return wait_for(url, message="metrics listener up")  # type: ignore[no-any-return]


def get(url: str) -> bytes:
    """GET a URL on loopback."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()  # type: ignore[no-any-return]


@contextmanager
def watched_leak(tmp_path: Path, warning_mib: int = 30, critical_mib: int = 60,
                 interval: float = 0.2) -> Iterator[WatchedLeak]:
    """A real daemon watching a real agent process; stopped (and the agent killed) at the end."""
    with Agent() as agent:
        config = write_config(tmp_path, memory_watch(agent, warning_mib, critical_mib),
                              interval=interval)
        daemon = DaemonProcess(config, tmp_path / "log.jsonl")
        try:
            daemon.wait_event("process.seen", pid=agent.pid)
            yield WatchedLeak(daemon, config, agent, listener_url(config))
        finally:
            assert daemon.stop() == 0


def artifact_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $TELEMETRYD_ARTIFACTS if set, else the test's tmp dir."""
    folder = Path(os.environ.get(ARTIFACTS_ENV) or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def keep_for_docs(image: Path) -> None:
    """Copy a screenshot into docs/images when TELEMETRYD_UPDATE_DOCS=1 (README pictures)."""
    if os.environ.get("TELEMETRYD_UPDATE_DOCS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, DOCS_IMAGES / image.name)


def chromium() -> str:
    """The Chromium binary (Debian's `chromium`, installed by .ci/run)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium not found: .ci/run installs Debian's chromium package"
    return found


def run_chromium(profile: Path, *args: str, timeout: float = 120.0) -> str:
    """Headless Chromium with a fresh profile and no network but loopback; its stdout."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
    result = subprocess.run([chromium(), *flags, *args], capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout

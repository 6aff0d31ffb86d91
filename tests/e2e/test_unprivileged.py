"""A daemon without privileges watching another user's agent: denied details never stop a tick."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.agents import Agent
from tests.support.daemon_proc import REPO, clean_env
from tests.support.unprivileged import InstalledCopy, installed_copy, world_reachable
from tests.support.waiting import wait_for

NOBODY = 65534


@pytest.fixture
def shared_dir():
    """A temp dir the unprivileged daemon can write to."""
    path = Path(tempfile.mkdtemp(prefix="telemetryd-nobody-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="needs root and setpriv to start a daemon as another user")


def as_nobody(argv: list[str]) -> list[str]:
    """argv run as nobody, with no supplementary groups."""
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def test_unprivileged_daemon_reads_nothing_from_the_checkout(shared_dir: Path):
    """The copy's interpreter and packages sit outside the checkout, reachable by any user.

    So the suite passes from a checkout under a 0700 directory (a home directory).
    """
    copy = installed_copy(shared_dir / "app")
    for path in (copy.python, copy.pythonpath, copy.pythonpath / "daemon" / "__main__.py"):
        assert not path.resolve().is_relative_to(REPO), path
        assert world_reachable(path), path
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return
    probe = subprocess.run(
        as_nobody([*copy.command()[:2], "-c",
                   "import daemon, crash_reports, psutil, sentry_sdk, apscheduler, structlog;"
                   "print(daemon.__file__); print(psutil.__file__)"]),
        capture_output=True, text=True, timeout=120, cwd=shared_dir,
        env=copy.env(clean_env(HOME=str(shared_dir))))
    assert probe.returncode == 0, probe.stderr
    for loaded in probe.stdout.split():
        assert Path(loaded).is_relative_to(shared_dir), loaded


@needs_root
def test_other_users_process_is_watched_with_access_denied_noted(shared_dir: Path):
    """RSS and CPU still come from /proc/PID/stat; exe/cwd are denied and status says so."""
    copy: InstalledCopy = installed_copy(shared_dir / "app")
    with Agent() as agent:  # runs as root; the daemon below runs as nobody
        state = shared_dir / "state"
        config = shared_dir / "telemetryd.toml"
        config.write_text(
            f'[daemon]\ninterval = 0.2\nstate_dir = "{state}"\nlog_format = "json"\n'
            '[otlp]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n'
            f'[[watch]]\nname = "rootly"\npid = {agent.pid}\nrss_warning = "1MiB"\n'
            'rss_critical = "2MiB"\nsustained = 1\n')
        config.chmod(0o644)
        log_path = shared_dir / "log.jsonl"
        with log_path.open("wb") as log:
            daemon = subprocess.Popen(
                as_nobody(copy.command("--config", str(config), "run")),
                stdout=log, stderr=subprocess.STDOUT, cwd=shared_dir,
                env=copy.env(clean_env(HOME=str(shared_dir))))
        try:
            def snapshot() -> dict | None:
                try:
                    data = json.loads((state / "status.json").read_text())
                except (OSError, ValueError):
                    return None
                procs = data["watches"][0]["processes"]
                return data if procs and data["last_tick"]["count"] >= 5 else None
            data = wait_for(snapshot, message="several ticks with the root-owned agent")
            report = wait_for(lambda: '"report.written"' in log_path.read_text(),
                              message="report despite denied details")
        finally:
            daemon.terminate()
            assert daemon.wait(timeout=30) == 0
    [proc] = data["watches"][0]["processes"]
    assert proc["pid"] == agent.pid and proc["rss_bytes"] > 2 * 1024 * 1024
    assert "access denied" in proc["note"]
    assert report
    envelope = next((state / "spool" / "pending").glob("*.env")).read_bytes()
    assert b"[access denied]" in envelope  # exe/cwd of a root process, as seen by nobody

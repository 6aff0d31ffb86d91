"""The README's run command on a fresh virtualenv: runtime dependencies alone are enough."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)  # a dependency install: minutes on a loaded machine
@pytest.mark.xdist_group("pip-build")  # pip builds in the checkout (build/, *.egg-info)
def test_pip_install_then_telemetryd_run_samples(tmp_path: Path) -> None:
    """`pip install .` into an empty venv gives a `telemetryd` that starts and samples."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)  # our pip installs into it (--python): no ensurepip
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
         "--disable-pip-version-check", "--no-compile", str(REPO)],
        capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    telemetryd = env_dir / "bin" / "telemetryd"
    config = tmp_path / "telemetryd.toml"
    config.write_text(
        f'[daemon]\ninterval = 0.2\nstate_dir = "{tmp_path / "state"}"\nlog_format = "json"\n'
        '[otlp]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n'
        f'[[watch]]\nname = "me"\npid = {os.getpid()}\n')
    log_path = tmp_path / "log.jsonl"
    with log_path.open("wb") as log:
        daemon = subprocess.Popen([str(telemetryd), "--config", str(config), "run"],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_for(lambda: '"daemon.ready"' in log_path.read_text() or daemon.poll() is not None,
                 timeout=60, message="the installed daemon's first sample")
        assert daemon.poll() is None, log_path.read_text()[-3000:]
        status = subprocess.run([str(telemetryd), "--config", str(config), "status"],
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "running" in status.stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0, log_path.read_text()[-3000:]
    # It imported its own packages, not the repository checkout's.
    where = subprocess.run([str(python), "-c", "import daemon, crash_reports; "
                            "print(daemon.__file__); print(crash_reports.__file__)"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert all(str(env_dir) in line for line in where.stdout.splitlines()), where.stdout
    assert sys.prefix != str(env_dir)

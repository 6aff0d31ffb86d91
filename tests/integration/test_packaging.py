"""What `pip install .` installs: our own `daemon` and `crash_reports`, and the console script."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import crash_reports
import daemon

REPO = Path(__file__).resolve().parents[2]


def test_daemon_and_crash_reports_come_from_this_distribution():
    """`import daemon` is this project's package, not python-daemon's, and so is crash_reports."""
    dist = metadata.distribution("telemetryd")
    assert Path(daemon.__file__).resolve().is_relative_to(REPO) or any(
        str(f).startswith("daemon/") for f in dist.files or []
    )
    assert Path(daemon.__file__).resolve().parent.name == "daemon"
    assert hasattr(daemon, "__version__") and daemon.__version__ == dist.version
    assert Path(crash_reports.__file__).resolve().parent.parent == Path(
        daemon.__file__).resolve().parent.parent
    requirements = " ".join(dist.requires or []).lower()
    assert "python-daemon" not in requirements
    for needed in ("psutil", "apscheduler", "structlog", "platformdirs", "sentry-sdk"):
        assert needed in requirements


@pytest.mark.xdist_group("pip-build")  # pip builds in the checkout (build/, *.egg-info)
def test_wheel_holds_both_packages_and_the_console_script(tmp_path):
    """The built wheel ships daemon/ and crash_reports/ and a `telemetryd` entry point."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    [wheel] = tmp_path.glob("telemetryd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "daemon/__init__.py" in names and "daemon/cli/main.py" in names
    assert "crash_reports/__init__.py" in names and "crash_reports/spool/store.py" in names
    assert "daemon/web/otlp_receiver.py" in names
    assert not any(name.startswith("tests/") for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "telemetryd = daemon.cli.entry:main" in text


def test_version_and_help_from_the_command_line():
    """`python -m daemon --version` and `python -m daemon run --help` answer from a fresh
    process (the entry point, its imports)."""
    version = subprocess.run([sys.executable, "-m", "daemon", "--version"],
                             capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and daemon.__version__ in version.stdout
    result = subprocess.run([sys.executable, "-m", "daemon", "run", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: telemetryd" in result.stdout


@pytest.mark.parametrize("args", [
    ["run"], ["status"], ["check-config"], ["reports", "list"], ["reports", "show"],
    ["reports", "flush"], ["reports", "purge"], ["stats"], ["demo"], ["install-unit"],
], ids=" ".join)
def test_every_subcommand_answers_help(args: list[str], capsys: pytest.CaptureFixture[str]):
    """Every subcommand's --help prints its usage and exits 0 (the parser the command line
    uses, called in this process)."""
    from daemon.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main([*args, "--help"])
    assert exited.value.code == 0
    assert "usage: telemetryd" in capsys.readouterr().out

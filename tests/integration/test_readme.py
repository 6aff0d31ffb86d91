"""The README is a page a newcomer reads in five minutes, and what it shows is true: its
config checks, its pictures and the reference it links to exist."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.daemon_proc import REPO, cli

README = REPO / "README.md"


def test_the_readme_is_short() -> None:
    """Under 300 lines: the reference lives in docs/."""
    assert len(README.read_text().splitlines()) < 300


def test_the_readme_config_is_a_valid_config(tmp_path: Path) -> None:
    """The ten-line config in the README passes check-config as it stands."""
    (block,) = re.findall(r"```toml\n(.*?)```", README.read_text(), re.DOTALL)
    assert len([line for line in block.splitlines() if line.strip()]) <= 10
    path = tmp_path / "telemetryd.toml"
    path.write_text(block)
    checked = cli("check-config", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'name = "claude-code"' in checked.stdout


def test_every_link_and_picture_of_the_readme_exists() -> None:
    """Each relative link (docs/*.md, the pictures) names a file in the repository."""
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README.read_text())
    assert len(targets) >= 10, targets
    for target in targets:
        assert (REPO / target).is_file(), target


def test_the_two_commands_are_the_ones_that_exist() -> None:
    """The run command installs this project and runs its console script; the test command
    is .ci/run."""
    text = README.read_text()
    assert ".venv/bin/pip install . && .venv/bin/telemetryd run" in text
    assert "bash .ci/run\n" in text and (REPO / ".ci" / "run").is_file()
    assert 'telemetryd = "daemon.cli.entry:main"' in (REPO / "pyproject.toml").read_text()

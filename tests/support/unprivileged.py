"""Run the daemon as another user from a world-readable copy, whatever the checkout's mode.

Home directories are 0700 on current distributions (and so is /root): a daemon started
as ``nobody`` from a checkout or a virtualenv inside one cannot even load its
interpreter. ``installed_copy`` copies what the daemon imports at run time (its own
packages and the distributions it requires, found through their install records) into
a world-readable directory and picks an interpreter every user can run.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from tests.support.daemon_proc import REPO

PACKAGES = ("daemon", "crash_reports")


@dataclass(frozen=True)
class InstalledCopy:
    """An interpreter and a PYTHONPATH that run the daemon without reading the checkout."""

    python: Path
    pythonpath: Path

    def command(self, *args: str) -> list[str]:
        """argv for ``python -m daemon ARGS`` from the copy (user site off)."""
        return [str(self.python), "-s", "-m", "daemon", *args]

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with PYTHONPATH pointing at the copy only."""
        env = {k: v for k, v in base.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PYTHONPATH"] = str(self.pythonpath)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env


def world_reachable(path: Path) -> bool:
    """Whether any user can reach ``path``: every directory above it has o+x, it has o+r/x."""
    path = path.resolve()
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    mode = path.stat().st_mode
    wanted = stat.S_IXOTH if path.is_dir() or os.access(path, os.X_OK) else stat.S_IROTH
    return bool(mode & wanted)


def shared_interpreter() -> Path | None:
    """A Python of this version (same extension ABI) that every user can run, outside REPO."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [Path(getattr(sys, "_base_executable", sys.executable)),
                  Path("/usr/bin") / version, Path("/usr/local/bin") / version]
    found = shutil.which(version)
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        try:
            real = candidate.resolve(strict=True)
        except OSError:
            continue
        if not real.is_relative_to(REPO) and world_reachable(real):
            return real
    return None


def _runtime_distributions(name: str = "telemetryd") -> list[metadata.Distribution]:
    """The distribution's run-time requirements, transitively (no extras)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        try:
            dist = metadata.distribution(current)
        except metadata.PackageNotFoundError:
            continue
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = dist
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    seen.pop("telemetryd", None)
    return list(seen.values())


def installed_copy(dest: Path) -> InstalledCopy:
    """Copy the daemon and its run-time dependencies under ``dest`` (made world-readable)."""
    python = shared_interpreter()
    if python is None:
        raise RuntimeError("no Python every user can run on this machine")
    site = dest / "site"
    site.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(REPO / package, site / package, ignore=ignore)
    for dist in _runtime_distributions():
        for file in dist.files or ():
            if file.parts and file.parts[0] == "..":
                continue  # scripts installed outside site-packages
            if "__pycache__" in file.parts:
                continue
            source = Path(str(dist.locate_file(file)))
            if not source.is_file():
                continue
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for root, _dirs, files in os.walk(dest):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    return InstalledCopy(python, site)

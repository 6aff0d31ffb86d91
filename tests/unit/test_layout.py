"""The house rules: every import points down a floor; small modules and small folders."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("daemon", "crash_reports")

# The floors, top first. A package may import only from packages on a lower floor.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("daemon.__main__",),
    ("daemon.cli",),
    ("daemon.wrap",),
    ("daemon.runtime",),
    ("daemon.web",),
    ("daemon.status",),
    ("daemon.guard",),
    ("daemon.agents",),
    ("daemon.watch",),
    ("daemon.config",),
    ("daemon.stats", "daemon.system"),
    ("daemon.exit_codes", "daemon"),
    ("crash_reports.delivery",),
    ("crash_reports.spool",),
    ("crash_reports.event",),
    ("crash_reports.common", "crash_reports"),
)
MAX_MODULE_LINES = 400
MAX_MODULES_PER_FOLDER = 15


def package_of(module: str) -> str:
    """The package a module belongs to: its first two name parts (``daemon.agents``)."""
    return ".".join(module.split(".")[:2])


def imports() -> Iterator[tuple[str, str, str]]:
    """(importing module, imported module, where) for every import of our own packages."""
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                for name in names:
                    if name.split(".")[0] in ROOTS:
                        yield module, name, f"{path.relative_to(REPO)}:{node.lineno}"


def floor_of(package: str) -> int:
    for floor, packages in enumerate(FLOORS):
        if package in packages:
            return floor
    raise AssertionError(f"{package} has no floor in tests/unit/test_layout.py")


def test_every_import_points_down_a_floor() -> None:
    """No package imports one on its own floor or above (so no package cycle either)."""
    upward = [f"{where}: {source} imports {target}"
              for source, target, where in imports()
              if package_of(source) != package_of(target)
              and floor_of(package_of(target)) <= floor_of(package_of(source))]
    assert upward == []


def test_crash_reports_never_imports_daemon() -> None:
    """``daemon`` may import ``crash_reports``, never the reverse."""
    assert [where for source, target, where in imports()
            if source.startswith("crash_reports") and target.startswith("daemon")] == []


def test_modules_and_folders_stay_small() -> None:
    """No module over 400 lines, no folder with more than 15 modules directly in it."""
    big = [f"{path.relative_to(REPO)}: {lines}" for root in ROOTS
           for path in (REPO / root).rglob("*.py")
           if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    crowded = [f"{folder.relative_to(REPO)}: {count}" for root in ROOTS
               for folder in [REPO / root, *(REPO / root).rglob("*/")]
               if folder.is_dir()
               and (count := len(list(folder.glob("*.py")))) > MAX_MODULES_PER_FOLDER]
    assert (big, crowded) == ([], [])

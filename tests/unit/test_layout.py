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


def folder_of(module: str) -> str:
    """The deepest folder (package directory) a module lives in: ``daemon.agents.store``."""
    parts = module.split(".")
    while parts and not (REPO / Path(*parts)).is_dir():
        parts.pop()
    return ".".join(parts)


def folder_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of folders that import each other, directly or round a loop (Tarjan).

    >>> folder_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    >>> folder_cycles({"a": {"b"}, "b": set()})
    []
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(set(edges) | {t for targets in edges.values() for t in targets}):
        if node not in index:
            visit(node)
    return found


def test_no_two_folders_import_each_other() -> None:
    """Inside a package too (``agents/store`` and ``agents/budget``): no folder cycle.

    A folder importing from the package it sits in (``daemon.agents.measures``) is the
    package's own shared module, not a cycle."""
    edges: dict[str, set[str]] = {}
    for source, target, _ in imports():
        a, b = folder_of(source), folder_of(target)
        if a != b and not a.startswith(b + "."):
            edges.setdefault(a, set()).add(b)
    assert folder_cycles(edges) == []

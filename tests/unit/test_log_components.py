"""Every log line says which part of telemetryd wrote it: one convention,
``structlog.get_logger(component="...")``, and the names documented in docs/architecture.md."""

from __future__ import annotations

import ast
import importlib
import io
import json
import logging
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import structlog
from structlog.testing import capture_logs

import crash_reports
import daemon
from daemon.system.logs import configure_logging

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (daemon, crash_reports)
# The one place stdlib logging is touched: routing libraries' records into structlog.
STDLIB_BRIDGE = REPO / "daemon" / "system" / "logs.py"


def sources() -> Iterator[Path]:
    """Every Python file of the two packages."""
    for package in PACKAGES:
        yield from sorted(Path(package.__path__[0]).rglob("*.py"))


def logger_calls(path: Path) -> Iterator[ast.Call]:
    """Calls of ``get_logger`` / ``getLogger`` in one file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("get_logger", "getLogger"):
                yield node


def declared_components() -> dict[str, str]:
    """component -> "file:line" of every logger the packages create."""
    found: dict[str, str] = {}
    for path in sources():
        for call in logger_calls(path):
            where = f"{path.relative_to(REPO)}:{call.lineno}"
            func = call.func
            is_stdlib = isinstance(func, ast.Attribute) and func.attr == "getLogger"
            if is_stdlib:
                assert path == STDLIB_BRIDGE, f"{where}: stdlib logging outside logs.py"
                continue
            keywords = [k.arg for k in call.keywords]
            assert not call.args and keywords == ["component"], (
                f"{where}: loggers are made with get_logger(component=...) only")
            value = call.keywords[0].value
            if path == STDLIB_BRIDGE and not isinstance(value, ast.Constant):
                continue  # the bridge names the library the record came from
            assert isinstance(value, ast.Constant) and isinstance(value.value, str), where
            assert value.value, where
            found.setdefault(value.value, where)
    return found


def test_every_logger_is_made_one_way_with_a_documented_component() -> None:
    """No logger named by module, by "telemetryd.x" or not at all; each component has a row
    in docs/architecture.md's logging table."""
    components = declared_components()
    assert len(components) >= 10, components
    documented = (REPO / "docs" / "architecture.md").read_text()
    missing = {c: where for c, where in components.items() if f"| `{c}` |" not in documented}
    assert not missing, f"components missing from docs/architecture.md: {missing}"


def modules() -> Iterator[ModuleType]:
    """Every module of the two packages (``__main__`` runs the CLI on import: left out)."""
    for package in PACKAGES:
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                yield importlib.import_module(info.name)


def test_each_module_logger_writes_its_component() -> None:
    """A line from every module-level logger carries a non-empty ``component`` field."""
    loggers = {m.__name__: m.log for m in modules()
               if callable(getattr(getattr(m, "log", None), "warning", None))}
    assert len(loggers) >= 20, sorted(loggers)
    with capture_logs() as logs:
        for logger in loggers.values():
            logger.warning("probe")
    assert len(logs) == len(loggers)
    without = [name for name, entry in zip(loggers, logs, strict=True)
               if not entry.get("component")]
    assert not without, without


@pytest.fixture
def json_logging() -> Iterator[io.StringIO]:
    """The daemon's real JSON pipeline into a buffer; the previous set-up restored after."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    try:
        yield stream
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


def test_json_lines_from_the_daemon_and_from_libraries_name_their_component(
    json_logging: io.StringIO,
) -> None:
    """Through the real pipeline: the tick's line says ``tick``, APScheduler's (routed from
    stdlib logging) says ``apscheduler``."""
    from daemon.runtime import tick

    tick.log.info("probe.tick", n=1)
    logging.getLogger("apscheduler.scheduler").error("probe from a library")
    lines = [json.loads(line) for line in json_logging.getvalue().splitlines()]
    by_event = {line["event"]: line for line in lines}
    assert by_event["probe.tick"]["component"] == "tick"
    library = by_event["apscheduler.log"]
    assert (library["component"], library["logger"]) == ("apscheduler", "apscheduler.scheduler")

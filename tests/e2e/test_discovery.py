"""With the embedded default's watches, the daemon finds every agent in every recorded layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from daemon.config.files.embedded import DEFAULT_CONFIG_TOML
from tests.support.daemon_proc import DaemonProcess, cli
from tests.support.layouts import Started, linux_shapes, start_layout
from tests.support.waiting import wait_for

VERSION_NAMED = {
    "agent": "claude-code", "layout": "native installer, started by its version path",
    "platform": "linux", "role": "main", "name": "2.1.197",
    "exe": "/home/user/.local/share/claude/versions/2.1.197",
    "cmdline": ["/home/user/.local/share/claude/versions/2.1.197"], "expect_match": True,
}


@pytest.fixture
def layouts(tmp_path: Path):
    """One real process per recorded Linux layout (each under its own stand-in root)."""
    started: list[Started] = []
    skipped: list[dict[str, Any]] = []
    try:
        for index, shape in enumerate([*linux_shapes(), VERSION_NAMED]):
            one = start_layout(shape, tmp_path / "roots" / str(index))
            if one is None:
                skipped.append(shape)
            else:
                started.append(one)
        yield started, skipped
    finally:
        for one in started:
            one.proc.kill()
            one.proc.wait(timeout=30)
        shutil.rmtree(tmp_path / "roots", ignore_errors=True)


def test_status_lists_each_agent_in_each_layout_by_pid(tmp_path: Path, layouts) -> None:
    """status --json lists every started layout's pid under its agent's watch, with versions."""
    started, skipped = layouts
    # Not emulated: a process title written at run time (npm exec), python -m, uv tool,
    # sh -c with a command string.
    assert len(started) >= 70 and len(skipped) <= 8, [s["layout"] for s in skipped]
    config = tmp_path / "telemetryd.toml"
    config.write_text(
        DEFAULT_CONFIG_TOML
        + f'\n[daemon]\ninterval = 0.5\nstate_dir = "{tmp_path / "state"}"\n'
          'log_format = "json"\n[otlp]\nlisten = "127.0.0.1:0"\n'
          '[metrics]\nlisten = "127.0.0.1:0"\n')
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    expected = {one.pid: one.shape["agent"] for one in started}

    def listed() -> dict[int, tuple[str, dict[str, Any]]] | None:
        result = cli("--config", str(config), "status", "--json")
        try:
            data = json.loads(result.stdout)
        except ValueError:
            return None
        if not isinstance(data, dict) or not data.get("watches"):
            return None  # the daemon has not published a tick yet
        found = {proc["pid"]: (watch["name"], proc) for watch in data["watches"]
                 for proc in watch["processes"]}
        missing[:] = [f"{expected[pid]}: {one.shape['layout']}" for one in started
                      if (pid := one.pid) not in found]
        return found if not missing else None

    missing: list[str] = []

    try:
        found = wait_for(listed, timeout=30, message="every layout's process in status")
    except AssertionError:
        raise AssertionError(f"not in status: {missing}") from None
    finally:
        assert daemon.stop() == 0
    wrong = {pid: (expected[pid], found[pid][0]) for pid in expected
             if found[pid][0] != expected[pid]}
    assert wrong == {}
    version_named = next(one for one in started if one.shape is VERSION_NAMED)
    watch, row = found[version_named.pid]
    assert (watch, row["name"], row["version"]) == ("claude-code", "2.1.197", "2.1.197")

"""Status: snapshot files read and written, and the monitoring-plugin exit codes from them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from daemon.exit_codes import ExitCode
from daemon.status.snapshot import (
    FlushStatus,
    OtlpStatus,
    StatusSnapshot,
    StatusUnreadableError,
)
from daemon.status.status_file import (
    evaluate,
    pid_alive,
    read_snapshot,
    render_table,
    write_snapshot,
)
from tests.support import snapshots as build

NOW = 10_000.0


def snapshot(*states: str, interval: float = 1.0, last_tick: float | None = NOW - 0.5,
             stopped: bool = False) -> StatusSnapshot:
    """A snapshot with one watch holding processes in the given states."""
    trees = [build.process(100 + i, state=state) for i, state in enumerate(states)]
    if last_tick is None:
        return replace(build.starting(NOW), interval=interval, stopped=stopped)
    return build.snapshot([build.watch("claude-code", *trees), build.watch("codex")],
                          now=NOW, last_tick_at=last_tick, interval=interval, stopped=stopped)


@pytest.mark.parametrize(
    ("states", "code"),
    [
        ((), ExitCode.OK),
        (("ok", "ok"), ExitCode.OK),
        (("ok", "warning"), ExitCode.WARNING),
        (("warning", "critical", "ok"), ExitCode.CRITICAL),
        (("critical",), ExitCode.CRITICAL),
    ],
)
def test_exit_code_is_the_worst_state(states: tuple[str, ...], code: int) -> None:
    """0 all ok, 1 some warning, 2 some critical."""
    verdict = evaluate(snapshot(*states), lock_held=True, alive=True, now=NOW)
    assert verdict.exit_code == code and verdict.running


@pytest.mark.parametrize(
    ("snap", "lock_held", "alive"),
    [
        pytest.param(snapshot("critical"), False, True, id="lock-free"),
        pytest.param(snapshot("critical"), True, False, id="pid-dead"),
        pytest.param(snapshot("critical", stopped=True), True, True, id="stopped-cleanly"),
    ],
)
def test_not_running_is_unknown(snap: dict[str, Any], lock_held: bool, alive: bool) -> None:
    """A daemon that is gone is exit 3, whatever its last snapshot said."""
    verdict = evaluate(snap, lock_held=lock_held, alive=alive, now=NOW)
    assert verdict.exit_code == ExitCode.UNKNOWN and not verdict.running


def test_no_tick_yet_is_unknown() -> None:
    """A daemon that has not ticked yet is exit 3, running."""
    verdict = evaluate(snapshot(last_tick=None), lock_held=True, alive=True, now=NOW)
    assert verdict.exit_code == ExitCode.UNKNOWN and verdict.running
    assert "starting" in verdict.summary


@pytest.mark.parametrize(
    ("interval", "age", "stale"),
    [(1.0, 11.0, False), (1.0, 11.5, True), (10.0, 30.0, False), (10.0, 30.5, True)],
)
def test_stale_tick_is_unknown(interval: float, age: float, stale: bool) -> None:
    """A last tick older than max(3 intervals, interval + 10 s) means the daemon is stuck."""
    verdict = evaluate(snapshot("critical", interval=interval, last_tick=NOW - age),
                       lock_held=True, alive=True, now=NOW)
    assert (verdict.exit_code == ExitCode.UNKNOWN) == stale
    if stale:
        assert "stuck" in verdict.summary


def test_unknown_process_state_does_not_raise_the_code() -> None:
    """A state the CLI does not know (e.g. from a newer daemon) counts as ok."""
    assert evaluate(snapshot("access_denied"), True, True, NOW).exit_code == ExitCode.OK


def test_snapshot_round_trip_is_private(tmp_path: Path) -> None:
    """A written snapshot reads back equal, owner-only, with no temp files left."""
    path = tmp_path / "status.json"
    data = build.snapshot([build.watch("w", build.process(1, state="warning"),
                                       build.zombie(2))],
                          flush=FlushStatus(enabled=True, delivered_total=3),
                          otlp=OtlpStatus(up=True, listen="127.0.0.1:4318"))
    write_snapshot(path, data)
    assert read_snapshot(path) == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(None, "no status file", id="missing"),
        pytest.param(b'{"version": 1, "pid"', "not a status snapshot", id="half-written"),
        pytest.param(b"\x00\xff", "not a status snapshot", id="binary"),
        pytest.param(b"[1, 2]", "not a status snapshot", id="not-an-object"),
        pytest.param(json.dumps({"version": 999}).encode(), "this version", id="future-version"),
    ],
)
def test_unreadable_snapshots(tmp_path: Path, content: bytes | None, reason: str) -> None:
    """Missing, corrupt or foreign status files raise StatusUnreadableError with a reason."""
    path = tmp_path / "status.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StatusUnreadableError, match=reason):
        read_snapshot(path)


def test_status_path_is_a_directory(tmp_path: Path) -> None:
    """A directory where the status file should be is unreadable, not a crash."""
    with pytest.raises(StatusUnreadableError, match="cannot read"):
        read_snapshot(tmp_path)


def test_pid_alive() -> None:
    """This process is alive; a reaped child is not."""
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)


def test_render_table_shows_each_watch() -> None:
    """The human view has a header, a row per process and 'no match' for empty watches."""
    tree = build.process(100, state="warning", rate=10 * 1024**2, eta=90)
    snap = build.snapshot([build.watch("claude-code", tree), build.watch("codex")], now=NOW)
    verdict = evaluate(snap, True, True, NOW)
    text = render_table(snap, verdict, NOW)
    lines = text.splitlines()
    assert lines[0].startswith("telemetryd 0.1.0: running (pid 4242)")
    assert "some watched process at warning" in lines[0]
    assert "  uptime      1h00m" in lines
    row = next(line for line in lines if line.startswith("claude-code"))
    assert row.split()[:6] == ["claude-code", "100", "agent", "1.0", "GiB", "12"]
    assert "warning" in row and "10.0 MiB" in row and "1m30s" in row
    assert any(line.startswith("codex") and line.endswith("no match") for line in lines)

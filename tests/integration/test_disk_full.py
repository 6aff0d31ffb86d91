"""A full disk: the daemon keeps sampling, says ``degraded: disk full`` (exit 1), writes held
reports as soon as there is room, and names the ones it loses on stop."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from daemon.config.parse import parse_config_text
from daemon.runtime.service import Service
from daemon.status.snapshot import StatusSnapshot, TickInfo
from daemon.status.status_file import evaluate
from tests.support.daemon_proc import cli
from tests.support.waiting import wait_for


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "16m") -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                              str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> None:
    """Write files until the filesystem refuses (ENOSPC), big blocks then small ones."""
    for index, block in enumerate((65536, 512)):
        fd = os.open(directory / f"filler{index}", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * block)
        finally:
            os.close(fd)


def unfill(directory: Path) -> None:
    for index in range(2):
        (directory / f"filler{index}").unlink()


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(1)"])


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_disk_full_degrades_holds_writes_later_and_names_lost_reports(tmp_path):
    """ENOSPC on a real tmpfs: status exit 1 'degraded: disk full'; the held report lands
    when room returns; one still held at stop is logged with its id and title."""
    children = [sleeper(), sleeper()]
    with small_tmpfs(tmp_path / "mnt") as mnt:
        state = mnt / "state"
        config_text = (
            f'[daemon]\ninterval = 0.2\nstate_dir = "{state}"\n'
            f'[metrics]\nenabled = false\n[otlp]\nenabled = false\n'
            + "".join(
                f'[[watch]]\nname = "{name}"\npidfile = "{tmp_path / name}.pid"\n'
                'rss_warning = "512KB"\nrss_critical = "1MB"\nsustained = 1\n'
                for name in ("first", "second"))
        )
        config_path = tmp_path / "t.toml"
        config_path.write_text(config_text)
        config = parse_config_text(config_text, str(config_path), {},
                                   psutil.virtual_memory().total)
        service = Service(config)
        service.startup()
        try:
            wait_for(lambda: service.tick_count >= 2, message="first ticks")
            running = service.running
            assert running is not None
            fill(mnt)
            (tmp_path / "first.pid").write_text(f"{children[0].pid}\n")
            wait_for(lambda: running.transport.held_count >= 1, message="a held report")
            ticks = service.tick_count
            wait_for(lambda: service.tick_count >= ticks + 3, message="sampling goes on")
            snap = service.last_snapshot
            assert snap is not None and snap.degraded == "disk full"
            shown = cli("--config", str(config_path), "status")
            assert shown.returncode == 1, shown.stdout + shown.stderr
            assert "degraded: disk full" in shown.stdout

            unfill(mnt)
            wait_for(lambda: running.transport.held_count == 0 and
                     running.spool.pending_count() >= 1, message="held report written")
            fill(mnt)
            (tmp_path / "second.pid").write_text(f"{children[1].pid}\n")
            wait_for(lambda: running.transport.held_count >= 1, message="a second held report")
        finally:
            with capture_logs() as logs:
                service.shutdown()
            for child in children:
                child.kill()
                child.wait()
    lost = [e for e in logs if e["event"] == "report.lost"]
    assert lost, logs
    assert all(len(e["id"]) == 32 and "second" in e["title"] for e in lost), lost


def test_stale_status_on_a_full_disk_is_degraded_not_stuck():
    """A snapshot too old to be fresh, on a full disk: exit 1 'degraded', not 3 'stuck'."""
    snap = StatusSnapshot(pid=1, telemetryd_version="0", started_at=0.0, config_source="",
                          state_dir="", interval=1.0, last_tick=TickInfo(0.0, 0.0, 0, 1))
    assert evaluate(snap, True, True, now=100.0).exit_code == 3
    verdict = evaluate(snap, True, True, now=100.0, disk_full=True)
    assert (verdict.exit_code, verdict.summary.startswith("degraded: disk full")) == (1, True)

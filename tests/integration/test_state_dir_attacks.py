"""A state dir someone else can write into is refused; planted symlinks and FIFOs are never
followed, written through or waited on."""

from __future__ import annotations

import os
import pwd
import stat
import threading
from pathlib import Path

import pytest

from crash_reports.common.atomic import write_atomic
from crash_reports.common.files import UnsafeFileError, read_regular
from crash_reports.spool.store import Spool
from daemon.runtime.lock import InstanceLock, is_locked, read_lock_pid
from daemon.status.snapshot import StatusUnreadableError
from daemon.status.status_file import read_snapshot
from tests.support.daemon_proc import cli

ENVELOPE = (b'{"event_id":"' + b"a" * 32 + b'"}\n{"type":"event","length":17}\n'
            b'{"message":"hi"}\n')
NAME = f"{1:020d}-{'b' * 32}.env"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="plants files as another user")


def nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


def hostile_dir(tmp_path: Path) -> Path:
    """A 0777 directory owned by another user, as an attacker would prepare it."""
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o777)
    os.chown(state, nobody().pw_uid, nobody().pw_gid)
    return state


def run_once(state: Path, tmp_path: Path) -> tuple[int, str]:
    config = tmp_path / "t.toml"
    config.write_text(f'[daemon]\ninterval = 0.2\nstate_dir = "{state}"\n'
                      '[[watch]]\nname = "init"\npid = 1\n')
    done = cli("--config", str(config), "run", timeout=60)
    return done.returncode, done.stderr + done.stdout


@as_root
def test_run_refuses_state_dir_owned_by_another_user_with_planted_symlinks(tmp_path):
    """Lock, spool and temp-file symlinks planted in another user's 0777 dir: exit 73, no
    target touched."""
    state = hostile_dir(tmp_path)
    victim_file = tmp_path / "victim.txt"
    victim_file.write_text("precious\n")
    victim_dir = tmp_path / "victim_dir"
    victim_dir.mkdir(mode=0o755)
    os.chmod(victim_dir, 0o755)
    (state / "telemetryd.lock").symlink_to(victim_file)
    (state / "spool").symlink_to(victim_dir)
    (state / f".status.json.{os.getpid()}.tmp").symlink_to(victim_file)
    code, output = run_once(state, tmp_path)
    assert code == 73, output
    assert "owned by uid" in output
    assert victim_file.read_text() == "precious\n"
    assert stat.S_IMODE(victim_dir.stat().st_mode) == 0o755


def test_run_refuses_world_writable_state_dir(tmp_path):
    """A state dir of ours that others can write into is refused with exit 73."""
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o777)
    code, output = run_once(state, tmp_path)
    assert code == 73, output
    assert "writable by group or others" in output


def test_lock_symlink_is_refused_not_truncated(tmp_path):
    """A lock file that is a symlink is refused; its target keeps its content."""
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "telemetryd.lock").symlink_to(victim)
    with pytest.raises(UnsafeFileError):
        InstanceLock(tmp_path / "telemetryd.lock").acquire()
    assert victim.read_text() == "keep"


def test_fifo_lock_and_status_never_block_status_command(tmp_path):
    """FIFOs named like the lock and status.json make ``status`` readers fail fast."""
    os.mkfifo(tmp_path / "telemetryd.lock")
    os.mkfifo(tmp_path / "status.json")
    result: list[object] = []

    def readers() -> None:
        result.append(is_locked(tmp_path / "telemetryd.lock"))
        result.append(read_lock_pid(tmp_path / "telemetryd.lock"))
        try:
            read_snapshot(tmp_path / "status.json")
        except StatusUnreadableError as exc:
            result.append(str(exc))

    thread = threading.Thread(target=readers, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "a reader blocked on a FIFO"
    assert result[:2] == [False, None]
    assert "not a regular file" in str(result[2])


def test_atomic_write_never_writes_through_a_planted_temp_symlink(tmp_path):
    """Symlinks planted under every temp name this process might use are not followed."""
    victim = tmp_path / "victim"
    victim.write_text("keep")
    for i in range(20):
        (tmp_path / f".status.json.{os.getpid()}.tmp{i}").symlink_to(victim)
    (tmp_path / f".status.json.{os.getpid()}.tmp").symlink_to(victim)
    write_atomic(tmp_path / "status.json", b"{}", durable=False)
    assert victim.read_text() == "keep"
    assert (tmp_path / "status.json").read_bytes() == b"{}"
    assert not (tmp_path / "status.json").is_symlink()


def test_read_regular_bounds_devices_and_size(tmp_path):
    """/dev/zero is refused, not read until memory runs out; a large file is refused."""
    with pytest.raises(UnsafeFileError):
        read_regular("/dev/zero", 1024)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(OSError, match="larger than"):
        read_regular(big, 1024)


def test_spool_refuses_symlinked_subfolder(tmp_path):
    """A ``pending`` symlink in the spool is refused; its target's mode is unchanged."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.chmod(target, 0o755)
    (tmp_path / "spool").mkdir(mode=0o700)
    (tmp_path / "spool" / "pending").symlink_to(target)
    with pytest.raises(UnsafeFileError):
        Spool(tmp_path / "spool")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_directory_and_fifo_named_like_envelopes_are_quarantined(tmp_path):
    """A directory or FIFO named like a pending report neither stops the listing nor
    hangs it; both are moved to ``corrupt`` and the real report is still listed."""
    spool = Spool(tmp_path / "spool")
    real = spool.put(ENVELOPE)
    (spool.pending_dir / NAME).mkdir()
    os.mkfifo(spool.pending_dir / f"{2:020d}-{'c' * 32}.env")
    result: list[list[str]] = []
    thread = threading.Thread(target=lambda: result.append([e.id for e in spool.pending()]),
                              daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "listing the spool blocked on a FIFO"
    assert result == [[real]]
    corrupt = os.listdir(spool.corrupt_dir)
    assert len(corrupt) == 2
    assert spool.read(real) == ENVELOPE


def test_reports_list_survives_directory_named_like_envelope(tmp_path):
    """``reports list`` does not crash on a directory planted among pending reports."""
    spool = Spool(tmp_path / "spool")
    spool.put(ENVELOPE)
    (spool.pending_dir / NAME).mkdir()
    config = tmp_path / "t.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\n[[watch]]\nname = "i"\npid = 1\n')
    done = cli("--config", str(config), "reports", "list", "--json", "--all")
    assert done.returncode == 0, done.stderr
    assert "a" * 32 in done.stdout


def test_pidfile_fifo_or_device_never_stalls_a_tick(tmp_path):
    """A watch whose pidfile is a FIFO, or /dev/zero, matches nothing and ticks go on."""
    from daemon.runtime.service import Service
    from tests.support.waiting import wait_for

    fifo = tmp_path / "agent.pid"
    os.mkfifo(fifo)
    config_text = (f'[daemon]\ninterval = 0.2\nstate_dir = "{tmp_path / "state"}"\n'
                   '[metrics]\nenabled = false\n[otlp]\nenabled = false\n'
                   f'[[watch]]\nname = "fifo"\npidfile = "{fifo}"\n'
                   '[[watch]]\nname = "zero"\npidfile = "/dev/zero"\n')
    import psutil

    from daemon.config.parse import parse_config_text

    service = Service(parse_config_text(config_text, "<t>", {},
                                        psutil.virtual_memory().total))
    service.startup()
    try:
        wait_for(lambda: service.tick_count >= 3, timeout=30, message="ticks go on")
    finally:
        service.shutdown()

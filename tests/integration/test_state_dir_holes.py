"""Special files planted in the state dir (FIFOs where a file or a database is expected) are
refused cleanly: the tick goes on, the daemon starts, nothing hangs and nothing prints a
traceback."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from crash_reports.common import sqlite as storage
from daemon.config.parse import parse_config_text
from daemon.runtime.paths import StatePaths
from daemon.runtime.service import Service
from tests.support.daemon_proc import DaemonProcess, cli
from tests.support.waiting import wait_for


def release(fifo: Path) -> None:
    """Open a FIFO's write end (without blocking) so a reader stuck opening it goes on."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def quiet_config(state: Path, *, otlp: bool = False) -> str:
    otlp_table = '[otlp]\nlisten = "127.0.0.1:0"\n' if otlp else "[otlp]\nenabled = false\n"
    return (f'[daemon]\ninterval = 0.2\nstate_dir = "{state}"\n'
            f'[metrics]\nenabled = false\n{otlp_table}'
            '[[watch]]\nname = "init"\npid = 1\n')


def test_fifo_in_wrapped_never_stops_the_tick_and_is_refused_once(tmp_path: Path) -> None:
    """``wrapped/x.json`` as a FIFO: ticks go on, one ``wrapped.refused`` line, the FIFO is
    moved aside (a dot name the folder's reader skips)."""
    state = tmp_path / "state"
    wrapped = StatePaths(state).wrapped
    wrapped.mkdir(parents=True, mode=0o700)
    os.chmod(state, 0o700)
    fifo = wrapped / "x.json"
    os.mkfifo(fifo)
    config = parse_config_text(quiet_config(state), "<t>", {}, psutil.virtual_memory().total)
    service = Service(config)
    with capture_logs() as logs:
        service.startup()
        try:
            wait_for(lambda: service.tick_count >= 5, timeout=20, message="ticks go on")
        finally:
            release(fifo)  # the old code sits in open(); let it go so shutdown can finish
            service.shutdown()
    refused = [e for e in logs if e["event"] == "wrapped.refused"]
    assert len(refused) == 1, refused
    assert refused[0]["file"] == "x.json" and "FIFO" in refused[0]["reason"]
    assert not fifo.exists()
    aside = [name for name in os.listdir(wrapped) if name.startswith(".")]
    assert len(aside) == 1 and stat.S_ISFIFO(os.lstat(wrapped / aside[0]).st_mode)


def test_fifo_named_events_db_at_start_is_moved_aside_without_a_traceback(tmp_path: Path
                                                                          ) -> None:
    """``events.db`` a FIFO when the daemon starts: moved aside like a corrupt store (one
    ``agents.store_corrupt`` line naming it), a fresh store opened, ticks go on."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    fifo = StatePaths(state).events_db
    os.mkfifo(fifo)
    config = tmp_path / "t.toml"
    config.write_text(quiet_config(state, otlp=True))
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        moved = daemon.wait_event("agents.store_corrupt", timeout=30)
        daemon.wait_event("agents.receiver.started", timeout=30)
        wait_for(lambda: (state / "status.json").exists(), timeout=30, message="a tick")
    finally:
        code = daemon.stop()
    log_text = (tmp_path / "daemon.log").read_text()
    assert code == 0, log_text[-2000:]
    assert "Traceback" not in log_text
    assert moved["path"] == str(fifo)
    assert stat.S_ISFIFO(os.lstat(moved["moved_to"]).st_mode)
    assert stat.S_ISREG(os.lstat(fifo).st_mode)  # the fresh store


def test_budget_check_over_a_fifo_events_db_fails_open_with_a_clear_line(tmp_path: Path
                                                                         ) -> None:
    """The hook over a FIFO named ``events.db``: exit 1 at once, one line naming the file."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    fifo = StatePaths(state).events_db
    os.mkfifo(fifo)
    config = tmp_path / "t.toml"
    config.write_text(f'[daemon]\nstate_dir = "{state}"\n'
                      '[[budget]]\nagent = "*"\nsession_usd = 1\n')
    started = time.monotonic()
    try:
        done = cli("--config", str(config), "budget", "check", "--session", "s", timeout=30)
    finally:
        release(fifo)
    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert str(fifo) in done.stderr and "not a regular file" in done.stderr


def test_planted_database_names_are_refused_then_moved_aside_not_followed(tmp_path: Path
                                                                         ) -> None:
    """A dangling symlink as the database and a FIFO as its WAL: ``connect`` refuses both
    (as a ``sqlite3.DatabaseError``), ``move_aside`` renames them without following."""
    path = tmp_path / "events.db"
    path.symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "events.db-wal")
    with pytest.raises(sqlite3.DatabaseError, match="a symlink"):
        storage.connect(path, busy_timeout_seconds=0.1)
    aside = storage.move_aside(path)
    assert os.path.islink(aside) and stat.S_ISFIFO(os.lstat(f"{aside}-wal").st_mode)
    assert not (tmp_path / "nowhere").exists()
    fresh = storage.connect(path, busy_timeout_seconds=0.1)
    fresh.execute("CREATE TABLE t (x)")
    fresh.close()
    assert stat.S_ISREG(os.lstat(path).st_mode)


def test_fifos_under_every_state_file_name_never_hang_the_daemon(tmp_path: Path) -> None:
    """A FIFO under the name of every file the daemon reads or writes in its state dir
    (the lock aside: a FIFO there refuses the start, tested elsewhere): the daemon starts,
    ticks, serves OTLP and stops on SIGTERM, with no traceback."""
    state = tmp_path / "state"
    paths = StatePaths(state)
    for folder in (state, paths.wrapped, paths.spool / "pending", paths.spool / "delivered"):
        folder.mkdir(parents=True, mode=0o700)
    planted = [paths.status, paths.stats_db, Path(f"{paths.stats_db}-wal"), paths.events_db,
               paths.events_series, paths.budgets, paths.wrapped / "x.json",
               paths.spool / "flush.lock", paths.spool / "rate_limits.json",
               paths.spool / "pending" / f"{1:020d}-{'a' * 32}.env",
               paths.spool / "pending" / f"{1:020d}-{'a' * 32}.meta.json",
               paths.spool / "delivered" / f"{1:020d}-{'b' * 32}.json"]
    for path in planted:
        os.mkfifo(path)
    config = tmp_path / "t.toml"
    config.write_text(quiet_config(state, otlp=True).replace(
        "[[watch]]", '[sentry]\ndsn = "http://k@127.0.0.1:9/1"\n[[watch]]'))
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        daemon.wait_event("agents.receiver.started", timeout=30)
        wait_for(lambda: stat.S_ISREG(os.lstat(paths.status).st_mode), timeout=30,
                 message="a status written over the FIFO")
        daemon.wait_event("spool.corrupt", timeout=30)  # the flusher listed the spool
        stopped_at = time.monotonic()
        code = daemon.stop(timeout=30)
        stopping = time.monotonic() - stopped_at
    finally:
        for path in planted:
            release(path)
        daemon.kill()
    log_text = (tmp_path / "daemon.log").read_text()
    assert code == 0, log_text[-3000:]
    assert "Traceback" not in log_text, log_text[-3000:]
    assert stopping < 10, stopping
    events = {e["event"] for e in daemon.events()}
    assert {"stats.corrupt", "agents.store_corrupt", "flush.lock_refused", "wrapped.refused",
            "spool.corrupt"} <= events, events
    assert "stats.unavailable" not in events  # moved aside, not run from memory
    for database in (paths.stats_db, paths.events_db):
        assert stat.S_ISREG(os.lstat(database).st_mode)


def test_wrapped_folder_that_is_a_fifo_is_refused_once(tmp_path: Path) -> None:
    """``wrapped`` itself a FIFO: no child is read, it is renamed aside with one line, and
    the next read finds no folder (nothing logged)."""
    from daemon.watch.proc.announcements import read_announced

    folder = tmp_path / "wrapped"
    os.mkfifo(folder)
    with capture_logs() as logs:
        assert read_announced(folder) == [] and read_announced(folder) == []
    assert [e["event"] for e in logs] == ["wrapped.refused"]
    assert not os.path.lexists(folder)

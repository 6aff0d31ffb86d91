"""`telemetryd reports` and `stats` run as a user would, including with damaged files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from crash_reports.spool.store import Spool
from daemon.runtime.paths import StatePaths
from tests.e2e.test_watchdog import memory_watch, write_config
from tests.support.agents import Agent
from tests.support.daemon_proc import DaemonProcess, cli
from tests.support.fault_server import make_envelope


def config_for(tmp_path: Path) -> tuple[Path, Path]:
    """A config whose state dir is under tmp_path; returns (config, state dir)."""
    state = tmp_path / "state"
    config = tmp_path / "telemetryd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{state}"\n')
    return config, state


def test_reports_list_show_requeue_purge_from_the_command_line(tmp_path: Path) -> None:
    """Listing stays valid JSON with a corrupt file present; show, requeue, purge work by id."""
    config, state = config_for(tmp_path)
    spool = Spool(StatePaths(state).spool)
    kept = spool.put(make_envelope(title="agent pid 1: RSS 3.0 GiB crossed critical 2.0 GiB"))
    refused = spool.put(make_envelope())
    spool.quarantine(refused, 400, "HTTP 400: bad envelope")
    (StatePaths(state).spool / "pending" / "00000000000000000001-abcd.env").write_bytes(b"\x00junk")

    listing = cli("--config", str(config), "reports", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    entries = {e["id"]: e for e in json.loads(listing.stdout)}  # stdout is pure JSON
    assert set(entries) == {kept, refused}
    assert entries[refused]["state"] == "quarantined" and entries[refused]["http_status"] == 400
    assert "spool.corrupt" in listing.stderr  # the damaged file was moved aside, and said so

    human = cli("--config", str(config), "reports", "list").stdout
    assert "HTTP 400: bad envelope" in human and "HTTP 400: HTTP 400" not in human

    shown = cli("--config", str(config), "reports", "show", kept[:8])
    assert shown.returncode == 0 and "crossed critical" in shown.stdout
    missing = cli("--config", str(config), "reports", "show", "ffffffff")
    assert missing.returncode != 0 and "no report" in missing.stderr

    requeued = cli("--config", str(config), "reports", "requeue")
    assert requeued.returncode == 0 and "requeued 1" in requeued.stdout
    assert {e.id for e in Spool(StatePaths(state).spool).pending()} == {kept, refused}

    purged = cli("--config", str(config), "reports", "purge", "--all")
    assert purged.returncode == 0
    assert json.loads(cli("--config", str(config), "reports", "list", "--json").stdout) == []


def test_reports_list_before_the_daemon_ever_ran(tmp_path: Path) -> None:
    """No state dir yet: an empty list, and the dir is not created by a read-only command."""
    config, state = config_for(tmp_path)
    result = cli("--config", str(config), "reports", "list", "--json")
    assert result.returncode == 0 and json.loads(result.stdout) == []
    assert not state.exists()


def test_corrupt_event_store_is_moved_aside_and_the_daemon_runs(tmp_path: Path) -> None:
    """A garbage events.db: `stats` explains, the daemon keeps it aside and starts fresh."""
    with Agent() as agent:
        config = write_config(tmp_path, memory_watch(agent, 100, 200))
        state = tmp_path / "state"
        state.mkdir(mode=0o700)
        StatePaths(state).events_db.write_bytes(b"this is not a database" * 100)
        stats = cli("--config", str(config), "stats", "--json")
        assert stats.returncode == 0, stats.stderr
        assert "unreadable" in json.loads(stats.stdout)["agents"]["note"]
        daemon = DaemonProcess(config, tmp_path / "log.jsonl")
        try:
            corrupt = daemon.wait_event("agents.store_corrupt")
            daemon.wait_event("daemon.ready")
        finally:
            assert daemon.stop() == 0
    aside = Path(corrupt["moved_to"])
    assert aside.read_bytes().startswith(b"this is not a database")  # kept, byte for byte
    sqlite3.connect(StatePaths(state).events_db).execute("PRAGMA integrity_check").fetchone()

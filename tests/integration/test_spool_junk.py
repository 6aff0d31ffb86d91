"""Junk in ``spool/pending`` (files that are not reports) costs one cheap pass: names that
cannot be reports are set aside without being opened, all of them in one batch, once."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from crash_reports.spool.store import Spool
from daemon.runtime.paths import StatePaths
from tests.support.daemon_proc import cli
from tests.support.fault_server import make_envelope

JUNK_NAMES = 18_000
JUNK_ENVELOPES = 2_000  # well named, not envelopes: these must be opened to be told apart
# A generous bound on a loaded 2-core machine; the old code took 23-25 s (one fsync pair
# and one listing of corrupt/ per junk file), minutes on a busy disk.
LISTING_SECONDS = 20.0


def plant_junk(pending: Path) -> None:
    for index in range(JUNK_NAMES):
        (pending / f"junk-{index}.txt").write_bytes(b"x")
    for index in range(JUNK_ENVELOPES):
        (pending / f"{index + 1:020d}-{index:032x}.env").write_bytes(b"\x00not an envelope")


def corrupt_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "spool.corrupt" in line]


def test_reports_list_over_20000_junk_files_is_quick_and_sets_junk_aside_once(
        tmp_path: Path) -> None:
    """``reports list`` with 20,000 junk files beside 3 reports: within the bound, the 3
    listed, a few log lines (not one per file), pending left with only the reports and
    corrupt/ bounded; the next listing finds nothing to set aside."""
    state = tmp_path / "state"
    config = tmp_path / "telemetryd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{state}"\n')
    spool = Spool(StatePaths(state).spool)
    real = {spool.put(make_envelope()) for _ in range(3)}
    plant_junk(spool.pending_dir)

    started = time.monotonic()
    try:
        first = cli("--config", str(config), "reports", "list", "--json",
                    timeout=LISTING_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reports list took more than {LISTING_SECONDS} s over the junk")
    seconds = time.monotonic() - started
    assert first.returncode == 0, first.stderr[-2000:]
    assert {entry["id"] for entry in json.loads(first.stdout)} == real
    assert 1 <= len(corrupt_lines(first.stderr)) <= 4, (seconds, first.stderr[-2000:])
    left = os.listdir(spool.pending_dir)
    assert len(left) == 3 and all(name.endswith(".env") for name in left)
    assert len(os.listdir(spool.corrupt_dir)) <= 100

    second = cli("--config", str(config), "reports", "list", "--json")
    assert second.returncode == 0 and corrupt_lines(second.stderr) == []
    assert {entry["id"] for entry in json.loads(second.stdout)} == real


def test_counting_reports_for_the_status_sets_junk_names_aside_once(tmp_path: Path) -> None:
    """The counts the daemon publishes each tick read names only; junk names met there are
    set aside in one batch (one log line), so later ticks list only reports."""
    spool = Spool(tmp_path / "spool")
    real = spool.put(make_envelope())
    for index in range(500):
        (spool.pending_dir / f"junk-{index}").write_bytes(b"x")
    with capture_logs() as logs:
        assert spool.pending_count() == 1
        assert spool.oldest_pending_at() is not None
        assert spool.pending_count() == 1
    assert [e["files"] for e in logs if e["event"] == "spool.corrupt"] == [500]
    entry = spool.get(real)
    assert entry is not None and os.listdir(spool.pending_dir) == [entry.name]

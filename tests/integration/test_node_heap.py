"""A critical report on a wrapped Node tree points at a private heap snapshot, never its content."""

from __future__ import annotations

import contextlib
import json
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil

from crash_reports.event.system_facts import SystemFacts
from daemon.config.files.load import load_config
from daemon.runtime.tick import Ticker
from daemon.watch.proc.proctable import default_process_table
from tests.e2e.test_watchdog import pending_envelopes
from tests.integration.test_node_heap_safety import CONFIG
from tests.support.daemon_proc import REPO, clean_env
from tests.support.waiting import wait_for
from tests.unit.test_tick import started

# 60 buffers of 4 MiB (filled, so resident), then idle: RSS ends near 280 MiB.
GROW = ("const hoard = [];"
        "setInterval(() => { if (hoard.length < 60) hoard.push(Buffer.alloc(4 << 20, 1)); }, 20);")


def test_critical_report_names_a_private_heap_snapshot(tmp_path: Path) -> None:
    """wrap + evidence_node_heap: the report carries a 0600 snapshot's path and size only."""
    node = shutil.which("node")
    assert node, "node is not installed: .ci/run installs it (apt-get install nodejs)"
    state = tmp_path / "state"
    config_path = tmp_path / "telemetryd.toml"
    config_path.write_text(CONFIG.format(state=state))
    config = load_config(config_path, {}, psutil.virtual_memory().total)
    running = started(config)
    ticker = Ticker(config, default_process_table(), SystemFacts(), time.monotonic)
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config_path),
                             "wrap", "--watch", "heapy", "--", node, "-e", GROW],
                            env=clean_env(), cwd=REPO, stdin=subprocess.DEVNULL)
    try:
        def reported() -> bool:
            ticker.tick(running, time.time())
            return ticker.reports_written > 0
        wait_for(reported, timeout=120, message="critical report on the wrapped node")
    finally:
        running.close(time.time())
        ticker.close()
        for child in psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None \
                else []:
            with contextlib.suppress(psutil.Error):
                child.kill()
        proc.wait(timeout=60)
    # The killed report wrap writes after the cleanup above is not the one under test.
    [event] = [e for e in (envelope.get_event() for envelope in pending_envelopes(state))
               if e is not None and e["tags"]["kind"] == "rss_critical"]
    leak = event["contexts"]["crossing"]["leak"]
    [member] = [m for m in leak["members"] if "heap_snapshot" in m]
    assert member["name"] == "node", leak
    snapshot = Path(member["heap_snapshot"]["path"])
    assert snapshot.parent == state / "heap-snapshots" and snapshot.suffix == ".heapsnapshot"
    info = snapshot.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(snapshot.parent.stat().st_mode) == 0o700
    assert info.st_size > 0 and member["heap_snapshot"]["size_bytes"] == info.st_size
    assert set(member["heap_snapshot"]) == {"path", "size_bytes"}
    # Nothing of the snapshot's content is in the report.
    head = snapshot.read_bytes()[:64]
    raw = b"".join(p.read_bytes() for p in (state / "spool" / "pending").glob("*.env"))
    assert head.startswith(b'{"snapshot"') and head not in raw
    assert b"hrtime_buffer" not in raw and b"node_fields" not in raw
    assert not any(n["what"] == "node_heap" for n in leak["not_collected"])
    json.dumps(event)  # the report stays plain JSON

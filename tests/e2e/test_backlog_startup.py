"""A backlog of pending reports and a slow Sentry never delay the first sample."""

from __future__ import annotations

import json
from pathlib import Path

from crash_reports.spool.store import Spool, SpoolLimits
from tests.e2e.test_watchdog import write_config
from tests.support.agents import Agent
from tests.support.daemon_proc import DaemonProcess
from tests.support.fault_server import Behaviour, FaultServer, make_envelope


def test_first_sample_happens_while_a_thousand_reports_wait_on_a_slow_server(tmp_path: Path):
    """With 1,000 reports pending and a server that answers slowly, READY comes first."""
    spool = Spool(tmp_path / "state" / "spool", SpoolLimits(max_reports=2000))
    ids = [spool.put(make_envelope()) for _ in range(1000)]
    server = FaultServer(default=Behaviour(delay_seconds=0.2))
    try:
        with Agent() as agent:
            config = write_config(tmp_path, f'name = "a"\npid = {agent.pid}')
            sections = (f'[sentry]\ndsn = "{server.dsn()}"\ntimeout = 5\n'
                        "[spool]\nmax_reports = 2000\n\n[otlp]")
            text = config.read_text().replace("[otlp]", sections)
            config.write_text(text)
            daemon = DaemonProcess(config, tmp_path / "log.jsonl")
            try:
                daemon.wait_event("daemon.ready")
                status = json.loads((tmp_path / "state" / "status.json").read_text())
                # The first tick is done while the backlog is still (nearly all) there.
                assert status["reports"]["pending"] >= 900
                server.wait_for(3, timeout=30)  # and delivery is under way meanwhile
            finally:
                assert daemon.stop() == 0
    finally:
        server.stop()
    left = {entry.id for entry in Spool(tmp_path / "state" / "spool").pending()}
    delivered = set(server.accepted_ids())
    assert delivered and delivered.isdisjoint(left)
    assert left | delivered == set(ids)

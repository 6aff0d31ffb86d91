"""Process storms: one aggregated report per watch and kind per tick, an agent's own report
never evicted by a storm, tree memory with shared pages counted once, and a re-exec seen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
from sentry_sdk.envelope import Envelope

from crash_reports.spool.store import Spool, SpoolLimits
from daemon.config.parse import parse_config_text
from daemon.runtime.service import Service
from daemon.watch.proc.proctable import LinuxProcTable
from daemon.watch.proc.selection import Selector
from tests.support.waiting import wait_for


def spawn_named(marker: str) -> subprocess.Popen[bytes]:
    """A cheap process whose command line carries ``marker`` (argv[0] via exec -a)."""
    return subprocess.Popen(["bash", "-c", f"exec -a {marker} sleep 600"])


def events_of(spool: Spool) -> list[dict]:
    found = []
    for entry in spool.pending():
        event = Envelope.deserialize(spool.read(entry.id)).get_event()
        assert event is not None
        found.append(event)
    return found


def service_for(tmp_path: Path, watches: str, extra: str = "") -> Service:
    config = parse_config_text(
        f'[daemon]\ninterval = 0.3\nstate_dir = "{tmp_path}"\n'
        f'[metrics]\nenabled = false\n[otlp]\nenabled = false\n{extra}{watches}',
        "<test>", {}, psutil.virtual_memory().total)
    return Service(config)


def test_storm_of_processes_writes_one_report_and_keeps_the_agents_own(tmp_path):
    """40 processes of one watch crossing critical in one tick: one aggregated report
    naming all 40; a lone agent crossing in the same tick keeps its own report."""
    marker = f"storm-{uuid.uuid4().hex[:8]}"
    storm = [spawn_named(marker) for _ in range(40)]
    agent = spawn_named(f"agent-{marker}")
    watches = (f'[[watch]]\nname = "storm"\ncmdline = "^{marker} "\ninclude_children = false\n'
               'rss_warning = "64KB"\nrss_critical = "128KB"\nsustained = 1\n'
               f'[[watch]]\nname = "agent"\ncmdline = "^agent-{marker} "\n'
               'rss_warning = "64KB"\nrss_critical = "128KB"\nsustained = 1\n')
    service = service_for(tmp_path, watches)
    try:
        wait_for(lambda: all((psutil.Process(p.pid).cmdline() or [""])[0].startswith(
            ("storm", "agent")) for p in [*storm, agent]), message="exec -a done")
        service.startup()
        running = service.running
        assert running is not None
        wait_for(lambda: running.spool.pending_count() >= 2, message="reports")
        ticks = service.tick_count
        wait_for(lambda: service.tick_count >= ticks + 2, message="two more ticks")
        events = events_of(running.spool)
    finally:
        service.shutdown()
        for proc in [*storm, agent]:
            proc.kill()
            proc.wait()
    titles = sorted(event["message"] for event in events)
    assert len(events) == 2, titles
    assert titles[0] == "40 processes of storm crossed critical (RSS)"
    assert titles[1].startswith("agent pid ")
    [aggregated] = [e for e in events if e["message"].startswith("40 ")]
    storm_facts = aggregated["contexts"]["crossing"]["storm"]
    assert storm_facts["processes"] == 40
    assert sorted(storm_facts["pids"]) == sorted(p.pid for p in storm)


def envelope(watch: str, kind: str) -> bytes:
    event = {"event_id": uuid.uuid4().hex, "message": f"{watch} {kind}",
             "tags": {"watch": watch, "kind": kind}}
    body = json.dumps(event).encode()
    header = json.dumps({"event_id": event["event_id"]}).encode()
    item = json.dumps({"type": "event", "length": len(body)}).encode()
    return header + b"\n" + item + b"\n" + body + b"\n"


def test_spool_cap_drops_the_storm_before_the_lone_agent_report(tmp_path):
    """At the report cap, the largest (watch, kind) group loses its oldest first: the
    agent's older report survives 30 newer reports of a noisy watch."""
    spool = Spool(tmp_path / "spool", SpoolLimits(max_reports=10))
    own = spool.put(envelope("agent", "exited_under_pressure"))
    daemon_error = spool.put(envelope("", "daemon_error"))
    for _ in range(30):
        spool.put(envelope("storm", "rss_critical"))
    ids = {entry.id for entry in spool.pending()}
    assert len(ids) == 10
    assert {own, daemon_error} <= ids


def test_tree_of_forks_reports_pss_with_shared_pages_counted_once(tmp_path):
    """Eight forks sharing 64 MiB: RSS sum counts it nine times, the report's PSS once."""
    script = ("import os, time\nb = b'x' * (64 << 20)\n"
              "for _ in range(8):\n    if os.fork() == 0:\n        time.sleep(600)\n"
              "        os._exit(0)\ntime.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script])
    watches = (f'[[watch]]\nname = "forks"\npid = {parent.pid}\n'
               'rss_warning = "200MB"\nrss_critical = "300MB"\nsustained = 1\n')
    service = service_for(tmp_path, watches)
    try:
        wait_for(lambda: len(psutil.Process(parent.pid).children()) == 8 and
                 sum(c.memory_info().rss for c in psutil.Process(parent.pid).children())
                 > 8 * (60 << 20), message="forks sharing the buffer")
        service.startup()
        running = service.running
        assert running is not None
        wait_for(lambda: running.spool.pending_count() >= 1, timeout=60, message="a report")
        [event] = events_of(running.spool)
    finally:
        service.shutdown()
        for child in psutil.Process(parent.pid).children():
            child.kill()
        parent.kill()
        parent.wait()
    tree = event["contexts"]["process_tree"]
    assert tree["rss_bytes"] > 9 * (60 << 20)
    assert tree["pss_bytes"] < 2 * (64 << 20) + (64 << 20) // 2, tree


def test_reexec_into_a_matching_command_line_is_noticed(tmp_path):
    """A process first seen not matching, then re-exec'd (same name) into a matching
    command line, is matched within a few ticks: its cached verdict was dropped."""
    marker = f"reexec-{uuid.uuid4().hex[:8]}"
    go = tmp_path / "go"
    script = ("import os, sys, time\n"  # the marker only appears (reversed back) after exec
              f"while not os.path.exists({str(go)!r}): time.sleep(0.05)\n"
              f"os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(600)',"
              f" {marker[::-1]!r}[::-1]])\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    config = parse_config_text(f'[[watch]]\nname = "w"\ncmdline = "{marker}"\n', "<t>", {},
                               psutil.virtual_memory().total)
    selector = Selector(config.watches)
    table_source = LinuxProcTable()
    try:
        assert proc.pid not in selector.match(table_source.scan())[0]
        comm = psutil.Process(proc.pid).name()
        go.write_text("")
        wait_for(lambda: marker in " ".join(psutil.Process(proc.pid).cmdline()),
                 message="re-exec")
        assert psutil.Process(proc.pid).name() == comm  # same name: only the cmdline changed
        wait_for(lambda: proc.pid in selector.match(table_source.scan())[0], timeout=30,
                 message="the re-exec'd process matched")
    finally:
        proc.kill()
        proc.wait()
    assert os.path.exists(go)

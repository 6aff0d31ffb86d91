"""Strings from outside (process names, command lines, report titles, watch names) can never
drive the terminal or break a table: every human-facing output escapes control characters."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import uuid

import psutil

from crash_reports.spool.store import Spool
from daemon.config.parse import parse_config_text
from daemon.runtime.service import Service
from tests.support.daemon_proc import cli
from tests.support.waiting import wait_for

EVIL = "\x1b]0;pwned\x07\x1b[31m\nx\u202e"


def test_status_escapes_a_process_name_with_ansi_escapes_and_newline(tmp_path):
    """A real process renames itself (prctl) with ESC sequences and a newline: ``status``
    prints them escaped and the table keeps one line per process."""
    script = ("import ctypes, time\n"
              "ctypes.CDLL(None).prctl(15, b'\\x1b[2J\\x1b[31m\\nevil', 0, 0, 0)\n"
              "time.sleep(600)\n")
    child = subprocess.Popen([sys.executable, "-c", script])
    config_path = tmp_path / "t.toml"
    config_path.write_text(f'[daemon]\ninterval = 0.2\nstate_dir = "{tmp_path / "s"}"\n'
                           '[metrics]\nenabled = false\n[otlp]\nenabled = false\n'
                           f'[[watch]]\nname = "w"\npid = {child.pid}\n')
    config = parse_config_text(config_path.read_text(), str(config_path), {},
                               psutil.virtual_memory().total)
    service = Service(config)
    try:
        wait_for(lambda: "\x1b" in psutil.Process(child.pid).name(), message="renamed")
        service.startup()
        wait_for(lambda: service.tick_count >= 2, message="ticks")
        shown = cli("--config", str(config_path), "status")
    finally:
        service.shutdown()
        child.kill()
        child.wait()
    assert "\x1b" not in shown.stdout
    assert "\\x1b[2J\\x1b[31m\\nevil" in shown.stdout
    rows = [line for line in shown.stdout.splitlines() if line.startswith("w ")]
    assert len(rows) == 1, shown.stdout


def test_reports_list_escapes_a_hostile_title(tmp_path):
    """A report whose title holds terminal escapes is listed escaped."""
    event = {"event_id": uuid.uuid4().hex, "message": f"title{EVIL}",
             "tags": {"watch": EVIL, "kind": "rss_critical"}}
    body = json.dumps(event).encode()
    Spool(tmp_path / "spool").put(
        json.dumps({"event_id": event["event_id"]}).encode() + b"\n"
        + json.dumps({"type": "event", "length": len(body)}).encode() + b"\n" + body + b"\n")
    config = tmp_path / "t.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\n[[watch]]\nname = "i"\npid = 1\n')
    shown = cli("--config", str(config), "reports", "list")
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "\u202e" not in shown.stdout
    assert "title\\x1b]0;pwned\\x07" in shown.stdout


def test_check_config_output_parses_back_for_any_unicode(tmp_path):
    """Emoji and control characters in a watch name: check-config prints TOML that parses
    back to the same name, with no raw control character on the terminal."""
    name = "agent 🤖 \x1b[31m\u202e é"
    config = tmp_path / "t.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\n'
                      f'[[watch]]\nname = {json.dumps(name, ensure_ascii=False)}\npid = 1\n')
    shown = cli("--config", str(config), "check-config")
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout
    parsed = tomllib.loads(shown.stdout)
    assert parsed["watch"][0]["name"] == name

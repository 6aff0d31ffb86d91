"""A server an agent starts to outlive it (the Codex app-server) is not its orphan: when the
terminal UI quits, the server is an ordinary process of the codex watch."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil

from daemon.config.parse import parse_config_text
from daemon.watch.proc.proctable import default_process_table
from daemon.watch.proc.sampler import Sampler, TickSample
from tests.support.layouts import _place, _python
from tests.support.waiting import wait_for

# The recorded standalone install path of Codex 0.171.0 (tests/fixtures/process_shapes.json).
CODEX = ("/home/user/.codex/packages/standalone/releases/"
         "0.171.0-x86_64-unknown-linux-musl/bin/codex")
SLEEP = "import time\ntime.sleep(600)\n"
# The terminal UI: starts `codex app-server --listen unix:// --managed-daemon` in its own
# session (as Codex does), prints its pid, quits on stdin EOF.
UI = ("import subprocess, sys\n"
      "server = subprocess.Popen([sys.argv[1], 'app-server', '--listen', 'unix://',"
      " '--managed-daemon'], executable=sys.argv[1], cwd=sys.argv[2],"
      " start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)\n"
      "print(server.pid, flush=True)\n"
      "sys.stdin.read()\n")


def places(sample: TickSample, pid: int) -> list[str]:
    """Where a pid is listed: ``watch`` for a tree root, ``watch:orphan`` for an orphan."""
    found = [w for w, trees in sample.by_watch.items() for t in trees if t.pid == pid]
    found += [f"{w}:orphan" for w, rows in sample.orphans.items() for o in rows if o.pid == pid]
    return found


def test_codex_app_server_outliving_the_ui_is_not_an_orphan(tmp_path: Path) -> None:
    """UI quits, app-server keeps running: listed as a codex process, no orphan at all."""
    codex = tmp_path / CODEX.lstrip("/")
    _place(_python(), codex)
    (tmp_path / "ui.py").write_text(UI)
    (tmp_path / "app-server").write_text(SLEEP)  # what the stand-in binary runs
    config = parse_config_text(
        f'[[watch]]\nname = "codex"\nexe = "{codex.parent}/codex$"\n',
        "<test>", {}, psutil.virtual_memory().total)
    ui = subprocess.Popen([str(codex), str(tmp_path / "ui.py"), str(codex), str(tmp_path)],
                          executable=codex, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True)
    assert ui.stdout is not None
    server = int(ui.stdout.readline())
    try:
        sampler = Sampler(default_process_table(), config.watches)
        first = wait_for(lambda: (s := sampler.sample(0.0, 0.0)) and places(s, ui.pid) and s,
                         message="the UI's tree")
        assert places(first, server) == []  # inside the UI's tree
        ui.communicate(timeout=30)
        after = sampler.sample(1.0, 1.0)
        assert places(after, server) == ["codex"]
        assert after.orphans.get("codex", []) == []
    finally:
        if ui.poll() is None:
            ui.kill()
        os.kill(server, 9)

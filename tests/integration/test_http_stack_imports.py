"""The HTTP stack (uvicorn, h11, prometheus-client) is loaded only when a listener starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.daemon_proc import REPO, clean_env

HTTP_MODULES = ("uvicorn", "h11", "prometheus_client", "daemon.web.http.server")

_STARTED = """
import json, sys, time
import psutil
from crash_reports.event.system_facts import SystemFacts
from daemon.config.parse import parse_config_text
from daemon.runtime.paths import StatePaths
from daemon.runtime.running import open_running
config = parse_config_text(sys.argv[1], "<test>", {}, psutil.virtual_memory().total)
paths = StatePaths(config.daemon.state_dir)
paths.ensure()
running = open_running(config, paths, SystemFacts(), time.time(), lambda: None)
loaded = [name for name in sys.argv[2:] if name in sys.modules]
running.close(time.time())
print(json.dumps(loaded))
"""


def loaded_after_start(state_dir: Path, otlp: bool, metrics: bool) -> list[str]:
    """Which HTTP modules a process holds once startup opened everything."""
    config = (f'[daemon]\nstate_dir = "{state_dir}"\n'
              f'[otlp]\nenabled = {str(otlp).lower()}\nlisten = "127.0.0.1:0"\n'
              f'[metrics]\nenabled = {str(metrics).lower()}\nlisten = "127.0.0.1:0"\n')
    done = subprocess.run([sys.executable, "-c", _STARTED, config, *HTTP_MODULES],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=clean_env())
    assert done.returncode == 0, done.stderr[-2000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_no_http_stack_when_both_listeners_are_off(tmp_path: Path) -> None:
    """A daemon with [otlp] and [metrics] off never imports uvicorn, h11 or prometheus-client."""
    assert loaded_after_start(tmp_path / "state", otlp=False, metrics=False) == []


def test_http_stack_loads_when_a_listener_starts(tmp_path: Path) -> None:
    """With the receiver on, the stack is there (the check above can see it)."""
    assert "uvicorn" in loaded_after_start(tmp_path / "state", otlp=True, metrics=False)


def test_cli_commands_do_not_import_the_http_stack(tmp_path: Path) -> None:
    """`status`, `reports list`, `stats` and `check-config` never load the HTTP stack."""
    config = tmp_path / "telemetryd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n')
    script = (
        "import json, sys\n"
        "from daemon.cli.main import main\n"
        "for args in (['status'], ['reports', 'list'], ['stats'], ['check-config']):\n"
        "    try:\n"
        f"        main(['--config', {str(config)!r}, *args])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(json.dumps([n for n in {HTTP_MODULES!r} if n in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=clean_env())
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [], done.stderr[-2000:]

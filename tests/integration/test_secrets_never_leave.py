"""A watched process whose command line carries every corpus secret: a real report, the log
lines and status.json hold none of them."""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
from structlog.testing import capture_logs

from daemon.config.parse import parse_config_text
from daemon.runtime.service import Service
from tests.support.waiting import wait_for
from tests.unit.test_redact_corpus import CORPUS, fill


def test_corpus_secrets_reach_no_envelope_log_or_status(tmp_path):
    """Every corpus shape in one real command line; spool, logs and status stay clean."""
    values = [f"Q9LEAK{index:03d}zz" for index in range(len(CORPUS))]
    args: list[str] = []
    for (shape, _), value in zip(CORPUS, values, strict=True):
        args += fill(shape, value)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", *args])
    config = parse_config_text(
        f'[daemon]\ninterval = 0.2\nstate_dir = "{tmp_path}"\n'
        '[metrics]\nenabled = false\n[otlp]\nenabled = false\n'
        f'[[watch]]\nname = "leaky"\npid = {child.pid}\n'
        'rss_warning = "512KB"\nrss_critical = "1MB"\nsustained = 1\n',
        "<test>", {}, psutil.virtual_memory().total)
    service = Service(config)
    try:
        with capture_logs() as logs:
            service.startup()
            try:
                running = service.running
                assert running is not None
                wait_for(lambda: running.spool.pending_count() >= 1, message="a report")
                [entry] = running.spool.pending()
                envelope = running.spool.read(entry.id)
            finally:
                service.shutdown()
    finally:
        child.kill()
        child.wait()
    assert b"Q9LEAK" not in envelope
    assert b"time.sleep(600)" in envelope  # the command line is there, redacted
    assert "Q9LEAK" not in json.dumps(logs, default=str)
    assert "Q9LEAK" not in (tmp_path / "status.json").read_text()

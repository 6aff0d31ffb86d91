"""A watched process whose command line carries every corpus secret and every token shape of
the issue: a real report, the log lines and status.json hold none of them."""

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

# One of each token shape that reached the spooled envelope before (issue 14), with the part
# that must not survive.
HEX32 = "9e107d9d372bb6826bd81d3542a419d6"
SHAPED = [
    ("https://hooks.slack.com/services/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",
     "Q9LEAKslack"),
    ("https://discord.com/api/webhooks/123456789012345678/Q9LEAKdiscord-7XkLm2PqRtY8wBnA4zH6jD0"
     "fG3sQ1eW5rT9yU_abcdefGHIJKLmnopqrstu", "Q9LEAKdiscord"),
    ("https://api.telegram.org/bot123456789:AAQ9LEAKtelegram7XkLm2PqRtY8wBnA4z/sendMessage",
     "Q9LEAKtelegram"),
    ("npm_Q9LEAKnpm7XkLm2PqRtY8wBnA4zH6jD0fG", "Q9LEAKnpm"),
    ("pypi-AgEIcHlwaS5vcmcCJDQ9LEAKpypi7XkLm2PqRtY8wBnA4zH6jD0fG3sQ1eW5rT9yUabcdef",
     "Q9LEAKpypi"),
    ("hvs.CAESIQ9LEAKvault7XkLm2PqRtY8wBnA4zH6", "Q9LEAKvault"),
    ("SG.Q9LEAKsg7XkLm2PqRtY8w.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "Q9LEAKsg"),
    ("ya29.a0AfQ9LEAKya7XkLm2PqRtY8wBnA4zH6jD0fG3sQ1e", "Q9LEAKya"),
    ("AGE-SECRET-KEY-1QQLEAKAGE023456789ACDEFGHJKLMNPQRSTUVWXYZ023456789ACDEFGHJKLMN",
     "QQLEAKAGE"),
    ("SK" + HEX32, HEX32),
    ("dapi" + HEX32[::-1], HEX32[::-1]),
    ("shpat_" + HEX32.upper(), HEX32.upper()),
    ("dop_v1_" + HEX32 * 2, HEX32 * 2),
]


def test_corpus_secrets_reach_no_envelope_log_or_status(tmp_path):
    """Every corpus shape in one real command line; spool, logs and status stay clean."""
    values = [f"Q9LEAK{index:03d}zz" for index in range(len(CORPUS))]
    args: list[str] = []
    for (shape, _), value in zip(CORPUS, values, strict=True):
        args += fill(shape, value)
    args += ["curl", *(token for token, _ in SHAPED)]
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
    assert [part for _, part in SHAPED if part.encode() in envelope] == []
    assert b"time.sleep(600)" in envelope  # the command line is there, redacted
    assert "Q9LEAK" not in json.dumps(logs, default=str)
    assert "Q9LEAK" not in (tmp_path / "status.json").read_text()

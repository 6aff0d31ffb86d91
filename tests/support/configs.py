"""Configs for tests that build a tick or a ``Running`` in the test process itself."""

from __future__ import annotations

from pathlib import Path

import psutil

from daemon.config.parse import parse_config_text
from daemon.config.schema import Config


def offline_config(state_dir: Path | str, watch: str, daemon: str = "") -> Config:
    """A config with both listeners off, its state in ``state_dir`` (``daemon``: more
    ``[daemon]`` lines) and one ``[[watch]]`` table whose body is ``watch``."""
    text = (f'[daemon]\nstate_dir = "{state_dir}"\n{daemon}\n'
            "[otlp]\nenabled = false\n[metrics]\nenabled = false\n"
            f"[[watch]]\n{watch}\n")
    return parse_config_text(text, "<test>", {}, psutil.virtual_memory().total)

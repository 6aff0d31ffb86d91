"""Where the config file and the state dir are: the environment's and the platform's rules.

Standard library only (``platformdirs`` is imported when a per-user path is needed): the
fast ``budget check`` path reads these without importing the schema.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

APP_NAME = "telemetryd"
SYSTEM_STATE_DIR = Path("/var/lib/telemetryd")
SYSTEM_CONFIG_PATH = Path("/etc/telemetryd/telemetryd.toml")
CONFIG_ENVIRON_KEYS = ("TELEMETRYD_CONFIG", "SENTRY_DSN", "STATE_DIRECTORY")


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """The default of ``[daemon] state_dir``: systemd's StateDirectory, else per user."""
    state_directory = environ.get("STATE_DIRECTORY")
    if state_directory:
        # systemd may pass several colon-separated paths; the first is ours.
        return Path(state_directory.split(":")[0])
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # The system unit's StateDirectory: so `telemetryd status` run as root finds
        # the daemon systemd started.
        return SYSTEM_STATE_DIR
    import platformdirs  # here: a config naming its state dir never pays for it

    return Path(platformdirs.user_state_dir(APP_NAME))


def config_search_path(explicit: Path | None, environ: Mapping[str, str]) -> list[Path]:
    """The places a config file is looked for, in order."""
    if explicit is not None:
        return [explicit]
    if environ.get("TELEMETRYD_CONFIG"):
        return [Path(environ["TELEMETRYD_CONFIG"])]
    import platformdirs

    return [Path(platformdirs.user_config_dir(APP_NAME)) / "telemetryd.toml", SYSTEM_CONFIG_PATH]


def find_config_file(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The first config file that exists, or None for the embedded default.

    A path given explicitly (flag or $TELEMETRYD_CONFIG) must exist.
    """
    candidates = config_search_path(explicit, environ)
    explicit_given = explicit is not None or bool(environ.get("TELEMETRYD_CONFIG"))
    if explicit_given:
        return candidates[0]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def environ_snapshot() -> dict[str, str]:
    """The few environment variables config reads (never the whole environment)."""
    return {key: os.environ[key] for key in CONFIG_ENVIRON_KEYS if key in os.environ}

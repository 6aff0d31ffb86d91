"""The shell around the parser: where the config file is, reading it, the environment it honours."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import psutil

from crash_reports.common.files import FileTooLargeError, UnsafeFileError, read_regular
from daemon.config.errors import ConfigError
from daemon.config.files.embedded import DEFAULT_CONFIG_TOML, EMBEDDED_DEFAULT
from daemon.config.files.locations import environ_snapshot, find_config_file
from daemon.config.parse import parse_config_text
from daemon.config.schema import Config

MAX_CONFIG_BYTES = 1 << 20


def load_config(
    explicit: Path | None, environ: Mapping[str, str], total_memory_bytes: int
) -> Config:
    """Find, read and parse the config (the shell around ``parse_config``)."""
    path = find_config_file(explicit, environ)
    if path is None:
        return parse_config_text(DEFAULT_CONFIG_TOML, EMBEDDED_DEFAULT, environ, total_memory_bytes)
    try:
        # Never blocks (a FIFO is refused) and never reads more than a config can be.
        text = read_regular(path, MAX_CONFIG_BYTES, follow_symlinks=True).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), None, "file not found") from None
    except PermissionError:
        raise ConfigError(str(path), None, "permission denied reading the file") from None
    except IsADirectoryError:
        raise ConfigError(str(path), None, "is a directory, expected a TOML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), None, f"not UTF-8 text ({exc.reason})") from None
    except UnsafeFileError as exc:
        what = "is a directory" if "(a directory)" in exc.reason else exc.reason
        raise ConfigError(str(path), None, f"{what}, expected a TOML file") from None
    except FileTooLargeError:
        raise ConfigError(str(path), None, f"larger than {MAX_CONFIG_BYTES} bytes") from None
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror}") from None
    return with_web_config(parse_config_text(text, str(path), environ, total_memory_bytes))


def with_web_config(config: Config) -> Config:
    """The config with the file named by [metrics] web_config_file read into ``web``."""
    if config.metrics.web_config_file is None:
        return config
    from daemon.config.files.web_config import load_web_config

    return replace(config, web=load_web_config(config.metrics.web_config_file))


def load_config_here(explicit: Path | None) -> Config:
    """``load_config`` with this process's environment and this machine's RAM."""
    return load_config(explicit, environ_snapshot(), psutil.virtual_memory().total)

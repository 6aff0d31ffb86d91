"""What ``budget check`` reads of the config: ``[daemon] state_dir`` and the ``[[budget]]`` tables.

``budget check`` runs before every tool call of an agent and must answer in tens of
milliseconds, so it reads the file with ``tomllib`` and validates only these keys, with the
same key-path errors the full parser (``parse.py``) gives; it never imports the schema's
classes or what validates the rest. ``check-config`` validates the whole file, and a test
holds both readers to the same answers.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from daemon.config.errors import ConfigError
from daemon.config.files.locations import default_state_dir, find_config_file

BUDGET_KEYS = ("agent", "daily_usd", "monthly_usd", "session_usd")


class BudgetLimits(NamedTuple):
    """One ``[[budget]]`` table's limits (the fields of ``schema.BudgetRule``)."""

    agent: str
    daily_usd: float | None
    monthly_usd: float | None
    session_usd: float | None


class BudgetView(NamedTuple):
    """Where the state is, and the budgets."""

    source: str
    state_dir: Path
    budgets: tuple[BudgetLimits, ...]


def load_budget_view(explicit: Path | None, environ: Mapping[str, str]) -> BudgetView:
    """Find the config as ``load_config`` does and read only what ``budget check`` needs."""
    path = find_config_file(explicit, environ)
    if path is None:  # the embedded default: no budgets, the default state dir
        return BudgetView("<embedded default>", default_state_dir(environ), ())
    source = str(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, None, f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, None, f"invalid TOML: {exc}") from None
    return read_budget_view(data, source, environ)


def read_budget_view(data: Mapping[str, Any], source: str,
                     environ: Mapping[str, str]) -> BudgetView:
    """Validate ``[daemon] state_dir`` and ``[[budget]]`` of decoded TOML (pure).

    >>> read_budget_view({"budget": [{"agent": "a", "session_usd": 2}]}, "f", {}).budgets
    (BudgetLimits(agent='a', daily_usd=None, monthly_usd=None, session_usd=2.0),)
    >>> read_budget_view({"budget": [{"agent": "a", "daily_usd": -1}]}, "f", {})
    Traceback (most recent call last):
    ...
    daemon.config.errors.ConfigError: f: budget[0].daily_usd: expected a positive number, got -1
    """
    daemon = data.get("daemon", {})
    if not isinstance(daemon, dict):
        raise ConfigError(source, "daemon", "expected a table [daemon]")
    state_dir_text = daemon.get("state_dir")
    if state_dir_text is not None and not isinstance(state_dir_text, str):
        raise ConfigError(source, "daemon.state_dir", "expected a string")
    state_dir = (Path(state_dir_text).expanduser() if state_dir_text
                 else default_state_dir(environ))
    tables = data.get("budget", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(source, "budget", "expected an array of tables [[budget]]")
    budgets = tuple(_budget(table, f"budget[{index}]", source)
                    for index, table in enumerate(tables))
    return BudgetView(source, state_dir, budgets)


def _budget(table: Mapping[str, Any], where: str, source: str) -> BudgetLimits:
    agent = table.get("agent")
    if not agent or not isinstance(agent, str):
        raise ConfigError(source, f"{where}.agent", "every budget needs the agent it applies to")
    limits = [_usd(table, key, f"{where}.{key}", source) for key in BUDGET_KEYS[1:]]
    if all(limit is None for limit in limits):
        raise ConfigError(source, where,
                          "a budget needs daily_usd, monthly_usd, session_usd or several")
    unknown = sorted(set(table) - set(BUDGET_KEYS))
    if unknown:
        raise ConfigError(source, f"{where}.{unknown[0]}",
                          f"unknown key (known keys here: {', '.join(sorted(BUDGET_KEYS))})")
    return BudgetLimits(agent, *limits)


def _usd(table: Mapping[str, Any], key: str, where: str, source: str) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(source, where, "expected a number")
    if not 0 < value < math.inf:
        raise ConfigError(source, where, f"expected a positive number, got {value}")
    return float(value)

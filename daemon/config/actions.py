"""``on_warning``, ``on_critical``, ``on_exit_under_pressure``, ``on_guard`` of a watch: actions.

Each item is exactly one of ``{ notify = true }``, ``{ exec = [...], timeout = "10s" }`` or
``{ signal = "SIGTERM", grace = "30s" }``; errors name the key path
(``watch[0].on_critical[1].exec``). The action classes (re-exported by ``schema.py``) are
here and hold their defaults.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from daemon.config.errors import ConfigError
from daemon.config.quantities import parse_duration

MAX_ACTIONS = 8  # actions per on_* key


@dataclass(frozen=True)
class NotifyAction:
    """``{ notify = true }``: a desktop notification naming the agent, level and time left."""

    timeout_seconds: float = 5.0

    def describe(self) -> str:
        """One line for logs, reports and check-config."""
        return "notify"


@dataclass(frozen=True)
class ExecAction:
    """``{ exec = [...], timeout = "10s" }``: a program run without a shell."""

    argv: tuple[str, ...]
    timeout_seconds: float = 10.0

    def describe(self) -> str:
        """One line for logs, reports and check-config (the program, not its arguments)."""
        return f"exec {self.argv[0]} (timeout {self.timeout_seconds:g}s)"


@dataclass(frozen=True)
class SignalAction:
    """``{ signal = "SIGTERM", grace = "30s" }``: a signal to the tree's root, then SIGKILL."""

    signal: int
    grace_seconds: float | None = None

    def describe(self) -> str:
        """One line for logs, reports and check-config."""
        import signal

        grace = f", SIGKILL after {self.grace_seconds:g}s" if self.grace_seconds else ""
        return f"signal {signal.Signals(self.signal).name}{grace}"


WatchAction = NotifyAction | ExecAction | SignalAction


ACTION_KEYS = {"notify": set(), "exec": {"timeout"}, "signal": {"grace"}}
MAX_TIMEOUT_SECONDS = 3600.0  # an exec action holds the one action worker that long at most
MAX_GRACE_SECONDS = 86400.0


def parse_actions(value: Any, where: str, source: str) -> tuple[WatchAction, ...]:
    """Validate one array of action tables (pure).

    >>> parse_actions([{"signal": "TERM", "grace": "30s"}], "w.on_critical", "f")
    (SignalAction(signal=15, grace_seconds=30.0),)
    >>> parse_actions([{"exec": []}], "w.on_warning", "f")
    Traceback (most recent call last):
    ...
    daemon.config.errors.ConfigError: f: w.on_warning[0].exec: expected a non-empty array of strings
    """
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(source, where, "expected an array of tables like [{ notify = true }]")
    if len(value) > MAX_ACTIONS:
        raise ConfigError(source, where, f"at most {MAX_ACTIONS} actions")
    return tuple(_action(item, f"{where}[{index}]", source) for index, item in enumerate(value))


def _action(item: dict[str, Any], where: str, source: str) -> WatchAction:
    kinds = [key for key in ACTION_KEYS if key in item]
    if len(kinds) != 1:
        raise ConfigError(source, where, "expected exactly one of notify, exec or signal")
    kind = kinds[0]
    allowed = {kind} | ACTION_KEYS[kind]
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ConfigError(source, f"{where}.{unknown[0]}",
                          f"unknown key for a {kind} action (known: {', '.join(sorted(allowed))})")
    if kind == "notify":
        if item["notify"] is not True:
            raise ConfigError(source, f"{where}.notify", "expected true")
        return NotifyAction()
    if kind == "exec":
        argv = item["exec"]
        if not isinstance(argv, list) or not argv or not all(
                isinstance(arg, str) for arg in argv) or not argv[0]:
            raise ConfigError(source, f"{where}.exec", "expected a non-empty array of strings")
        timeout = _duration(item.get("timeout"), f"{where}.timeout", source, MAX_TIMEOUT_SECONDS)
        return ExecAction(tuple(argv), ExecAction.timeout_seconds if timeout is None else timeout)
    return SignalAction(_signal(item["signal"], f"{where}.signal", source),
                        _duration(item.get("grace"), f"{where}.grace", source, MAX_GRACE_SECONDS))


def _signal(value: Any, where: str, source: str) -> int:
    if isinstance(value, str):
        name = value.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        if name in signal.Signals.__members__:
            return int(signal.Signals[name])
    raise ConfigError(source, where, f'expected a signal name like "SIGTERM", got {value!r}')


def _duration(value: Any, where: str, source: str, most: float) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(source, where, str(exc)) from None
    if not 0 < seconds <= most:
        raise ConfigError(source, where, f"expected a duration above 0 and up to {most:g}s, "
                          f"got {value!r}")
    return seconds

"""Decoded TOML into a ``Config``, or a ``ConfigError`` naming the file, key path and expectation.

Parsing is pure: ``parse_config`` takes the decoded TOML, the machine's RAM and the
environment it should honour; it never logs, reads files or touches the process. Every
default comes from ``schema.py``, read as ``Class.field`` (a dataclass keeps each field's
default there).

Why a hand-written reader rather than pydantic (installed here as a dependency of
genai-prices): measured on this machine (Python 3.11, pydantic 2.14), importing pydantic and
building three small models on top of everything the daemon imports anyway costs
+6.6 MiB RSS and 50-145 ms (median about 100 ms) at start; the daemon runs at 44 MiB
against a 60 MB budget. Its errors would still need translating (``loc`` tuples into
``watch[1].rss_critical``) and sizes, percents of RAM and durations need our own
validators anyway, so the library would save little code for a quarter of the headroom.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crash_reports.delivery.dsn import parse_dsn
from daemon.config.actions import parse_actions
from daemon.config.errors import ConfigError
from daemon.config.guard import parse_guard
from daemon.config.listeners import parse_metrics, parse_otlp
from daemon.config.locations import default_state_dir
from daemon.config.patterns import SelectorPattern, compile_bounded
from daemon.config.quantities import parse_duration, parse_size
from daemon.config.schema import (
    LOG_FORMATS,
    LOG_LEVELS,
    RANGES,
    BudgetRule,
    Config,
    DaemonSettings,
    LogFormat,
    SentrySettings,
    ShareOfRam,
    SpoolSettings,
    WatchRule,
)


def parse_config_text(
    text: str, source: str, environ: Mapping[str, str], total_memory_bytes: int
) -> Config:
    """Parse TOML text (pure)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, None, f"invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(source, None, "invalid TOML: arrays or tables nested too deeply"
                          ) from None
    try:
        return parse_config(data, source, environ, total_memory_bytes)
    except RecursionError:
        raise ConfigError(source, None, "values nested too deeply") from None


class _Table:
    """A TOML table being read, that knows where it is and which keys were used."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        self.data = data
        self.path = path
        self.source = source
        self.used: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def in_range(self, key: str, value: float, shown: object = None) -> None:
        """ConfigError naming the key path if ``value`` is outside the key's RANGES entry."""
        kind = self.path.split("[", 1)[0]
        bounds = RANGES.get(f"{kind}.{key}" if kind else key)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            low, high = (f"{bound:g}" for bound in bounds)
            raise self.error(key, f"must be between {low} and {high}, got "
                             f"{value if shown is None else shown!r}")

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(self.source, self.key_path(key) if key else self.path or None, message)

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def get_str(self, key: str) -> str | None:
        value = self.raw(key)
        if value is not None and not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_type_name(value)}")
        if value is not None and not value.strip():
            raise self.error(key, "is an empty string: give a value, or remove the key "
                             "to use the default")
        return value

    def get_bool(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_type_name(value)}")
        return value

    def get_number(self, key: str, default: float) -> float:
        value = self.get_optional_number(key)
        return default if value is None else value

    def get_optional_number(self, key: str) -> float | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {_type_name(value)}")
        if not 0 < value < math.inf:  # also refuses nan and inf
            raise self.error(key, f"expected a positive number, got {value}")
        self.in_range(key, value)
        return float(value)

    def get_int(self, key: str, default: int, minimum: int = 1) -> int:
        value = self.get_optional_int(key, minimum)
        return default if value is None else value

    def get_optional_int(self, key: str, minimum: int = 1) -> int | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {_type_name(value)}")
        if value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value}")
        self.in_range(key, value)
        return value

    def get_size(self, key: str, default: int | ShareOfRam, total_memory_bytes: int) -> int:
        value = self.raw(key)
        if value is None:
            value = str(default) if isinstance(default, ShareOfRam) else default
        try:
            size = parse_size(value, total_memory_bytes)
        except (ValueError, OverflowError) as exc:
            raise self.error(key, str(exc)) from None
        self.in_range(key, size, value)
        return size

    def get_duration(self, key: str, default: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except (ValueError, OverflowError) as exc:
            raise self.error(key, str(exc)) from None
        if not 0 < seconds < math.inf:
            raise self.error(key, f"expected a positive duration, got {value!r}")
        self.in_range(key, seconds, value)
        return seconds

    def reject_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise self.error(unknown[0], f"unknown key (known keys here: {known})")


def _type_name(value: object) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _subtable(root: _Table, key: str) -> _Table:
    value = root.raw(key)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise root.error(key, f"expected a table [{key}], got {_type_name(value)}")
    return _Table(value, key, root.source)


def _table_list(root: _Table, key: str) -> list[_Table]:
    value = root.raw(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise root.error(key, f"expected an array of tables [[{key}]], got {_type_name(value)}")
    return [_Table(item, f"{key}[{index}]", root.source) for index, item in enumerate(value)]


def parse_config(
    data: Mapping[str, Any], source: str, environ: Mapping[str, str], total_memory_bytes: int
) -> Config:
    """Validate decoded TOML into a Config (pure: no I/O, no logging)."""
    root = _Table(data, "", source)
    daemon = _parse_daemon(_subtable(root, "daemon"), environ)
    watch_tables = _table_list(root, "watch")
    watches = tuple(_parse_watch(table, total_memory_bytes) for table in watch_tables)
    names = [watch.name for watch in watches]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(source, f"watch[{index}].name", f"duplicate watch name {name!r}")
    sentry = _parse_sentry(_subtable(root, "sentry"), environ)
    spool = _parse_spool(_subtable(root, "spool"))
    otlp = parse_otlp(_subtable(root, "otlp"))
    metrics = parse_metrics(_subtable(root, "metrics"))
    budgets = tuple(_parse_budget(table) for table in _table_list(root, "budget"))
    guard = parse_guard(_subtable(root, "guard"))
    root.reject_unknown()
    return Config(source=source, daemon=daemon, watches=watches, sentry=sentry, spool=spool,
                  otlp=otlp, metrics=metrics, budgets=budgets, guard=guard)


def _parse_daemon(table: _Table, environ: Mapping[str, str]) -> DaemonSettings:
    interval = table.get_number("interval", DaemonSettings.interval_seconds)
    state_dir_text = table.get_str("state_dir")
    try:
        state_dir = (Path(state_dir_text).expanduser() if state_dir_text
                     else default_state_dir(environ))
    except RuntimeError:  # "~name" of a user that does not exist
        raise table.error("state_dir", f"cannot expand {state_dir_text!r}: no such user "
                          "home directory") from None
    log_format_text = table.get_str("log_format")
    formats: dict[str | None, LogFormat] = {name: name for name in LOG_FORMATS}
    formats[None] = DaemonSettings.log_format
    if log_format_text not in formats:
        expected = ", ".join(f'"{name}"' for name in LOG_FORMATS[:-1])
        raise table.error("log_format", f'expected {expected} or "{LOG_FORMATS[-1]}", '
                          f"got {log_format_text!r}")
    log_format = formats[log_format_text]
    log_level = (table.get_str("log_level") or DaemonSettings.log_level).lower()
    if log_level not in LOG_LEVELS:
        expected = ", ".join(LOG_LEVELS)
        raise table.error("log_level", f"expected one of {expected}, got {log_level!r}")
    history = table.get_int("history_samples", DaemonSettings.history_samples, minimum=2)
    window = table.get_duration("trend_window", DaemonSettings.trend_window_seconds)
    table.reject_unknown()
    return DaemonSettings(interval_seconds=interval, state_dir=state_dir, log_format=log_format,
                          log_level=log_level, history_samples=history,
                          trend_window_seconds=window)


def _parse_watch(table: _Table, total_memory_bytes: int) -> WatchRule:
    name = table.get_str("name")
    if not name:
        raise table.error("name", "every watch needs a non-empty name")
    process_names = _names(table, "process_name")
    exe = _pattern(table, "exe")
    interpreter_cmdline = _pattern(table, "interpreter_cmdline")
    cmdline = _pattern(table, "cmdline")
    exclude_exe = _pattern(table, "exclude_exe")
    exclude_cmdline = _pattern(table, "exclude_cmdline")
    pid = table.get_optional_int("pid")
    pidfile_text = table.get_str("pidfile")
    user = table.get_str("user")
    if not any([process_names, exe, interpreter_cmdline, cmdline, pid, pidfile_text, user]):
        raise table.error(
            None, "a watch needs at least one selector: process_name, exe, "
            "interpreter_cmdline, cmdline, pid, pidfile or user"
        )
    include_children = table.get_bool("include_children", WatchRule.include_children)
    rss_warning = table.get_size("rss_warning", WatchRule.RSS_WARNING_DEFAULT, total_memory_bytes)
    rss_critical = table.get_size("rss_critical", WatchRule.RSS_CRITICAL_DEFAULT,
                                  total_memory_bytes)
    cpu_warning = table.get_number("cpu_warning", WatchRule.cpu_warning_percent)
    cpu_critical = table.get_number("cpu_critical", WatchRule.cpu_critical_percent)
    sustained = table.get_int("sustained", WatchRule.sustained)
    cpu_sustained = table.get_int("cpu_sustained", sustained)
    cooldown = table.get_duration("cooldown", WatchRule.cooldown_seconds)
    orphans_warning = table.get_int("orphans_warning", WatchRule.orphans_warning)
    orphans_rss = table.get_size("orphans_rss", WatchRule.ORPHANS_RSS_DEFAULT,
                                 total_memory_bytes)
    reap_orphans = table.get_bool("reap_orphans", WatchRule.reap_orphans)
    reap_grace = table.get_duration("reap_grace", WatchRule.reap_grace_seconds)
    if rss_warning >= rss_critical:
        raise table.error(
            "rss_warning", f"must be below rss_critical ({rss_warning} >= {rss_critical} bytes)"
        )
    if cpu_warning >= cpu_critical:
        raise table.error(
            "cpu_warning", f"must be below cpu_critical ({cpu_warning} >= {cpu_critical})"
        )
    node_heap = table.get_bool("evidence_node_heap", WatchRule.evidence_node_heap)
    guard = table.get_bool("guard", WatchRule.guard)
    actions = {key: parse_actions(table.raw(key), table.key_path(key), table.source)
               for key in ("on_warning", "on_critical", "on_exit_under_pressure", "on_guard")}
    table.reject_unknown()
    return WatchRule(
        name=name,
        process_names=process_names,
        exe=exe,
        interpreter_cmdline=interpreter_cmdline,
        cmdline=cmdline,
        exclude_exe=exclude_exe,
        exclude_cmdline=exclude_cmdline,
        pid=pid,
        pidfile=Path(pidfile_text) if pidfile_text else None,
        user=user,
        include_children=include_children,
        evidence_node_heap=node_heap,
        guard=guard,
        rss_warning_bytes=rss_warning,
        rss_critical_bytes=rss_critical,
        cpu_warning_percent=cpu_warning,
        cpu_critical_percent=cpu_critical,
        sustained=sustained,
        cpu_sustained=cpu_sustained,
        cooldown_seconds=cooldown,
        orphans_warning=orphans_warning,
        orphans_rss_bytes=orphans_rss,
        reap_orphans=reap_orphans,
        reap_grace_seconds=reap_grace,
        **actions,
    )


def _names(table: _Table, key: str) -> tuple[str, ...]:
    """A name or an array of names."""
    value = table.raw(key)
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
        raise table.error(key, f"expected a name or an array of names, got {_type_name(value)}")
    return tuple(items)


def _pattern(table: _Table, key: str) -> SelectorPattern | None:
    """A selector's regular expression (or an array of them: any may match), refused when
    it could take more than linear time."""
    value = table.raw(key)
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or \
            not all(isinstance(item, str) for item in items):
        raise table.error(key, f"expected a pattern or an array of patterns, "
                               f"got {_type_name(value)}")
    text = items[0] if len(items) == 1 else "|".join(f"(?:{item})" for item in items)
    try:
        return compile_bounded(text)
    except ValueError as exc:
        raise table.error(key, str(exc)) from None


def _parse_sentry(table: _Table, environ: Mapping[str, str]) -> SentrySettings:
    from_file = table.get_str("dsn")
    dsn = from_file or environ.get("SENTRY_DSN") or None
    if dsn is not None:
        try:
            parse_dsn(dsn)
        except ValueError as exc:
            if from_file:
                raise table.error("dsn", str(exc)) from None
            raise ConfigError("$SENTRY_DSN", None, str(exc)) from None
    environment = table.get_str("environment") or SentrySettings.environment
    flush_interval = table.get_duration("flush_interval", SentrySettings.flush_interval_seconds)
    timeout = table.get_duration("timeout", SentrySettings.timeout_seconds)
    table.reject_unknown()
    return SentrySettings(dsn, environment, flush_interval, timeout)


def _parse_spool(table: _Table) -> SpoolSettings:
    max_reports = table.get_int("max_reports", SpoolSettings.max_reports)
    max_bytes = table.get_size("max_bytes", SpoolSettings.max_bytes, 0)
    max_age_days = table.get_number("max_age_days", SpoolSettings.max_age_days)
    disk_reserve = table.get_size("disk_reserve", SpoolSettings.disk_reserve_bytes, 0)
    table.reject_unknown()
    return SpoolSettings(max_reports, max_bytes, max_age_days, disk_reserve)


def _parse_budget(table: _Table) -> BudgetRule:
    agent = table.get_str("agent")
    if not agent:
        raise table.error("agent", "every budget needs the agent it applies to")
    daily = table.get_optional_number("daily_usd")
    monthly = table.get_optional_number("monthly_usd")
    session = table.get_optional_number("session_usd")
    if daily is None and monthly is None and session is None:
        raise table.error(None, "a budget needs daily_usd, monthly_usd, session_usd or several")
    table.reject_unknown()
    return BudgetRule(agent, daily, monthly, session)

"""Decoded TOML into a ``Config``, or a ``ConfigError`` naming the file, key path and expectation.

Parsing is pure: ``parse_config`` takes the decoded TOML, the machine's RAM and the
environment it should honour; it never logs, reads files or touches the process. Each
table is read by its keys as ``schema.py`` declares them (``reader.read_keys``: kind,
default, range); what is written here by hand is only what is about several keys or the
environment (a watch needs a selector, ``rss_warning`` below ``rss_critical``,
``$SENTRY_DSN``, the state dir's default, a metrics listener off loopback needs a web config).

Why a hand-written reader rather than pydantic (installed here as a dependency of
genai-prices): measured on this machine (Python 3.11, pydantic 2.14), importing pydantic and
building three small models on top of everything the daemon imports anyway costs
+6.6 MiB RSS and 50-145 ms (median about 100 ms) at start; the daemon runs at 44 MiB
against a 60 MB budget. Its errors would still need translating (``loc`` tuples into
``watch[1].rss_critical``) and sizes, percents of RAM and durations need our own
validators anyway, so the library would save little code for a quarter of the headroom.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

from crash_reports.delivery.dsn import parse_dsn
from daemon.config.errors import ConfigError
from daemon.config.files.locations import default_state_dir
from daemon.config.reader import TableReader, is_loopback, read_keys, type_name
from daemon.config.schema import (
    BudgetRule,
    Config,
    DaemonSettings,
    GuardSettings,
    MetricsSettings,
    OtlpSettings,
    SentrySettings,
    SpoolSettings,
    WatchRule,
    WireLimits,
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


def _subtable(root: TableReader, key: str) -> TableReader:
    value = root.raw(key)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise root.error(key, f"expected a table [{key}], got {type_name(value)}")
    return TableReader(value, key, root.source)


def _table_list(root: TableReader, key: str) -> list[TableReader]:
    value = root.raw(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise root.error(key, f"expected an array of tables [[{key}]], got {type_name(value)}")
    return [TableReader(item, f"{key}[{index}]", root.source)
            for index, item in enumerate(value)]


def parse_config(
    data: Mapping[str, Any], source: str, environ: Mapping[str, str], total_memory_bytes: int
) -> Config:
    """Validate decoded TOML into a Config (pure: no I/O, no logging)."""
    root = TableReader(data, "", source)
    daemon = _parse_daemon(_subtable(root, "daemon"), environ)
    watch_tables = _table_list(root, "watch")
    watches = tuple(_parse_watch(table, total_memory_bytes) for table in watch_tables)
    names = [watch.name for watch in watches]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(source, f"watch[{index}].name", f"duplicate watch name {name!r}")
    sentry = _parse_sentry(_subtable(root, "sentry"), environ)
    spool = SpoolSettings(**_read(_subtable(root, "spool"), SpoolSettings))
    otlp = OtlpSettings(**_read(_subtable(root, "otlp"), OtlpSettings))
    metrics = _parse_metrics(_subtable(root, "metrics"))
    budgets = tuple(_parse_budget(table) for table in _table_list(root, "budget"))
    guard = _parse_guard(_subtable(root, "guard"))
    root.reject_unknown()
    return Config(source=source, daemon=daemon, watches=watches, sentry=sentry, spool=spool,
                  otlp=otlp, metrics=metrics, budgets=budgets, guard=guard)


def _read(table: TableReader, cls: type, total_memory_bytes: int = 0,
          default: object = None) -> dict[str, Any]:
    """``read_keys``, the wire limits checked against each other, and no unknown key."""
    values = read_keys(table, cls, total_memory_bytes, default)
    wire = values.get("wire")
    mismatch = wire.mismatch() if isinstance(wire, WireLimits) else None
    if mismatch is not None:
        raise table.error(*mismatch)
    table.reject_unknown()
    return values


def _parse_daemon(table: TableReader, environ: Mapping[str, str]) -> DaemonSettings:
    values = _read(table, DaemonSettings)
    values["state_dir"] = values["state_dir"] or default_state_dir(environ)
    return DaemonSettings(**values)


def _parse_watch(table: TableReader, total_memory_bytes: int) -> WatchRule:
    values = _read(table, WatchRule, total_memory_bytes)
    if not values["name"]:
        raise table.error("name", "every watch needs a non-empty name")
    selectors = ("process_names", "exe", "interpreter_cmdline", "cmdline", "pid", "pidfile",
                 "user")
    if not any(values[field] for field in selectors):
        raise table.error(
            None, "a watch needs at least one selector: process_name, exe, "
            "interpreter_cmdline, cmdline, pid, pidfile or user"
        )
    rss_warning, rss_critical = values["rss_warning_bytes"], values["rss_critical_bytes"]
    if rss_warning >= rss_critical:
        raise table.error(
            "rss_warning", f"must be below rss_critical ({rss_warning} >= {rss_critical} bytes)"
        )
    cpu_warning, cpu_critical = values["cpu_warning_percent"], values["cpu_critical_percent"]
    if cpu_warning >= cpu_critical:
        raise table.error(
            "cpu_warning", f"must be below cpu_critical ({cpu_warning} >= {cpu_critical})"
        )
    return WatchRule(**values)


def _parse_sentry(table: TableReader, environ: Mapping[str, str]) -> SentrySettings:
    values = _read(table, SentrySettings)
    from_file = values["dsn"]
    dsn = from_file or environ.get("SENTRY_DSN") or None
    if dsn is not None:
        try:
            parse_dsn(dsn)
        except ValueError as exc:
            if from_file:
                raise table.error("dsn", str(exc)) from None
            raise ConfigError("$SENTRY_DSN", None, str(exc)) from None
    values["dsn"] = dsn
    return SentrySettings(**values)


def _parse_budget(table: TableReader) -> BudgetRule:
    values = _read(table, BudgetRule)
    if not values["agent"]:
        raise table.error("agent", "every budget needs the agent it applies to")
    if not any(values[field] for field in ("daily_usd", "monthly_usd", "session_usd")):
        raise table.error(None, "a budget needs daily_usd, monthly_usd, session_usd or several")
    return BudgetRule(**values)


def _parse_guard(table: TableReader) -> GuardSettings:
    settings = GuardSettings(**_read(table, GuardSettings))
    if settings.idle_spin_fallback_window_seconds < settings.idle_spin_window_seconds:
        raise table.error("idle_spin_fallback_window", "must be at least idle_spin_window "
                          f"({settings.idle_spin_fallback_window_seconds:g}s < "
                          f"{settings.idle_spin_window_seconds:g}s)")
    return settings


def _parse_metrics(table: TableReader) -> MetricsSettings:
    settings = MetricsSettings(**_read(table, MetricsSettings, default=Config.metrics))
    web_config_file = settings.web_config_file
    if web_config_file is not None and not web_config_file.is_absolute():
        raise table.error("web_config_file",
                          f"expected an absolute path, got {str(web_config_file)!r}")
    if (settings.enabled and not is_loopback(settings.host) and web_config_file is None
            and not settings.allow_unauthenticated):
        raise table.error("web_config_file", f"listen {settings.host!r} is reachable from "
                          "other machines: give a web config (TLS and basic auth), or set "
                          "[metrics] allow_unauthenticated = true on purpose")
    return settings

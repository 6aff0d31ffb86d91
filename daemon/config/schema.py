"""Configuration: find the file, parse TOML into frozen dataclasses, name what is wrong.

Parsing is pure: ``parse_config`` takes the decoded TOML, the machine's RAM and the
environment it should honour, and returns a ``Config`` or raises ``ConfigError``
naming the file, the key path and what was expected. Constructing a Config never
logs, reads files or touches the process.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from daemon.config.quantities import parse_duration, parse_size

APP_NAME = "telemetryd"
SYSTEM_CONFIG_PATH = Path("/etc/telemetryd/telemetryd.toml")
SYSTEM_STATE_DIR = Path("/var/lib/telemetryd")
EMBEDDED_DEFAULT = "<embedded default>"
EXIT_CONFIG_ERROR = 78  # EX_CONFIG from sysexits.h, what service managers expect

LogFormat = Literal["json", "console", "auto"]
LOG_LEVELS = ("debug", "info", "warning", "error")

# Agents people run today, watched when no config file exists. Node-based CLIs whose
# process title is "node" are matched on their command line instead.
DEFAULT_CONFIG_TOML = """
[daemon]
interval = 2.0
log_format = "auto"
log_level = "info"

[[watch]]
name = "claude-code"
process_name = "claude"

[[watch]]
name = "codex"
process_name = "codex"

[[watch]]
name = "aider"
process_name = "aider"

[[watch]]
name = "goose"
process_name = "goose"

[[watch]]
name = "opencode"
process_name = "opencode"

[[watch]]
name = "gemini"
process_name = "gemini"

[[watch]]
name = "gemini-node"
process_name = "node"
cmdline = "(^|/)gemini( |$)|@google/gemini-cli"

[[watch]]
name = "codetether"
process_name = "codetether"

[[watch]]
name = "cursor-agent"
process_name = "cursor-agent"
"""

DEFAULT_WATCH_VALUES: dict[str, Any] = {
    "include_children": True,
    "rss_warning": "15%",
    "rss_critical": "30%",
    "cpu_warning": 200.0,
    "cpu_critical": 400.0,
    "sustained": 3,
    "cpu_sustained": None,
    "cooldown": 600.0,
}


class ConfigError(Exception):
    """A user-caused configuration problem: where it is and what was expected."""

    def __init__(self, source: str, key: str | None, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class WatchRule:
    """One [[watch]] table: which processes to watch and at which levels."""

    name: str
    process_name: str | None = None
    cmdline: re.Pattern[str] | None = None
    pid: int | None = None
    pidfile: Path | None = None
    user: str | None = None
    include_children: bool = True
    rss_warning_bytes: int | None = None
    rss_critical_bytes: int | None = None
    cpu_warning_percent: float | None = None
    cpu_critical_percent: float | None = None
    sustained: int = 3
    cpu_sustained: int = 3
    cooldown_seconds: float = 600.0


@dataclass(frozen=True)
class DaemonSettings:
    """The [daemon] table."""

    interval_seconds: float = 2.0
    state_dir: Path = field(default_factory=lambda: default_state_dir({}))
    log_format: LogFormat = "auto"
    log_level: str = "info"
    history_samples: int = 120
    trend_window_seconds: float = 120.0


@dataclass(frozen=True)
class SentrySettings:
    """The [sentry] table; no DSN means nothing ever leaves the machine."""

    dsn: str | None = None
    environment: str = "production"
    flush_interval_seconds: float = 300.0
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class SpoolSettings:
    """The [spool] table: bounds on what the report spool keeps."""

    max_reports: int = 200
    max_bytes: int = 64 * 1024**2
    max_age_days: float = 30.0


@dataclass(frozen=True)
class ListenSettings:
    """A loopback listener that can be switched off ([otlp], [metrics])."""

    enabled: bool
    host: str
    port: int


@dataclass(frozen=True)
class OtlpSettings:
    """The [otlp] table: the agent telemetry receiver."""

    listen: ListenSettings = ListenSettings(True, "127.0.0.1", 4318)
    max_body_bytes: int = 4 * 1024**2
    queue_size: int = 10_000
    max_series_per_metric: int = 2_000
    retention_days: float = 30.0
    retention_bytes: int = 256 * 1024**2


@dataclass(frozen=True)
class BudgetRule:
    """One [[budget]] table: cost limits per agent, in USD (``session_usd``: per agent session)."""

    agent: str
    daily_usd: float | None = None
    monthly_usd: float | None = None
    session_usd: float | None = None


@dataclass(frozen=True)
class Config:
    """Everything telemetryd needs to run, validated."""

    source: str
    daemon: DaemonSettings
    watches: tuple[WatchRule, ...]
    sentry: SentrySettings = SentrySettings()
    spool: SpoolSettings = SpoolSettings()
    otlp: OtlpSettings = OtlpSettings()
    metrics: ListenSettings = ListenSettings(True, "127.0.0.1", 9464)
    budgets: tuple[BudgetRule, ...] = ()


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """Where state lives when the config does not say: systemd's StateDirectory, else per user."""
    state_directory = environ.get("STATE_DIRECTORY")
    if state_directory:
        # systemd may pass several colon-separated paths; the first is ours.
        return Path(state_directory.split(":")[0])
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # The system unit's StateDirectory: so `telemetryd status` run as root finds
        # the daemon systemd started.
        return SYSTEM_STATE_DIR
    import platformdirs  # here: `budget check` with a config naming its state dir skips it

    return Path(platformdirs.user_state_dir(APP_NAME))


def config_search_path(explicit: Path | None, environ: Mapping[str, str]) -> list[Path]:
    """The places a config file is looked for, in order."""
    if explicit is not None:
        return [explicit]
    paths: list[Path] = []
    if environ.get("TELEMETRYD_CONFIG"):
        return [Path(environ["TELEMETRYD_CONFIG"])]
    import platformdirs

    paths.append(Path(platformdirs.user_config_dir(APP_NAME)) / "telemetryd.toml")
    paths.append(SYSTEM_CONFIG_PATH)
    return paths


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


def load_config(
    explicit: Path | None, environ: Mapping[str, str], total_memory_bytes: int
) -> Config:
    """Find, read and parse the config (the shell around ``parse_config``)."""
    path = find_config_file(explicit, environ)
    if path is None:
        return parse_config_text(DEFAULT_CONFIG_TOML, EMBEDDED_DEFAULT, environ, total_memory_bytes)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), None, "file not found") from None
    except PermissionError:
        raise ConfigError(str(path), None, "permission denied reading the file") from None
    except IsADirectoryError:
        raise ConfigError(str(path), None, "is a directory, expected a TOML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), None, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror}") from None
    return parse_config_text(text, str(path), environ, total_memory_bytes)


def parse_config_text(
    text: str, source: str, environ: Mapping[str, str], total_memory_bytes: int
) -> Config:
    """Parse TOML text (pure)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, None, f"invalid TOML: {exc}") from None
    return parse_config(data, source, environ, total_memory_bytes)


@dataclass(frozen=True)
class BudgetView:
    """What ``budget check`` needs from the config: where the state is and the budgets."""

    source: str
    state_dir: Path
    budgets: tuple[BudgetRule, ...]


def load_budget_view(explicit: Path | None, environ: Mapping[str, str]) -> BudgetView:
    """Read only [daemon] and [[budget]] of the config, with the same rules as ``load_config``.

    ``budget check`` runs before every tool call of an agent: it must not pay for validating
    (and importing what validates) the rest; ``check-config`` validates the whole file.
    """
    path = find_config_file(explicit, environ)
    if path is None:
        text, source = DEFAULT_CONFIG_TOML, EMBEDDED_DEFAULT
    else:
        source = str(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(source, None, f"cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, None, f"invalid TOML: {exc}") from None
    root = _Table(data, "", source)
    daemon = _parse_daemon(_subtable(root, "daemon"), environ)
    budgets = tuple(_parse_budget(table) for table in _table_list(root, "budget"))
    return BudgetView(source, daemon.state_dir, budgets)


class _Table:
    """A TOML table being read, that knows where it is and which keys were used."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        self.data = data
        self.path = path
        self.source = source
        self.used: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(self.source, self.key_path(key) if key else self.path or None, message)

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def has(self, key: str) -> bool:
        return key in self.data

    def get_str(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_type_name(value)}")
        return value

    def get_bool(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_type_name(value)}")
        return value

    def get_number(self, key: str, default: float | None, positive: bool = True) -> float | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {_type_name(value)}")
        if positive and not 0 < value < math.inf:  # also refuses nan and inf
            raise self.error(key, f"expected a positive number, got {value}")
        return float(value)

    def get_int(self, key: str, default: int | None, minimum: int = 1) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {_type_name(value)}")
        if value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value}")
        return value

    def get_size(self, key: str, default: object, total_memory_bytes: int) -> int | None:
        value = self.raw(key)
        if value is None:
            value = default
        if value is None:
            return None
        try:
            return parse_size(value, total_memory_bytes)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def get_duration(self, key: str, default: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        if not 0 < seconds < math.inf:
            raise self.error(key, f"expected a positive duration, got {value!r}")
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
    otlp = _parse_otlp(_subtable(root, "otlp"))
    metrics_table = _subtable(root, "metrics")
    metrics = _parse_listen(metrics_table, "127.0.0.1", 9464)
    metrics_table.reject_unknown()
    budgets = tuple(_parse_budget(table) for table in _table_list(root, "budget"))
    root.reject_unknown()
    return Config(source, daemon, watches, sentry, spool, otlp, metrics, budgets)


def _parse_daemon(table: _Table, environ: Mapping[str, str]) -> DaemonSettings:
    interval = table.get_number("interval", 2.0)
    assert interval is not None
    state_dir_text = table.get_str("state_dir")
    state_dir = Path(state_dir_text).expanduser() if state_dir_text else default_state_dir(environ)
    log_format = table.get_str("log_format", "auto")
    if log_format not in ("json", "console", "auto"):
        raise table.error("log_format", f'expected "json", "console" or "auto", got {log_format!r}')
    log_level = (table.get_str("log_level", "info") or "info").lower()
    if log_level not in LOG_LEVELS:
        expected = ", ".join(LOG_LEVELS)
        raise table.error("log_level", f"expected one of {expected}, got {log_level!r}")
    history = table.get_int("history_samples", 120, minimum=2)
    window = table.get_duration("trend_window", 120.0)
    table.reject_unknown()
    assert history is not None
    return DaemonSettings(interval, state_dir, log_format, log_level, history, window)  # type: ignore[arg-type]


def _parse_watch(table: _Table, total_memory_bytes: int) -> WatchRule:
    name = table.get_str("name")
    if not name:
        raise table.error("name", "every watch needs a non-empty name")
    process_name = table.get_str("process_name")
    cmdline_text = table.get_str("cmdline")
    cmdline = None
    if cmdline_text is not None:
        try:
            cmdline = re.compile(cmdline_text)
        except re.error as exc:
            raise table.error("cmdline", f"invalid regular expression: {exc}") from None
    pid = table.get_int("pid", None)
    pidfile_text = table.get_str("pidfile")
    user = table.get_str("user")
    if not any([process_name, cmdline, pid, pidfile_text, user]):
        raise table.error(
            None, "a watch needs at least one selector: process_name, cmdline, pid, pidfile or user"
        )
    defaults = DEFAULT_WATCH_VALUES
    include_children = table.get_bool("include_children", defaults["include_children"])
    rss_warning = table.get_size("rss_warning", defaults["rss_warning"], total_memory_bytes)
    rss_critical = table.get_size("rss_critical", defaults["rss_critical"], total_memory_bytes)
    cpu_warning = table.get_number("cpu_warning", defaults["cpu_warning"])
    cpu_critical = table.get_number("cpu_critical", defaults["cpu_critical"])
    sustained = table.get_int("sustained", defaults["sustained"])
    cpu_sustained = table.get_int("cpu_sustained", sustained)
    cooldown = table.get_duration("cooldown", defaults["cooldown"])
    if rss_warning is not None and rss_critical is not None and rss_warning >= rss_critical:
        raise table.error(
            "rss_warning", f"must be below rss_critical ({rss_warning} >= {rss_critical} bytes)"
        )
    if cpu_warning is not None and cpu_critical is not None and cpu_warning >= cpu_critical:
        raise table.error(
            "cpu_warning", f"must be below cpu_critical ({cpu_warning} >= {cpu_critical})"
        )
    table.reject_unknown()
    assert sustained is not None and cpu_sustained is not None
    return WatchRule(
        name=name,
        process_name=process_name,
        cmdline=cmdline,
        pid=pid,
        pidfile=Path(pidfile_text) if pidfile_text else None,
        user=user,
        include_children=include_children,
        rss_warning_bytes=rss_warning,
        rss_critical_bytes=rss_critical,
        cpu_warning_percent=cpu_warning,
        cpu_critical_percent=cpu_critical,
        sustained=sustained,
        cpu_sustained=cpu_sustained,
        cooldown_seconds=cooldown,
    )


def _parse_sentry(table: _Table, environ: Mapping[str, str]) -> SentrySettings:
    from_file = table.get_str("dsn")
    dsn = from_file or environ.get("SENTRY_DSN") or None
    if dsn is not None:
        # Imported here: sentry-sdk costs 50 ms, too much for `budget check` on every tool call.
        from crash_reports.delivery.dsn import parse_dsn

        try:
            parse_dsn(dsn)
        except ValueError as exc:
            if from_file:
                raise table.error("dsn", str(exc)) from None
            raise ConfigError("$SENTRY_DSN", None, str(exc)) from None
    environment = table.get_str("environment", "production") or "production"
    flush_interval = table.get_duration("flush_interval", 300.0)
    timeout = table.get_duration("timeout", 10.0)
    table.reject_unknown()
    return SentrySettings(dsn, environment, flush_interval, timeout)


def _parse_spool(table: _Table) -> SpoolSettings:
    max_reports = table.get_int("max_reports", 200)
    max_bytes = table.get_size("max_bytes", 64 * 1024**2, 0)
    max_age_days = table.get_number("max_age_days", 30.0)
    table.reject_unknown()
    assert max_reports is not None and max_bytes is not None and max_age_days is not None
    return SpoolSettings(max_reports, max_bytes, max_age_days)


def _parse_listen(table: _Table, host: str, port: int) -> ListenSettings:
    enabled = table.get_bool("enabled", True)
    listen = table.get_str("listen", f"{host}:{port}")
    assert listen is not None
    parsed = parse_listen_address(listen)
    if parsed is None:
        raise table.error("listen", f'expected "host:port" like "127.0.0.1:{port}", got {listen!r}')
    return ListenSettings(enabled, parsed[0], parsed[1])


def parse_listen_address(text: str) -> tuple[str, int] | None:
    """Split "host:port" or "[::1]:port"; None when it is not one.

    >>> parse_listen_address("127.0.0.1:4318")
    ('127.0.0.1', 4318)
    >>> parse_listen_address("[::1]:9464")
    ('::1', 9464)
    >>> parse_listen_address("nope") is None
    True
    """
    match = re.fullmatch(r"\[([0-9a-fA-F:]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", text.strip())
    if not match:
        return None
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 <= port <= 65535:
        return None
    return host, port


def _parse_otlp(table: _Table) -> OtlpSettings:
    listen = _parse_listen(table, "127.0.0.1", 4318)
    defaults = OtlpSettings()
    max_body = table.get_size("max_body_bytes", defaults.max_body_bytes, 0)
    queue_size = table.get_int("queue_size", defaults.queue_size)
    max_series = table.get_int("max_series_per_metric", defaults.max_series_per_metric)
    retention_days = table.get_number("retention_days", defaults.retention_days)
    retention_bytes = table.get_size("retention_bytes", defaults.retention_bytes, 0)
    table.reject_unknown()
    assert max_body and queue_size and max_series and retention_days and retention_bytes
    return OtlpSettings(listen, max_body, queue_size, max_series, retention_days, retention_bytes)


def _parse_budget(table: _Table) -> BudgetRule:
    agent = table.get_str("agent")
    if not agent:
        raise table.error("agent", "every budget needs the agent it applies to")
    daily = table.get_number("daily_usd", None)
    monthly = table.get_number("monthly_usd", None)
    session = table.get_number("session_usd", None)
    if daily is None and monthly is None and session is None:
        raise table.error(None, "a budget needs daily_usd, monthly_usd, session_usd or several")
    table.reject_unknown()
    return BudgetRule(agent, daily, monthly, session)


def describe(config: Config) -> dict[str, Any]:
    """The effective config as plain data, under the TOML keys (sizes in bytes, no DSN key).

    ``check-config`` prints it as TOML that parses back to the same config.
    """
    from crash_reports.delivery.dsn import redacted

    daemon = config.daemon
    return {
        "source": config.source,
        "daemon": {
            "interval": daemon.interval_seconds,
            "state_dir": str(daemon.state_dir),
            "log_format": daemon.log_format,
            "log_level": daemon.log_level,
            "history_samples": daemon.history_samples,
            "trend_window": daemon.trend_window_seconds,
        },
        "watch": [
            {
                "name": w.name,
                "process_name": w.process_name,
                "cmdline": w.cmdline.pattern if w.cmdline else None,
                "pid": w.pid,
                "pidfile": str(w.pidfile) if w.pidfile else None,
                "user": w.user,
                "include_children": w.include_children,
                "rss_warning": w.rss_warning_bytes,
                "rss_critical": w.rss_critical_bytes,
                "cpu_warning": w.cpu_warning_percent,
                "cpu_critical": w.cpu_critical_percent,
                "sustained": w.sustained,
                "cpu_sustained": w.cpu_sustained,
                "cooldown": w.cooldown_seconds,
            }
            for w in config.watches
        ],
        "sentry": {
            # Shown without its key, so it cannot be pasted back as is.
            "dsn_redacted": redacted(config.sentry.dsn) if config.sentry.dsn else None,
            "environment": config.sentry.environment,
            "flush_interval": config.sentry.flush_interval_seconds,
            "timeout": config.sentry.timeout_seconds,
        },
        "spool": {
            "max_reports": config.spool.max_reports,
            "max_bytes": config.spool.max_bytes,
            "max_age_days": config.spool.max_age_days,
        },
        "otlp": {
            "enabled": config.otlp.listen.enabled,
            "listen": _listen_text(config.otlp.listen),
            "max_body_bytes": config.otlp.max_body_bytes,
            "queue_size": config.otlp.queue_size,
            "max_series_per_metric": config.otlp.max_series_per_metric,
            "retention_days": config.otlp.retention_days,
            "retention_bytes": config.otlp.retention_bytes,
        },
        "metrics": {
            "enabled": config.metrics.enabled,
            "listen": _listen_text(config.metrics),
        },
        "budget": [
            {"agent": b.agent, "daily_usd": b.daily_usd, "monthly_usd": b.monthly_usd,
             "session_usd": b.session_usd}
            for b in config.budgets
        ],
    }


def _listen_text(listen: ListenSettings) -> str:
    host = f"[{listen.host}]" if ":" in listen.host else listen.host
    return f"{host}:{listen.port}"


def environ_snapshot() -> dict[str, str]:
    """The few environment variables config reads (never the whole environment)."""
    keys = ("TELEMETRYD_CONFIG", "SENTRY_DSN", "STATE_DIRECTORY")
    return {key: os.environ[key] for key in keys if key in os.environ}

"""The configuration's shape: frozen dataclasses, and the only place defaults live.

Every default of every key is here: a field default, or for the levels that depend on
the machine's RAM a ``ShareOfRam`` resolved once at load. The parser (``parse.py``)
reads them from these classes; nothing else repeats them. Constructing a value has no
side effects. The state dir's default depends on the environment and the platform: it is
computed in ``locations.py`` (``default_state_dir``), which the fast ``budget check`` path
reads without this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from daemon.config.patterns import SelectorPattern

LogFormat = Literal["json", "console", "auto"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "console", "auto")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ShareOfRam:
    """A size given as a share of the machine's RAM; the parser turns it into bytes once.

    Its text is how the file spells it, and what ``parse_size`` reads:

    >>> str(ShareOfRam(15.0))
    '15%'
    """

    percent: float

    def __str__(self) -> str:
        return f"{self.percent:g}%"


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


@dataclass(frozen=True, kw_only=True)
class WatchRule:
    """One [[watch]] table: which processes to watch and at which levels.

    The RSS levels have no field default: theirs depend on RAM (``RSS_WARNING_DEFAULT``,
    ``RSS_CRITICAL_DEFAULT``, ``ORPHANS_RSS_DEFAULT``). A missing ``cpu_sustained`` takes
    the watch's ``sustained``. ``process_names``, ``exe`` and ``interpreter_cmdline``
    identify a process (any one of them); ``cmdline``, ``pid``, ``pidfile`` and ``user``
    narrow what they found; ``exclude_exe`` and ``exclude_cmdline`` take look-alikes out.
    """

    RSS_WARNING_DEFAULT: ClassVar[ShareOfRam] = ShareOfRam(15.0)
    RSS_CRITICAL_DEFAULT: ClassVar[ShareOfRam] = ShareOfRam(30.0)
    ORPHANS_RSS_DEFAULT: ClassVar[ShareOfRam] = ShareOfRam(5.0)

    name: str
    process_names: tuple[str, ...] = ()
    exe: SelectorPattern | None = None
    interpreter_cmdline: SelectorPattern | None = None
    cmdline: SelectorPattern | None = None
    exclude_exe: SelectorPattern | None = None
    exclude_cmdline: SelectorPattern | None = None
    pid: int | None = None
    pidfile: Path | None = None
    user: str | None = None
    include_children: bool = True
    rss_warning_bytes: int
    rss_critical_bytes: int
    cpu_warning_percent: float = 200.0
    cpu_critical_percent: float = 400.0
    sustained: int = 3
    cpu_sustained: int = 3
    cooldown_seconds: float = 600.0
    orphans_warning: int = 3
    orphans_rss_bytes: int | None = None
    reap_orphans: bool = False
    reap_grace_seconds: float = 5.0
    on_warning: tuple[WatchAction, ...] = ()
    on_critical: tuple[WatchAction, ...] = ()
    on_exit_under_pressure: tuple[WatchAction, ...] = ()
    evidence_node_heap: bool = False  # Node heap snapshot for `wrap` trees (holds secrets)


@dataclass(frozen=True, kw_only=True)
class DaemonSettings:
    """The [daemon] table; a missing ``state_dir`` is ``default_state_dir(environ)``."""

    interval_seconds: float = 2.0
    state_dir: Path
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
class MetricsSettings(ListenSettings):
    """The [metrics] table: the Prometheus listener and its wire limits (GET only, so the
    body limits are fixed, not read from the file)."""

    max_connections: int = 16
    read_timeout_seconds: float = 10.0
    keepalive_timeout_seconds: float = 15.0
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 64 * 1024
    max_inflight_bytes: int = 1024**2


@dataclass(frozen=True)
class OtlpSettings:
    """The [otlp] table: the agent telemetry receiver and its event store."""

    listen: ListenSettings = ListenSettings(True, "127.0.0.1", 4318)
    max_body_bytes: int = 4 * 1024**2
    queue_size: int = 10_000
    max_series_per_metric: int = 2_000
    retention_days: float = 30.0
    retention_bytes: int = 256 * 1024**2
    # Keep prompts, responses, system instructions and tool arguments/results that agents
    # put into attributes (daemon/agents/privacy.py); off, they are never stored.
    store_content: bool = False
    # What one client may cost on the wire (daemon/web/): bodies, inflated bodies, request
    # heads, bodies held at once, connections, and the time a request or an idle keep-alive
    # connection may take.
    max_decompressed_bytes: int = 8 * 1024**2
    max_inflight_bytes: int = 32 * 1024**2
    max_header_bytes: int = 16 * 1024
    max_items_per_request: int = 100_000
    max_connections: int = 32
    read_timeout_seconds: float = 10.0
    keepalive_timeout_seconds: float = 15.0
    # Threads decoding requests (each holds the GIL while it parses).
    decode_concurrency: int = 1
    # Decoded records waiting for the store writer, all requests together (429 past it).
    max_queued_records: int = 50_000
    # What the daemon remembers, whatever clients send (least recently used evicted past
    # the caps; daemon/agents/cardinality.py, series.py). ``max_models`` and ``max_tools``
    # count (agent, model) and (agent, tool) pairs; ``max_sessions`` agent streams.
    max_metrics: int = 1_000
    max_series: int = 30_000
    max_agents: int = 1_000
    max_models: int = 1_000
    max_tools: int = 1_000
    max_sessions: int = 10_000
    series_idle_seconds: float = 3600.0
    # What the daemon keeps of a client's strings, in UTF-8 bytes (docs/security/memory.md).
    # Past a cap a string is cut and marked with a digest of the whole, so it never merges
    # into another one; every cut is counted (telemetryd_otlp_truncated_total{kind}).
    max_attributes: int = 128  # per attribute list; the rest are dropped unread
    max_attribute_key_bytes: int = 256
    max_attribute_value_bytes: int = 512
    max_stored_string_bytes: int = 256  # each string a record keeps (names, ids, attributes)
    max_series_key_bytes: int = 1024  # one series' identity: stream, metric, attributes
    max_series_bytes: int = 24 * 1024**2  # every remembered series together (LRU evicted)
    max_queued_bytes: int = 16 * 1024**2  # records waiting for the store writer (429 past it)
    # Messages (attributes and their values included) a request may parse into: checked on
    # the wire before parsing, 413 past it (an empty attribute is 2 bytes sent, ~56 held).
    max_messages_per_request: int = 250_000
    # How often retention by age runs (the size bound is checked after every write).
    retention_check_seconds: float = 60.0


@dataclass(frozen=True)
class BudgetRule:
    """One [[budget]] table: cost limits per agent, in USD (at least one of the three).

    ``session_usd`` caps each agent session (``telemetryd budget check --session``).
    """

    agent: str
    daily_usd: float | None = None
    monthly_usd: float | None = None
    session_usd: float | None = None


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything telemetryd needs to run, validated."""

    source: str
    daemon: DaemonSettings
    watches: tuple[WatchRule, ...]
    sentry: SentrySettings = SentrySettings()
    spool: SpoolSettings = SpoolSettings()
    otlp: OtlpSettings = OtlpSettings()
    metrics: MetricsSettings = MetricsSettings(True, "127.0.0.1", 9464)
    budgets: tuple[BudgetRule, ...] = ()


_DAY = 86400.0
_TIB = 1 << 40

# The range of every number a config may hold, by key path without the array index
# (inclusive; durations in seconds, sizes in bytes).  ``check-config`` refuses a value
# outside its range with exit 78 and the key path: ``interval = 1e308`` or
# ``flush_interval = "365000d"`` would otherwise overflow a timer when the daemon runs.
RANGES: Mapping[str, tuple[float, float]] = {
    "daemon.interval": (0.01, 3600.0),
    "daemon.history_samples": (2, 1_000_000),
    "daemon.trend_window": (1.0, 30 * _DAY),
    "watch.pid": (1, 4_194_304),  # the kernel's largest pid_max
    "watch.rss_warning": (1, 1 << 50),
    "watch.rss_critical": (1, 1 << 50),
    "watch.cpu_warning": (0.001, 100_000.0),  # percent of one core, up to 1000 cores
    "watch.cpu_critical": (0.001, 100_000.0),
    "watch.sustained": (1, 100_000),
    "watch.cpu_sustained": (1, 100_000),
    "watch.cooldown": (0.001, 365 * _DAY),
    "sentry.flush_interval": (0.01, 7 * _DAY),
    "sentry.timeout": (0.01, 3600.0),
    "spool.max_reports": (1, 1_000_000),
    "spool.max_bytes": (1024, _TIB),
    "spool.max_age_days": (0.0001, 3650.0),
    "otlp.max_body_bytes": (1024, 1 << 30),
    "otlp.queue_size": (1, 1_000_000),
    "otlp.max_series_per_metric": (1, 10_000_000),
    "otlp.retention_days": (0.0001, 3650.0),
    "otlp.retention_bytes": (1024, _TIB),
    "otlp.max_decompressed_bytes": (1024, 1 << 30),
    "otlp.max_inflight_bytes": (64 * 1024, 16 << 30),
    "otlp.max_header_bytes": (1024, 1 << 20),
    "otlp.max_items_per_request": (1, 10_000_000),
    "otlp.max_connections": (1, 10_000),
    "otlp.read_timeout": (0.1, 3600.0),
    "otlp.keepalive_timeout": (0.1, 3600.0),
    "otlp.decode_concurrency": (1, 64),
    "otlp.max_queued_records": (1000, 10_000_000),
    "otlp.max_metrics": (1, 1_000_000),
    "otlp.max_series": (1, 10_000_000),
    "otlp.max_agents": (1, 1_000_000),
    "otlp.max_models": (1, 1_000_000),
    "otlp.max_tools": (1, 1_000_000),
    "otlp.max_sessions": (1, 10_000_000),
    "otlp.series_idle": (1.0, 365 * _DAY),
    "otlp.retention_check_interval": (1.0, _DAY),
    "otlp.max_attributes": (1, 100_000),
    "otlp.max_attribute_key_bytes": (32, 1 << 20),
    "otlp.max_attribute_value_bytes": (32, 1 << 20),
    "otlp.max_stored_string_bytes": (32, 1 << 20),
    "otlp.max_series_key_bytes": (64, 1 << 20),
    "otlp.max_series_bytes": (64 * 1024, 16 << 30),
    "otlp.max_queued_bytes": (1 << 20, 16 << 30),
    "otlp.max_messages_per_request": (1000, 100_000_000),
    "metrics.max_connections": (1, 10_000),
    "metrics.read_timeout": (0.1, 3600.0),
    "metrics.keepalive_timeout": (0.1, 3600.0),
    "metrics.max_header_bytes": (1024, 1 << 20),
    "budget.daily_usd": (0.000001, 1e12),
    "budget.monthly_usd": (0.000001, 1e12),
    "budget.session_usd": (0.000001, 1e12),
}

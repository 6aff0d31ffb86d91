"""The configuration's shape: frozen dataclasses, each key declared once, here.

How to add a key: add one field to its table's class below, declared with the helper of
its kind from ``keys.py`` (``count``, ``number``, ``size``, ``duration``, ``flag``,
``choice``, ``text``; ``listed`` for names, patterns, actions and listen addresses):
its default, its ``range`` (or ``choices``) and a one-line ``doc``, and ``toml="..."``
when the file spells it otherwise than the field (``cooldown`` for ``cooldown_seconds``).
That is all: the parser (``reader.py``) reads it with its range check and key-path
errors, ``check-config`` shows it (``render.py``), and the reference is generated from it
(``python -m daemon.config.reference > docs/configuration.md``; a test fails until the
checked-in file is regenerated). Only a rule between keys (``rss_warning`` below
``rss_critical``) is written by hand, in ``parse.py``. A wire limit of both listeners is
one field of ``WireLimits``, with its default in each table's instance (``OtlpSettings.wire``,
``MetricsSettings.wire``) and its TOML name in the ``keys=`` of each table that reads it.
A new table is a class here and a ``section(...)`` field of ``Config``, plus one line in
``parse.parse_config``.

Every default lives here: a field default, or for the levels that depend on the
machine's RAM a ``ShareOfRam`` resolved once at load. Constructing a value has no side
effects. The state dir's default depends on the environment and the platform: it is
computed in ``locations.py`` (``default_state_dir``), which the fast ``budget check`` path
reads without this module.
"""

# ruff: noqa: RUF009  (a field default here is the Field that keys.py's helpers build)
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from daemon.config.actions import MAX_ACTIONS as MAX_ACTIONS
from daemon.config.actions import ExecAction as ExecAction
from daemon.config.actions import NotifyAction as NotifyAction
from daemon.config.actions import SignalAction as SignalAction
from daemon.config.actions import WatchAction as WatchAction
from daemon.config.guard import GuardSettings as GuardSettings
from daemon.config.keys import (
    DAY,
    TIB,
    Kind,
    ShareOfRam,
    choice,
    count,
    duration,
    flag,
    flatten,
    listed,
    number,
    part_of,
    section,
    size,
    text,
)
from daemon.config.patterns import MAX_PATTERN_CHARS, SelectorPattern

if TYPE_CHECKING:  # read (with PyYAML) only when a config names a web config file
    from daemon.config.files.web_config import WebConfig

LogFormat = Literal["json", "console", "auto"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "console", "auto")
LOG_LEVELS = ("debug", "info", "warning", "error")
# Whose telemetry the OTLP receiver takes ([otlp] trust; docs/security/budgets.md): "any"
# local sender, senders in a "watched" agent's process tree or carrying the token
# `telemetryd wrap` gives its child, or only senders with that "token".
OtlpTrust = Literal["any", "watched", "token"]
OTLP_TRUST_MODES: tuple[OtlpTrust, ...] = ("any", "watched", "token")


_ACTIONS = (0, MAX_ACTIONS)
_PATTERN = (1, MAX_PATTERN_CHARS)
_CPU = (0.001, 100_000.0)  # percent of one core, up to 1000 cores
_USD = (0.000001, 1e12)
_SELECTS = "; any one of process_name, exe, interpreter_cmdline finds a process"


@dataclass(frozen=True, kw_only=True)
class WatchRule:
    """One [[watch]] table: which processes to watch and at which levels.

    The RSS levels default to a share of RAM, resolved at load. A missing
    ``cpu_sustained`` takes the watch's ``sustained``. ``process_names``, ``exe`` and
    ``interpreter_cmdline`` identify a process (any one of them); ``cmdline``, ``pid``,
    ``pidfile`` and ``user`` narrow what they found; ``exclude_exe`` and
    ``exclude_cmdline`` take look-alikes out.
    """

    name: str = text(doc="The watch's name, unique, shown in reports and on the page.")
    process_names: tuple[str, ...] = listed(
        (), kind=Kind.NAMES, range=(0, 1024), toml="process_name",
        doc="Process name, exe base name or argv0 base name" + _SELECTS + ".")
    exe: SelectorPattern | None = listed(
        None, kind=Kind.SELECTOR, range=_PATTERN, doc="Pattern searched in the executable's path.")
    interpreter_cmdline: SelectorPattern | None = listed(
        None, kind=Kind.SELECTOR, range=_PATTERN,
        doc="Pattern searched in the command line of an interpreter (node, python, "
        "bun, deno, uv, npm exec) only.")
    cmdline: SelectorPattern | None = listed(
        None, kind=Kind.SELECTOR, range=_PATTERN,
        doc="Pattern any process's command line must match (narrows the others).")
    exclude_exe: SelectorPattern | None = listed(
        None, kind=Kind.SELECTOR, range=_PATTERN, doc="Executables left out (look-alikes).")
    exclude_cmdline: SelectorPattern | None = listed(
        None, kind=Kind.SELECTOR, range=_PATTERN, doc="Command lines left out (look-alikes).")
    pid: int | None = count(None, range=(1, 4_194_304),  # the kernel's largest pid_max
                            doc="Watch this pid only.")
    pidfile: Path | None = text(None, kind=Kind.PATH, doc="Watch the pid this file holds.")
    user: str | None = text(None, doc="Only processes of this user.")
    include_children: bool = flag(True, doc="Totals include the whole process tree under "
                                  "each match.")
    rss_warning_bytes: int = size(range=(1, 1 << 50), ram=ShareOfRam(15.0), toml="rss_warning",
                                  doc="Tree RSS at which the watch warns.")
    rss_critical_bytes: int = size(range=(1, 1 << 50), ram=ShareOfRam(30.0),
                                   toml="rss_critical",
                                   doc="Tree RSS at which it is critical (a report).")
    cpu_warning_percent: float = number(200.0, range=_CPU, toml="cpu_warning",
                                        doc="CPU percent of one core at which it warns.")
    cpu_critical_percent: float = number(400.0, range=_CPU, toml="cpu_critical",
                                         doc="CPU percent of one core at which it is critical.")
    sustained: int = count(3, range=(1, 100_000),
                           doc="Consecutive samples over a level before it fires.")
    cpu_sustained: int = count(3, range=(1, 100_000), default_from="sustained",
                               doc="The same for CPU.")
    cooldown_seconds: float = duration(600.0, range=(0.001, 365 * DAY), toml="cooldown",
                                       doc="Time before another report for the same process "
                                       "and kind.")
    orphans_warning: int = count(3, range=(1, 100_000),
                                 doc="Processes left behind by an exited agent before a report.")
    orphans_rss_bytes: int | None = size(None, range=(1, 1 << 50), ram=ShareOfRam(5.0),
                                         toml="orphans_rss",
                                         doc="... or their total RSS.")
    reap_orphans: bool = flag(False, doc="Terminate what an exited agent left behind.")
    reap_grace_seconds: float = duration(5.0, range=(0.001, DAY), toml="reap_grace",
                                         doc="SIGTERM, then SIGKILL after this long.")
    evidence_node_heap: bool = flag(False, doc="Node heap snapshot for `wrap` trees "
                                    "(it holds secrets).")
    on_warning: tuple[WatchAction, ...] = listed(
        (), kind=Kind.ACTIONS, range=_ACTIONS, doc="Actions run at the warning level.")
    on_critical: tuple[WatchAction, ...] = listed(
        (), kind=Kind.ACTIONS, range=_ACTIONS, doc="Actions run at the critical level.")
    on_exit_under_pressure: tuple[WatchAction, ...] = listed(
        (), kind=Kind.ACTIONS, range=_ACTIONS,
        doc="Actions run when the tree ends while critical.")
    on_guard: tuple[WatchAction, ...] = listed(
        (), kind=Kind.ACTIONS, range=_ACTIONS, doc="Actions run when a [guard] rule fires on "
        "this watch.")
    guard: bool = flag(True, doc="The [guard] rules watch this watch's trees (fork_storm, "
                       "idle_spin...).")


@dataclass(frozen=True, kw_only=True)
class DaemonSettings:
    """The [daemon] table; a missing ``state_dir`` is ``default_state_dir(environ)``."""

    interval_seconds: float = number(2.0, range=(0.01, 3600.0), toml="interval",
                                     doc="Seconds between samples.")
    state_dir: Path = text(kind=Kind.PATH, default_text="$STATE_DIRECTORY, or "
                           "/var/lib/telemetryd as root, or the user's state dir",
                           doc="Where reports, stores and status.json live.")
    log_format: LogFormat = choice("auto", choices=LOG_FORMATS,
                                   doc="Log lines as JSON, for a console, or auto (a tty).")
    log_level: str = choice("info", choices=LOG_LEVELS, doc="The least level logged.")
    history_samples: int = count(120, range=(2, 1_000_000), minimum=2,
                                 doc="Samples kept per process (attached to a report).")
    trend_window_seconds: float = duration(120.0, range=(1.0, 30 * DAY), toml="trend_window",
                                           doc="Window for the RSS growth rate.")
    # Growth and time to critical are shown ("—" until then) only this long after a process
    # started: agents load and allocate fast in their first minute, which is no leak.
    trend_startup_seconds: float = duration(60.0, range=(0.0, DAY), toml="trend_startup",
                                            doc="How long after a process starts its growth "
                                            "and time to critical are shown.")


# ... and from at least this many points spanning at least half the trend window.
TREND_MIN_POINTS = 6
TREND_MIN_SPAN_FRACTION = 0.5


@dataclass(frozen=True)
class SentrySettings:
    """The [sentry] table; no DSN means nothing ever leaves the machine."""

    dsn: str | None = text(None, kind=Kind.SECRET, default_text="$SENTRY_DSN, else none",
                           doc="Where reports go; none keeps them on this machine.")
    environment: str = text("production", doc="The Sentry environment of every report.")
    flush_interval_seconds: float = duration(300.0, range=(0.01, 7 * DAY),
                                             toml="flush_interval",
                                             doc="How often the spool is delivered.")
    timeout_seconds: float = duration(10.0, range=(0.01, 3600.0), toml="timeout",
                                      doc="Seconds per upload.")


@dataclass(frozen=True)
class SpoolSettings:
    """The [spool] table: bounds on what the report spool keeps."""

    max_reports: int = count(200, range=(1, 1_000_000), doc="Reports kept at most.")
    max_bytes: int = size(64 * 1024**2, range=(1024, TIB), doc="Bytes of reports kept at most.")
    max_age_days: float = number(30.0, range=(0.0001, 3650.0),
                                 doc="Days a report is kept undelivered.")
    disk_reserve_bytes: int = size(32 * 1024**2, range=(1, TIB), toml="disk_reserve",
                                   doc="Free space kept for reports: below it the agent event "
                                   "store and the stats stop writing.")


@dataclass(frozen=True, kw_only=True)
class WireLimits:
    """What one listener allows on the wire ([otlp] and [metrics]; enforced by
    ``daemon/web/``); each table's default is its own instance."""

    max_connections: int = count(range=(1, 10_000), doc="Connections at once: past it the "
                                 "oldest idle one is closed; all busy: 503.")
    read_timeout_seconds: float = duration(range=(0.1, 3600.0), toml="read_timeout",
                                           doc="Time for a request head, and for a body, "
                                           "to arrive whole.")
    keepalive_timeout_seconds: float = duration(range=(0.1, 3600.0), toml="keepalive_timeout",
                                                doc="Time an idle keep-alive connection "
                                                "stays open.")
    write_timeout_seconds: float = duration(range=(0.1, 3600.0), toml="write_timeout",
                                            doc="Time an answer (a /metrics scrape of several "
                                            "MB) has to leave the write buffer.")
    max_header_bytes: int = size(range=(1024, 1 << 20), doc="Request line and headers.")
    max_body_bytes: int = size(range=(1024, 1 << 30),
                               doc="A request body as sent (chunked or not).")
    max_decompressed_bytes: int = size(range=(1024, 1 << 30),
                                       doc="... once inflated (at least max_body_bytes).")
    max_inflight_bytes: int = size(range=(64 * 1024, 16 << 30),
                                   doc="Bodies held at once, all clients together "
                                   "(at least max_decompressed_bytes).")

    def mismatch(self) -> tuple[str, str] | None:
        """(key, message) when the limits contradict each other: a body that is not
        compressed counts against the inflated limit too, and one request of the largest
        size must fit in the bytes held at once."""
        if self.max_decompressed_bytes < self.max_body_bytes:
            return "max_decompressed_bytes", (f"must be at least max_body_bytes "
                                              f"({self.max_decompressed_bytes} < "
                                              f"{self.max_body_bytes})")
        if self.max_inflight_bytes < self.max_decompressed_bytes:
            return "max_inflight_bytes", (f"must be at least max_decompressed_bytes "
                                          f"({self.max_inflight_bytes} < "
                                          f"{self.max_decompressed_bytes})")
        return None


@dataclass(frozen=True)
class ListenSettings:
    """A loopback listener that can be switched off ([otlp], [metrics])."""

    enabled: bool = flag(doc="Serve this listener (false: off).")
    host: str = listed(kind=Kind.LISTEN, range=(0, 65535), toml="listen",
                       doc="Address and port to listen on (port 0: any free port).")
    port: int = part_of()


@dataclass(frozen=True)
class MetricsSettings(ListenSettings):
    """The [metrics] table: the Prometheus listener and its wire limits (GET only, so the
    body limits are fixed, not read from the file).

    ``web_config_file`` (an absolute path) is an exporter-toolkit web config: TLS and basic
    auth for every page of the listener (``daemon/config/files/web_config.py``). A listen address
    off loopback needs one, unless ``allow_unauthenticated`` says so on purpose.
    """

    wire: WireLimits = flatten(WireLimits(
        max_connections=16, read_timeout_seconds=10.0, keepalive_timeout_seconds=15.0,
        write_timeout_seconds=10.0, max_header_bytes=16 * 1024, max_body_bytes=64 * 1024,
        max_decompressed_bytes=64 * 1024, max_inflight_bytes=1024**2,
    ), keys=("max_connections", "read_timeout", "keepalive_timeout", "write_timeout",
             "max_header_bytes"))
    web_config_file: Path | None = text(
        None, kind=Kind.PATH, doc="An exporter-toolkit web config (absolute path): TLS and "
        "basic auth on every page of this listener (docs/fleet.md).")
    allow_unauthenticated: bool = flag(False, doc="Listen off loopback without a "
                                       "web_config_file, on purpose.")


_COUNT = (1, 1_000_000)


@dataclass(frozen=True, kw_only=True)
class OtlpSettings:
    """The [otlp] table: the agent telemetry receiver, its wire limits, what the daemon
    remembers whatever clients send (least recently used evicted past the caps;
    daemon/agents/decoding/cardinality.py, series.py) and the event store's retention."""

    listen: ListenSettings = flatten(ListenSettings(True, "127.0.0.1", 4318),
                                     keys=("enabled", "listen"))
    wire: WireLimits = flatten(WireLimits(
        max_connections=32, read_timeout_seconds=10.0, keepalive_timeout_seconds=15.0,
        write_timeout_seconds=10.0, max_header_bytes=16 * 1024, max_body_bytes=4 * 1024**2,
        max_decompressed_bytes=8 * 1024**2, max_inflight_bytes=32 * 1024**2,
    ), keys=("max_connections", "read_timeout", "keepalive_timeout", "write_timeout",
             "max_header_bytes", "max_body_bytes", "max_decompressed_bytes",
             "max_inflight_bytes"))
    queue_size: int = count(10_000, range=_COUNT,
                            doc="Decoded requests waiting for the store writer "
                            "(429 past it).")
    max_series_per_metric: int = count(2_000, range=(1, 10_000_000),
                                       doc="New series past it are refused (partial success).")
    retention_days: float = number(30.0, range=(0.0001, 3650.0),
                                   doc="events.db: events and hourly rows older than this go.")
    retention_bytes: int = size(256 * 1024**2, range=(1024, TIB),
                                doc="... and the oldest go past this size (on disk).")
    store_content: bool = flag(False, doc="Keep prompts, responses and tool arguments agents "
                               "send (daemon/agents/decoding/privacy.py); off, never stored.")
    max_items_per_request: int = count(100_000, range=(1, 10_000_000),
                                       doc="Resources, scopes, metrics, points and log "
                                       "records in one request.")
    decode_concurrency: int = count(1, range=(1, 64), doc="Threads decoding requests "
                                    "(each holds the GIL while it parses).")
    max_queued_records: int = count(50_000, range=(1000, 10_000_000),
                                    doc="Decoded records waiting for the store writer, all "
                                    "requests together (429 past it).")
    max_metrics: int = count(1_000, range=_COUNT, doc="Distinct metric names remembered.")
    max_series: int = count(30_000, range=(1, 10_000_000),
                            doc="Series over all metrics remembered.")
    max_agents: int = count(1_000, range=_COUNT, doc="Agents (service names) with all-time totals.")
    max_models: int = count(1_000, range=_COUNT, doc="(agent, model) pairs with all-time totals.")
    max_tools: int = count(1_000, range=_COUNT, doc="(agent, tool) pairs with all-time totals.")
    max_sessions: int = count(10_000, range=(1, 10_000_000),
                              doc="Agent streams (instance, session or pid) "
                            "cached in memory.")
    series_idle_seconds: float = duration(3600.0, range=(1.0, 365 * DAY), toml="series_idle",
                                          doc="A series not seen this long is forgotten.")
    # Byte caps (UTF-8): a cut string ends with a digest of the whole (docs/security/memory.md).
    max_attributes: int = count(128, range=(1, 100_000),
                                doc="Attributes kept per attribute list; the rest are "
                                "dropped unread.")
    max_attribute_key_bytes: int = size(256, range=(32, 1 << 20),
                                        doc="An attribute key past it is cut (and marked).")
    max_attribute_value_bytes: int = size(512, range=(32, 1 << 20),
                                          doc="An attribute value past it is cut (and marked).")
    max_stored_string_bytes: int = size(256, range=(32, 1 << 20),
                                        doc="Each string a record keeps (names, ids, "
                                        "attributes) past it is cut (and marked).")
    max_series_key_bytes: int = size(1024, range=(64, 1 << 20),
                                     doc="One series' identity (stream, metric, attributes).")
    max_series_bytes: int = size(24 * 1024**2, range=(64 * 1024, 16 << 30),
                                 doc="Every remembered series together (least recently "
                                 "used evicted).")
    max_queued_bytes: int = size(16 * 1024**2, range=(1 << 20, 16 << 30),
                                 doc="Records waiting for the store writer, in memory "
                                 "(429 past it).")
    max_messages_per_request: int = count(250_000, range=(1000, 100_000_000),
                                          doc="Messages (attributes included) a request may "
                                          "parse into, counted on the wire (413 past it).")
    retention_check_seconds: float = duration(
        60.0, range=(1.0, DAY), toml="retention_check_interval",
        doc="How often retention by age runs (the size bound is checked after every write).")
    trust: OtlpTrust = choice(
        "watched", choices=OTLP_TRUST_MODES,
        doc="Whose telemetry counts: any local sender, watched agents' trees and `wrap`'s "
        "children, or only senders with `wrap`'s token (docs/security/budgets.md).")


@dataclass(frozen=True)
class BudgetRule:
    """One [[budget]] table: cost limits per agent, in USD (at least one of the three).

    ``session_usd`` caps each agent session (``telemetryd budget check --session``).
    """

    agent: str = text(doc="The agent (or one of its service names, or its "
                    "watch).")
    daily_usd: float | None = number(None, range=_USD, doc="USD per day at most.")
    monthly_usd: float | None = number(None, range=_USD, doc="USD per month at most.")
    session_usd: float | None = number(None, range=_USD,
                                       doc="USD per agent session: what `budget check` "
                                     "enforces.")


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything telemetryd needs to run, validated."""

    source: str
    daemon: DaemonSettings = section(toml="daemon", settings=DaemonSettings,
                                     doc="The daemon itself.")
    watches: tuple[WatchRule, ...] = section(toml="watch", settings=WatchRule, array=True,
                                             doc="What to watch and at which levels.")
    sentry: SentrySettings = section(SentrySettings(), toml="sentry", settings=SentrySettings,
                                     doc="Where reports go.")
    spool: SpoolSettings = section(SpoolSettings(), toml="spool", settings=SpoolSettings,
                                   doc="What the report spool keeps.")
    otlp: OtlpSettings = section(OtlpSettings(), toml="otlp", settings=OtlpSettings,
                                 doc="The agents' telemetry (OTLP/HTTP) receiver.")
    metrics: MetricsSettings = section(MetricsSettings(True, "127.0.0.1", 9464), toml="metrics",
                                       settings=MetricsSettings,
                                       doc="The Prometheus listener and the status page.")
    budgets: tuple[BudgetRule, ...] = section((), toml="budget", settings=BudgetRule, array=True,
                                              doc="Cost limits per agent.")
    guard: GuardSettings = section(GuardSettings(), toml="guard", settings=GuardSettings,
                                   doc="Behaviour rules over watched trees and their agents' "
                                   "telemetry (docs/guard.md).")
    # Not a table: the file [metrics] web_config_file names, read when the config is loaded
    # (and again on every reload, so new users and rotated certificates take effect).
    web: WebConfig | None = None

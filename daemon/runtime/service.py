"""The daemon's life cycle: startup, tick, reload, shutdown, and the signals that drive them."""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import psutil
import sentry_sdk
import structlog

from crash_reports.delivery.flusher import Flusher, FlushResult
from crash_reports.delivery.worker import FlushWorker
from crash_reports.event.system_facts import SystemFacts
from crash_reports.spool.store import Dropped, Spool
from crash_reports.spool.transport import SpoolTransport
from daemon import __version__
from daemon.agents.link import AgentLink
from daemon.config.schema import Config, ConfigError, WatchRule, describe
from daemon.runtime.crash_hooks import capture_exception, describe_job_error, install_crash_hooks
from daemon.runtime.delivery import make_flusher, open_spool, spool_limits
from daemon.runtime.lock import InstanceLock
from daemon.runtime.notify import Notifier
from daemon.runtime.paths import StatePaths
from daemon.runtime.reporting import ReportWriter
from daemon.runtime.scheduler import make_scheduler, reschedule
from daemon.runtime.stats_recorder import StatsRecorder
from daemon.runtime.status import STATUS_VERSION, write_snapshot
from daemon.runtime.wrapped import pids_by_watch, read_announced, with_wrapped_watch
from daemon.watch.monitor import LogEvent, Monitor, ReportRequest, TrackedProcess
from daemon.watch.proctable import ProcessTable, default_process_table
from daemon.watch.sampler import Sampler, TickSample
from daemon.web.metrics import DaemonMetricsCollector, is_flush_failure
from daemon.web.metrics_server import MetricsServer, serve_metrics

log = structlog.get_logger("telemetryd")

ConfigLoader = Callable[[], Config]


class StartupError(Exception):
    """The daemon cannot start; the message says why and what to do."""


def make_sentry_client(transport: SpoolTransport, config: Config) -> sentry_sdk.Client:
    """A sentry-sdk client whose only transport is the spool (it never sends by itself)."""
    return sentry_sdk.Client(
        transport=transport,
        default_integrations=False,
        auto_enabling_integrations=False,
        include_local_variables=False,
        server_name=None,
        release=f"telemetryd@{__version__}",
        environment=config.sentry.environment,
        max_breadcrumbs=0,
    )


def _watches(config: Config) -> tuple[WatchRule, ...]:
    """The configured watches plus the one ``telemetryd wrap`` children join by default."""
    return with_wrapped_watch(config.watches, psutil.virtual_memory().total)


class Service:
    """Owns everything the running daemon holds and the order it is set up and torn down in."""

    def __init__(
        self,
        config: Config,
        *,
        notifier: Notifier | None = None,
        config_loader: ConfigLoader | None = None,
        process_table: ProcessTable | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        system_facts: SystemFacts | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier or Notifier.from_environ({})
        self.config_loader = config_loader
        self.clock = clock
        self.monotonic = monotonic
        self.paths = StatePaths(config.daemon.state_dir)
        self.process_table = process_table or default_process_table()
        self.system = system_facts or SystemFacts()
        watches = _watches(config)
        self.sampler = Sampler(self.process_table, watches)
        self.monitor = Monitor(watches, config.daemon.history_samples,
                               config.daemon.trend_window_seconds)
        self.lock = InstanceLock(self.paths.lock)
        self.stop_requested = threading.Event()
        self.reload_requested = threading.Event()
        self.started_at = clock()
        self.tick_count = 0
        self.last_tick: dict[str, Any] | None = None
        self.ready_sent = False
        self._oom_kills: int | None = None
        self._self_process = psutil.Process()
        self._tick_lock = threading.Lock()
        self.spool: Spool | None = None
        self.transport: SpoolTransport | None = None
        self.client: sentry_sdk.Client | None = None
        self.reports: ReportWriter | None = None
        self.scheduler: Any = None
        self.flusher: Flusher | None = None
        self.stats: StatsRecorder | None = None
        self.agents: AgentLink | None = None
        self.metrics: DaemonMetricsCollector | None = None
        self.metrics_server: MetricsServer | None = None
        self.last_snapshot: dict[str, Any] | None = None
        self.reports_dropped = 0
        self.flush_failures = 0
        self.flush_worker: FlushWorker | None = None
        self.reports_written = 0
        self._restore_hooks: Callable[[], None] | None = None
        self._last_tick_done: float | None = None
        self._last_ping = 0.0
        self._described: tuple[Config, dict[str, Any]] | None = None

    # --- life cycle -----------------------------------------------------------

    def startup(self) -> None:
        """Check the state dir, take the lock, open the spool, start the scheduler."""
        try:
            self.paths.ensure()
        except OSError as exc:
            raise StartupError(
                f"state dir {self.paths.root} is not usable: {exc.strerror or exc}; "
                "set [daemon] state_dir to a writable directory"
            ) from None
        self.lock.acquire()
        self.stats = StatsRecorder(self.paths.stats_db)
        self.stats.start(self.clock())
        self.spool = open_spool(self.config, on_drop=self._report_dropped)
        self.transport = SpoolTransport(self.spool, on_put=self._report_spooled)
        self.client = make_sentry_client(self.transport, self.config)
        self.agents = AgentLink(self.config, self.paths.events_db, self.paths.budgets)
        self.reports = ReportWriter(self.client, self.spool, self.system,
                                    self.config.sentry.environment,
                                    agent_context=self.agents.context_for,
                                    stats_context=self.stats.recent)
        self._restore_hooks = install_crash_hooks(self.client)
        log.info("config.loaded", source=self.config.source, watches=len(self.config.watches),
                 interval=self.config.daemon.interval_seconds,
                 state_dir=str(self.paths.root))
        log.info("daemon.starting", pid=os.getpid(), version=__version__,
                 pending_reports=self.spool.pending_count())
        for what, host in (("otlp", self.config.otlp.listen.host),
                           ("metrics", self.config.metrics.host)):
            if not _is_loopback(host):
                log.warning("listen.not_loopback", listener=what, host=host,
                            reason="reachable from other machines; nothing authenticates it")
        self.agents.start()
        self._start_metrics()
        self.scheduler = make_scheduler(
            self.tick, self.config.daemon.interval_seconds, self._on_job_error,
            on_missed=lambda: log.warning("tick.missed"),
        )
        self.scheduler.start()
        # After the scheduler: the first sample never waits behind a backlog of reports.
        self._start_delivery()

    def tick(self) -> None:
        """Sample, evaluate, act, publish status; one run at a time."""
        with self._tick_lock:
            started = self.monotonic()
            now = self.clock()
            announced = pids_by_watch(read_announced(self.paths.wrapped))
            sample = self.sampler.sample(started, now, announced)
            evidence = self._oom_evidence()
            actions = self.monitor.observe(sample, evidence.get("oom_kill_delta"))
            if self.stats is not None:
                self.stats.observe(sample, actions)
            for action in actions:
                if isinstance(action, LogEvent):
                    self._log(action)
                    self._after_log(action)
                elif isinstance(action, ReportRequest):
                    self._write_report(action, evidence)
            if self.transport is not None and self.transport.held_count:
                self.transport.retry_failed_writes()
            if self.stats is not None and self.client is not None:
                self.stats.ship_due(self.client, now)
            if self.agents is not None:
                self.agents.check_budgets(self.client, now)
            duration = self.monotonic() - started
            if self.metrics is not None:
                self.metrics.observe_tick(duration)
            self.tick_count += 1
            self.last_tick = {"at": now, "duration_seconds": round(duration, 6),
                              "processes_scanned": sample.processes_scanned,
                              "count": self.tick_count}
            self._publish_status(sample)
            if self.stats is not None:
                self.stats.tick_done(now, duration)
            if not self.ready_sent:
                log.info("daemon.ready", first_tick_ms=round(duration * 1000, 2))
                self.notifier.ready()
                self.ready_sent = True
            self._last_tick_done = self.monotonic()
            self._ping_watchdog()

    def reload(self) -> bool:
        """Load the config again; a bad one is logged and the old one stays in force."""
        if self.config_loader is None:
            return False
        self.notifier.reloading()
        try:
            new = self.config_loader()
        except ConfigError as exc:
            log.error("config.error", source=exc.source, key=exc.key, error=exc.message,
                      action="kept the previous config")
            self.notifier.ready()
            return False
        if new.daemon.state_dir != self.config.daemon.state_dir:
            log.warning("config.reload_ignored", key="daemon.state_dir",
                        reason="the state dir changes only on restart")
        if new.metrics != self.config.metrics or new.otlp != self.config.otlp:
            log.warning("config.reload_ignored", key="metrics/otlp",
                        reason="listeners change only on restart")
        old = self.config
        with self._tick_lock:
            self.config = _keep_state_dir(new, old)
            self.sampler.set_rules(_watches(new))
            self.monitor.set_rules(_watches(new))
            self.monitor.history_samples = new.daemon.history_samples
            self.monitor.trend_window_seconds = new.daemon.trend_window_seconds
            if self.scheduler is not None:
                reschedule(self.scheduler, new.daemon.interval_seconds)
            if self.spool is not None:
                self.spool.limits = spool_limits(new)
            if self.reports is not None:
                self.reports.environment = new.sentry.environment
            if self.agents is not None:
                self.agents.set_budgets(new)
        if new.sentry != old.sentry:
            self._restart_delivery()
        from daemon.runtime.logs import configure_logging

        configure_logging(new.daemon.log_format, new.daemon.log_level)
        log.info("config.loaded", source=new.source, watches=len(new.watches),
                 interval=new.daemon.interval_seconds, reload=True)
        self.notifier.ready()
        return True

    def shutdown(self) -> None:
        """Stop the scheduler (letting a running tick finish), publish a final status."""
        self.notifier.stopping()
        if self.metrics_server is not None:
            self.metrics_server.stop()
            self.metrics_server = None
        if self.agents is not None:
            self.agents.stop()
        if self.flush_worker is not None:
            self.flush_worker.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        self._publish_status(None, stopped=True)
        if self.stats is not None:
            self.stats.stop(self.clock())
            self.stats = None
        if self._restore_hooks is not None:
            self._restore_hooks()
            self._restore_hooks = None
        if self.client is not None:
            self.client.close(timeout=1.0)
        log.info("daemon.stopped", ticks=self.tick_count, reports_written=self.reports_written)
        self.lock.release()

    def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, reloading on SIGHUP; restore signal handlers."""
        previous = self._install_signal_handlers()
        try:
            self.startup()
            try:
                while not self.stop_requested.is_set():
                    self.stop_requested.wait(0.5)
                    self._keepalive()
                    if self.reload_requested.is_set():
                        self.reload_requested.clear()
                        try:
                            self.reload()
                        except Exception as exc:  # keep serving on the old config
                            log.error("config.reload_failed", error=repr(exc))
                            if self.client is not None:
                                capture_exception(self.client, exc, "reload")
            except BaseException as exc:
                if self.client is not None and not isinstance(exc, KeyboardInterrupt):
                    log.error("daemon.crashed", error=repr(exc))
                    capture_exception(self.client, exc, "main")
                raise
            finally:
                self.shutdown()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _ping_watchdog(self) -> None:
        self.notifier.watchdog()
        self._last_ping = self.monotonic()

    def _keepalive(self) -> None:
        """Ping systemd's watchdog between ticks when the interval is longer than it allows.

        Only while ticks are on time: if sampling hangs, the pings stop and systemd
        restarts the daemon, which is what the watchdog is for.
        """
        ping_every = self.notifier.watchdog_ping_seconds()
        if ping_every is None or self._last_tick_done is None:
            return
        now = self.monotonic()
        on_time = now - self._last_tick_done <= self.config.daemon.interval_seconds * 1.5 + 5
        if on_time and now - self._last_ping >= ping_every:
            self._ping_watchdog()

    def request_stop(self) -> None:
        """Ask the main loop to stop (thread-safe)."""
        self.stop_requested.set()

    # --- helpers --------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous

        def on_stop(signum: int, frame: FrameType | None) -> None:
            log.info("daemon.signal", signal=signal.Signals(signum).name, action="stop")
            self.stop_requested.set()

        def on_reload(signum: int, frame: FrameType | None) -> None:
            log.info("daemon.signal", signal="SIGHUP", action="reload")
            self.reload_requested.set()

        for signum, handler in ((signal.SIGTERM, on_stop), (signal.SIGINT, on_stop),
                                (signal.SIGHUP, on_reload)):
            previous[signum] = signal.signal(signum, handler)
        return previous

    def _on_job_error(self, exc: BaseException | None, tb: Any) -> None:
        text = "".join(traceback.format_exception(exc)) if exc else str(tb)
        log.error("tick.error", error=describe_job_error(exc, tb), traceback=text)
        if self.client is not None and exc is not None:
            capture_exception(self.client, exc, "scheduler")

    def _start_delivery(self) -> None:
        assert self.spool is not None
        self.flusher = make_flusher(self.config, self.spool)
        self.flush_worker = FlushWorker(self.flusher, self.config.sentry.flush_interval_seconds,
                                        on_result=self._on_flush_result)
        self.flush_worker.start()
        if not self.config.sentry.dsn:
            log.info("flush.disabled", reason="no Sentry DSN configured; reports stay local",
                     spool=str(self.paths.spool))

    def _restart_delivery(self) -> None:
        """A new [sentry] table: stop the flush thread and start one for the new target."""
        if self.flush_worker is not None:
            self.flush_worker.stop()
        self._start_delivery()
        assert self.flusher is not None
        log.info("flush.configured", target=self.flusher.state().target,
                 flush_interval=self.config.sentry.flush_interval_seconds)

    def _start_metrics(self) -> None:
        if not self.config.metrics.enabled or self.agents is None:
            return
        telemetry = self.agents.telemetry
        self.metrics = DaemonMetricsCollector(lambda: self.last_snapshot, telemetry.stats,
                                              telemetry.reader)
        try:
            self.metrics_server = serve_metrics(self.config.metrics.host,
                                                self.config.metrics.port, self.metrics)
        except OSError as exc:
            log.error("metrics.listen_failed", host=self.config.metrics.host,
                      port=self.config.metrics.port, error=exc.strerror or str(exc))
            return

    def _report_dropped(self, item: Dropped) -> None:
        self.reports_dropped += 1
        if self.stats is not None:
            self.stats.dropped(item)

    def _report_spooled(self, report_id: str) -> None:
        if self.flush_worker is not None:
            self.flush_worker.trigger()

    def _on_flush_result(self, result: FlushResult) -> None:
        """Called on the flush thread: count deliveries, mark stats periods shipped."""
        if is_flush_failure(result.status):
            self.flush_failures += 1
        if self.stats is not None and self.spool is not None:
            self.stats.flush_result(self.spool, result)

    def _log(self, action: LogEvent) -> None:
        getattr(log, action.level)(action.event, **action.fields)

    def _after_log(self, action: LogEvent) -> None:
        if self.reports is None:
            return
        if action.event in ("threshold.warning", "threshold.critical"):
            watch = action.fields["watch"]
            process_key = self._key_of(watch, action.fields["pid"])
            if process_key is None:
                return
            key = (watch, process_key)
            tracked = self.monitor.tracked.get(key)
            if tracked is not None and key not in self.reports.details:
                self.reports.remember(tracked)

    def _key_of(self, watch: str, pid: int) -> tuple[int, int] | None:
        for (tracked_watch, key) in self.monitor.tracked:
            if tracked_watch == watch and key[0] == pid:
                return key
        return None

    def _oom_evidence(self) -> dict[str, Any]:
        # Read every tick (one small /proc read): the OOM killer may strike in the same
        # interval a process first crosses warning, and the delta needs a baseline.
        current = self.system.oom_kill_count()
        before = self._oom_kills
        self._oom_kills = current
        if current is None or before is None:
            return {}
        return {"oom_kill_total": current, "oom_kill_delta": current - before}

    def _write_report(self, request: ReportRequest, evidence: dict[str, Any]) -> None:
        assert self.reports is not None
        pressure_kinds = ("exited_under_pressure", "child_oom_killed")
        extra = dict(evidence) if request.kind in pressure_kinds else {}
        if request.kind in pressure_kinds:
            extra["level"] = request.process.level.label
        if request.gone_pids:
            extra["gone_pids"] = list(request.gone_pids)
            if request.samples:
                extra["rss_bytes_before"] = request.samples[-1].rss_bytes
        try:
            report_id = self.reports.write(request, extra)
        except Exception as exc:  # a report must never stop sampling
            log.error("report.error", watch=request.process.watch, pid=request.process.pid,
                      kind=request.kind, error=repr(exc))
            return
        finally:
            if request.kind == "exited_under_pressure":
                self.reports.forget(request.process)
        if report_id is not None:
            self.reports_written += 1
            if self.stats is not None:
                self.stats.report_written(request)

    def status_snapshot(self, sample: TickSample | None, stopped: bool = False) -> dict[str, Any]:
        """The status document for ``telemetryd status``."""
        # Grouped in one pass: this runs every tick, over every tracked process.
        by_watch: dict[str, list[TrackedProcess]] = {}
        for (watch, _key), tracked in sorted(self.monitor.tracked.items()):
            by_watch.setdefault(watch, []).append(tracked)
        watches = []
        rules = list(self.config.watches)
        # The default watch of `telemetryd wrap` shows while it has children.
        rules += [rule for name, rule in self.monitor.rules.items()
                  if name in by_watch and rule not in rules]
        for rule in rules:
            processes = []
            for tracked in by_watch.get(rule.name, ()):
                sample_now = tracked.last
                note = ("access denied (totals from /proc/PID/stat only)"
                        if sample_now.access_denied else "")
                processes.append({
                    "pid": tracked.pid,
                    "name": sample_now.name,
                    "create_time": sample_now.create_time,
                    "rss_bytes": sample_now.rss_bytes,
                    "cpu_percent": sample_now.cpu_percent,
                    "members": sample_now.members,
                    "state": tracked.level.label,
                    "rss_level": tracked.rss.level.label,
                    "cpu_level": tracked.cpu.level.label,
                    "samples_over": max(tracked.rss.over_warning, tracked.cpu.over_warning),
                    "rate_bytes_per_min": tracked.rate_bytes_per_min,
                    "eta_seconds": tracked.eta_seconds,
                    "note": note,
                })
            if sample is not None:
                for tree in sample.by_watch.get(rule.name, []):
                    if tree.zombie:
                        processes.append({"pid": tree.pid, "name": tree.name, "rss_bytes": 0,
                                          "cpu_percent": 0.0, "state": "ok",
                                          "note": "zombie (exited, not reaped)"})
            watches.append({"name": rule.name, "processes": processes})
        spool = self.spool
        return {
            "version": STATUS_VERSION,
            "telemetryd_version": __version__,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "stopped": stopped,
            "config_source": self.config.source,
            "config": self._described_config(),
            "state_dir": str(self.paths.root),
            "interval": self.config.daemon.interval_seconds,
            "last_tick": self.last_tick,
            "watches": watches,
            "reports": {
                "pending": spool.pending_count() if spool else None,
                "quarantined": spool.quarantined_count() if spool else None,
                "written_since_start": self.reports_written,
                "held_in_memory": self.transport.held_count if self.transport else 0,
                "dropped_total": self.reports_dropped,
            },
            "flush": self._flush_status(),
            "otlp": self.agents.status() if self.agents and not stopped else {},
            "metrics": {"listen": f"{self.config.metrics.host}:{self.metrics_server.port}"}
            if self.metrics_server else {},
        }

    def _described_config(self) -> dict[str, Any]:
        # The config changes only on reload: describe it once per config, not every tick.
        if self._described is None or self._described[0] is not self.config:
            self._described = (self.config, describe(self.config))
        return self._described[1]

    def _flush_status(self) -> dict[str, Any]:
        if self.flusher is None:
            return {}
        state = self.flusher.state()
        if not state.enabled:
            return {"enabled": False, "note": "no Sentry DSN: nothing leaves this machine"}
        last = state.last_result
        return {
            "enabled": True,
            "failures_total": self.flush_failures,
            "target": state.target,
            "last_flush_at": state.last_flush_at,
            "last_result": last.status if last else None,
            "backoff_until": state.backoff_until,
            "rate_limits": state.rate_limits or None,
            "last_error": state.last_error,
            "delivered_total": state.delivered_total,
            "quarantined_total": state.quarantined_total,
        }

    def _publish_status(self, sample: TickSample | None, stopped: bool = False) -> None:
        snapshot = self.status_snapshot(sample, stopped)
        self.last_snapshot = snapshot
        try:
            write_snapshot(self.paths.status, snapshot)
        except OSError as exc:
            log.error("status.write_failed", path=str(self.paths.status), error=str(exc))


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _keep_state_dir(new: Config, old: Config) -> Config:
    from dataclasses import replace

    return replace(new, daemon=replace(new.daemon, state_dir=old.daemon.state_dir))


def environ_for_notify() -> Mapping[str, str]:
    """The environment variables sd_notify needs."""
    return {k: v for k, v in os.environ.items() if k in ("NOTIFY_SOCKET", "WATCHDOG_USEC",
                                                          "WATCHDOG_PID")}

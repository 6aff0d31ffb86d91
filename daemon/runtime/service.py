"""The daemon's life cycle: startup, tick, reload, shutdown, and the signals that drive them.

Shaped like uvicorn's ``Server``: ``run`` captures signals, starts up, serves a main loop
until asked to stop, and shuts down. What startup opens lives in one ``Running`` object.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from crash_reports.common.files import UnsafeFileError
from crash_reports.event.system_facts import SystemFacts
from daemon.config.errors import ConfigError
from daemon.config.schema import Config
from daemon.runtime.lock import InstanceLock
from daemon.runtime.paths import StatePaths
from daemon.runtime.publish import StatusInputs, StatusPublisher
from daemon.runtime.reports.crash_hooks import capture_exception, describe_job_error
from daemon.runtime.reports.delivery import spool_limits
from daemon.runtime.running import Running, open_running
from daemon.runtime.scheduler import make_scheduler, reschedule
from daemon.runtime.signals import ReloadBurst, SignalFlags, capture_signals
from daemon.runtime.tick import Ticker
from daemon.status.snapshot import StatusSnapshot
from daemon.system.notify import Notifier
from daemon.watch.proc.proctable import ProcessTable, default_process_table
from daemon.watch.proc.sampler import TickSample

log = structlog.get_logger(component="service")

ConfigLoader = Callable[[], Config]
TICK_FRIENDLY_SWITCH_INTERVAL_SECONDS = 0.0005
MAIN_LOOP_SECONDS = 0.5


class StartupError(Exception):
    """The daemon cannot start; the message says why and what to do."""


class UnsafeStateDirError(StartupError):
    """The state dir (or a file in it) could be hijacked by another user; refused."""


class Service:
    """Owns the running daemon: its config, its ticker, and what startup opened."""

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
        self.ticker = Ticker(config, process_table or default_process_table(),
                             system_facts or SystemFacts(), monotonic)
        self.lock = InstanceLock(self.paths.lock)
        self.signals = SignalFlags()
        self.started_at = clock()
        self.running: Running | None = None
        self.last_snapshot: StatusSnapshot | None = None
        self.ready_sent = False
        self._tick_lock = threading.Lock()
        self._last_tick_done: float | None = None
        self._last_ping = 0.0
        self._switch_interval: float | None = None
        self.publisher = StatusPublisher(self.paths.status)

    @property
    def tick_count(self) -> int:
        """Ticks completed since start."""
        return self.ticker.count

    # --- life cycle -----------------------------------------------------------

    def startup(self) -> None:
        """Check the state dir, take the lock, open what the daemon holds, start ticking."""
        # The tick reads /proc with hundreds of short syscalls; each gives up the GIL and
        # then waits for it. With a decode thread busy, every wait lasts the switch interval
        # (5 ms by default): 300 processes made a 0.25 s tick take 2 s. At 0.5 ms the tick
        # keeps its interval under a decode flood (tests/e2e/test_tick_under_flood.py).
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(TICK_FRIENDLY_SWITCH_INTERVAL_SECONDS)
        try:
            self.paths.ensure()
        except UnsafeFileError as exc:
            raise UnsafeStateDirError(
                f"refusing state dir {self.paths.root}: {exc}; give it to this user "
                "with mode 0700 (or set [daemon] state_dir to a directory that is)"
            ) from None
        except OSError as exc:
            raise StartupError(
                f"state dir {self.paths.root} is not usable: {exc.strerror or exc}; "
                "set [daemon] state_dir to a writable directory"
            ) from None
        try:
            self.lock.acquire()
        except UnsafeFileError as exc:
            raise UnsafeStateDirError(f"refusing state dir {self.paths.root}: {exc}") from None
        running = open_running(self.config, self.paths, self.ticker.system, self.clock(),
                               lambda: self.last_snapshot)
        self.running = running
        running.scheduler = make_scheduler(
            self.tick, self.config.daemon.interval_seconds, self._on_job_error,
            on_missed=lambda: log.warning("tick.missed"),
            on_clock_step=lambda step: log.warning("clock.stepped", seconds=round(step, 3),
                                                   action="tick kept its monotonic rhythm"),
        )
        running.scheduler.start()
        # After the scheduler: the first sample never waits behind a backlog of reports.
        running.delivery.start(self.config, str(self.paths.spool))

    def tick(self) -> None:
        """Sample, evaluate, act, publish status; one run at a time."""
        running = self.running
        if running is None:
            raise RuntimeError("tick before startup")
        with self._tick_lock:
            now = self.clock()
            sample = self.ticker.tick(running, now)
            self._publish_status(running, sample)
            tick = self.ticker.last
            assert tick is not None
            running.stats.tick_done(now, tick.duration_seconds)
            if not self.ready_sent:
                log.info("daemon.ready", first_tick_ms=round(tick.duration_seconds * 1000, 2))
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
        if (replace(new.metrics, web_config_file=None)
                != replace(self.config.metrics, web_config_file=None)
                or new.otlp != self.config.otlp):
            log.warning("config.reload_ignored", key="metrics/otlp",
                        reason="listeners change only on restart")
        old = self.config
        running = self.running
        with self._tick_lock:
            try:
                self._apply(new, old)
            except Exception as exc:
                # All or nothing: a reload that fails half-way puts the old config back.
                try:
                    self._apply(old, old)
                except Exception as again:
                    log.error("config.restore_failed", error=repr(again))
                log.error("config.reload_failed", error=repr(exc),
                          action="kept the previous config")
                self.notifier.ready()
                return False
        if running is not None and running.metrics_server is not None:
            running.metrics_server.apply_web_config(new.web)
        if running is not None and new.sentry != old.sentry:
            running.delivery.restart(self.config, str(self.paths.spool))
        from daemon.system.logs import configure_logging

        configure_logging(new.daemon.log_format, new.daemon.log_level)
        log.info("config.loaded", source=new.source, watches=len(new.watches),
                 interval=new.daemon.interval_seconds, reload=True)
        self.notifier.ready()
        return True

    def _apply(self, new: Config, old: Config) -> None:
        """Put ``new`` in force (under the tick lock); the state dir never changes."""
        running = self.running
        self.config = new if new is old else replace(
            new, daemon=replace(new.daemon, state_dir=old.daemon.state_dir))
        self.ticker.set_config(new)
        if running is not None:
            if running.scheduler is not None:
                reschedule(running.scheduler, new.daemon.interval_seconds)
            running.spool.limits = spool_limits(new)
            running.reports.environment = new.sentry.environment
            running.agents.set_budgets(new)
            running.guard.set_settings(new.guard)

    def shutdown(self) -> None:
        """Stop the scheduler (letting a running tick finish), publish a final status, close."""
        self.notifier.stopping()
        running = self.running
        if running is not None:
            if running.scheduler is not None:
                running.scheduler.shutdown(wait=True)
                running.scheduler = None
            self._publish_status(running, None, stopped=True)
            self.ticker.close(running)
            running.close(self.clock())
            self.running = None
        log.info("daemon.stopped", ticks=self.ticker.count,
                 reports_written=self.ticker.reports_written)
        self.lock.release()
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)

    def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, reloading on SIGHUP; restore signal handlers."""
        try:
            with capture_signals(self.signals):
                self.startup()
                try:
                    self.main_loop()
                except BaseException as exc:
                    running = self.running
                    if running is not None and not isinstance(exc, KeyboardInterrupt):
                        log.error("daemon.crashed", error=repr(exc))
                        capture_exception(running.client, exc, "main")
                    raise
                finally:
                    self.shutdown()
        finally:
            self.signals.close()

    def main_loop(self) -> None:
        """Act on what the signal handlers recorded: stop, or reload once per SIGHUP burst;
        feed the watchdog between ticks."""
        flags = self.signals
        burst = ReloadBurst()
        while not flags.stop:
            left = burst.seconds_left(self.monotonic())
            flags.wait(MAIN_LOOP_SECONDS if left is None else min(left, MAIN_LOOP_SECONDS))
            if flags.stop:
                break
            now = self.monotonic()
            if flags.take_reload():
                burst.note(now)
            self._keepalive()
            if burst.due(now):
                log.info("daemon.signal", signal="SIGHUP", action="reload")
                try:
                    self.reload()
                except Exception as exc:  # keep serving on the old config
                    log.error("config.reload_failed", error=repr(exc))
                    if self.running is not None:
                        capture_exception(self.running.client, exc, "reload")
        if flags.stop_signal:
            log.info("daemon.signal", signal=signal.Signals(flags.stop_signal).name,
                     action="stop")

    def _publish_status(self, running: Running, sample: TickSample | None,
                        stopped: bool = False) -> None:
        self.last_snapshot = self.publisher.publish(
            StatusInputs(self.config, self.started_at, self.ticker, running, sample, stopped,
                         self.clock()))

    # --- helpers --------------------------------------------------------------

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

    def _on_job_error(self, exc: BaseException | None, tb: Any) -> None:
        text = "".join(traceback.format_exception(exc)) if exc else str(tb)
        log.error("tick.error", error=describe_job_error(exc, tb), traceback=text)
        if self.running is not None and exc is not None:
            capture_exception(self.running.client, exc, "scheduler")


def environ_for_notify() -> Mapping[str, str]:
    """The environment variables sd_notify needs."""
    return {k: v for k, v in os.environ.items() if k in ("NOTIFY_SOCKET", "WATCHDOG_USEC",
                                                          "WATCHDOG_PID")}

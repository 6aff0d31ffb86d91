"""Runs watch actions off the tick: one worker thread fed by a bounded queue.

A tick only enqueues (``submit`` never blocks: a full queue drops the batch with a log
line). The worker runs each action in turn, each bounded: ``exec`` by its timeout (then
its whole process group is SIGKILLed), ``notify`` by a few seconds, ``signal`` returns at
once (the SIGKILL after ``grace`` is a timer). A failing or hanging action therefore never
stops sampling. Every action logs ``action.started`` and ``action.finished`` with its result.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

import psutil
import structlog

from crash_reports.common.humanize import format_bytes, format_duration
from crash_reports.common.worker import QueueWorker
from crash_reports.event.kinds import Trigger
from daemon.config.schema import ExecAction, NotifyAction, SignalAction, WatchAction
from daemon.watch.triggers import Fired

log = structlog.get_logger(component="actions")

QUEUE_SIZE = 32
OUTPUT_BYTES = 4096  # of an exec's output, kept for its log line


def action_environment(fired: Fired, base: Mapping[str, str]) -> dict[str, str]:
    """What an ``exec`` action's program finds in its environment (pure).

    >>> from crash_reports.event.kinds import Trigger
    >>> f = Fired(Trigger.CRITICAL, "w", 7, (7, 1), 0.0, "critical", 10, None, (), "abc", "/r")
    >>> sorted(k for k in action_environment(f, {"PATH": "/bin"}) if k.startswith("TELEMETRYD"))
    ['TELEMETRYD_LEVEL', 'TELEMETRYD_PID', 'TELEMETRYD_REPORT_ID', 'TELEMETRYD_REPORT_PATH', \
'TELEMETRYD_RSS_BYTES', 'TELEMETRYD_TRIGGER', 'TELEMETRYD_WATCH']
    """
    env = {key: value for key, value in base.items()
           if not key.startswith("TELEMETRYD_") and key != "SENTRY_DSN"}
    env.update({
        "TELEMETRYD_WATCH": fired.watch,
        "TELEMETRYD_PID": str(fired.pid),
        "TELEMETRYD_LEVEL": fired.level,
        "TELEMETRYD_TRIGGER": fired.trigger.value,
        "TELEMETRYD_RSS_BYTES": str(fired.rss_bytes),
        "TELEMETRYD_REPORT_ID": fired.report_id or "",
        "TELEMETRYD_REPORT_PATH": fired.report_path or "",
    })
    return env


class ActionRunner:
    """The bounded worker; ``stop`` ends it after the action under way."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self._worker = QueueWorker("telemetryd-actions", self._run, queue_size)
        self.finished = 0

    def submit(self, fired: Fired) -> bool:
        """Queue the actions of one trigger; False (and a log line) when the queue is full."""
        if self._worker.submit(fired):
            return True
        log.error("action.dropped", watch=fired.watch, pid=fired.pid,
                  trigger=fired.trigger.value, reason="action queue full")
        return False

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to end and wait a little for it (it is a daemon thread)."""
        self._worker.stop(timeout)

    def _run(self, fired: Fired) -> None:
        for action in fired.actions:
            run_one(action, fired)
            self.finished += 1


def run_one(action: WatchAction, fired: Fired) -> dict[str, Any]:
    """Run one action with its log lines; never raises."""
    fields = {"watch": fired.watch, "pid": fired.pid, "trigger": fired.trigger.value,
              "action": action.describe(), "report_id": fired.report_id}
    log.info("action.started", **fields)
    started = time.monotonic()
    try:
        if isinstance(action, ExecAction):
            result = run_exec(action, fired)
        elif isinstance(action, SignalAction):
            result = run_signal(action, fired)
        else:
            result = run_notify(action, fired)
    except Exception as exc:  # an action's failure is logged, never raised into the worker
        result = {"ok": False, "error": repr(exc)}
    result["seconds"] = round(time.monotonic() - started, 3)
    log.log(20 if result.get("ok") else 30, "action.finished", **fields, **result)
    return result


def run_exec(action: ExecAction, fired: Fired) -> dict[str, Any]:
    """Run the program (no shell) in its own session; kill its group at the timeout.

    Its output goes to a temporary file, not a pipe: a chatty program cannot grow the
    daemon's memory, and a grandchild that keeps the file open cannot hang the worker.
    """
    with tempfile.TemporaryFile() as output:
        try:
            proc = subprocess.Popen(list(action.argv),
                                    env=action_environment(fired, os.environ),
                                    stdin=subprocess.DEVNULL, stdout=output,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            return {"ok": False, "error": exc.strerror or str(exc)}
        try:
            proc.wait(timeout=action.timeout_seconds)
            timed_out = False
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            timed_out = True
        size = output.seek(0, os.SEEK_END)
        output.seek(max(0, size - OUTPUT_BYTES))
        text = output.read(OUTPUT_BYTES).decode(errors="replace").strip()
    return {"ok": not timed_out and proc.returncode == 0, "exit_status": proc.returncode,
            "timed_out": timed_out, "output": text}


def _same_process(pid: int, create_time: float) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        return proc if abs(proc.create_time() - create_time) < 1.0 else None
    except psutil.Error:
        return None


def run_signal(action: SignalAction, fired: Fired) -> dict[str, Any]:
    """Signal the tree's root if it is still the process the trigger saw; SIGKILL after grace."""
    proc = _same_process(fired.pid, fired.create_time)
    if proc is None:
        return {"ok": False, "error": "the process is gone"}
    try:
        proc.send_signal(action.signal)
    except psutil.Error as exc:
        return {"ok": False, "error": str(exc)}
    if action.grace_seconds:
        timer = threading.Timer(action.grace_seconds, _kill_after_grace, (fired,))
        timer.daemon = True
        timer.start()
    return {"ok": True, "signal": signal.Signals(action.signal).name}


def _kill_after_grace(fired: Fired) -> None:
    proc = _same_process(fired.pid, fired.create_time)
    if proc is None:
        return
    with contextlib.suppress(psutil.Error):
        proc.kill()
        log.warning("action.killed_after_grace", watch=fired.watch, pid=fired.pid)


def run_notify(action: NotifyAction, fired: Fired) -> dict[str, Any]:
    """A desktop notification through notify-send (Linux) or osascript (macOS)."""
    title = f"telemetryd: {fired.watch} at {fired.level}"
    if fired.trigger is Trigger.GUARD:  # the level is the guard rule that fired
        title = f"telemetryd: {fired.watch}: {fired.level.replace('_', ' ')}"
    body = f"pid {fired.pid}, RSS {format_bytes(fired.rss_bytes)}"
    if fired.eta_seconds is not None and fired.level != "critical" \
            and fired.trigger is not Trigger.GUARD:
        body += f", critical in about {format_duration(fired.eta_seconds)}"
    if sys.platform == "darwin":
        program = shutil.which("osascript")
        script = f"display notification {_quoted(body)} with title {_quoted(title)}"
        argv = [program, "-e", script] if program else None
    else:
        program = shutil.which("notify-send")
        urgency = "critical" if fired.level == "critical" else "normal"
        argv = [program, "-u", urgency, "-a", "telemetryd", title, body] if program else None
    if argv is None or program is None:
        return {"ok": False, "error": "no notify-send or osascript on PATH"}
    return run_exec(ExecAction((program, *argv[1:]), action.timeout_seconds), fired)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

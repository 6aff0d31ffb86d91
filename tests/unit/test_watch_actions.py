"""Watch actions in the config, and which monitor actions set them off (once per cooldown)."""

from __future__ import annotations

import signal
import sys
import time

import pytest
from structlog.testing import capture_logs

from crash_reports.event.kinds import Trigger
from daemon.config.errors import ConfigError
from daemon.config.parse import parse_config
from daemon.config.schema import ExecAction, NotifyAction, SignalAction
from daemon.runtime.action_runner import ActionRunner
from daemon.watch.monitor import Monitor
from daemon.watch.proc.sampler import TickSample, TreeSample
from daemon.watch.triggers import Fired, select

RAM = 8 * 1024**3


def watch_with(**actions: object) -> dict[str, object]:
    """A one-watch config with the given action arrays."""
    return {"watch": [{"name": "w", "pid": 1, **actions}]}


def test_actions_parse_into_typed_values_with_schema_defaults() -> None:
    """notify, exec (default timeout) and signal (name or short name, grace) are read."""
    config = parse_config(watch_with(
        on_warning=[{"notify": True}, {"exec": ["notify.sh", "x"]}],
        on_critical=[{"signal": "TERM", "grace": "30s"}],
        on_exit_under_pressure=[{"exec": ["after.sh"], "timeout": "2s"}]), "f", {}, RAM)
    [rule] = config.watches
    assert rule.on_warning == (NotifyAction(), ExecAction(("notify.sh", "x"), 10.0))
    assert rule.on_critical == (SignalAction(int(signal.SIGTERM), 30.0),)
    assert rule.on_exit_under_pressure == (ExecAction(("after.sh",), 2.0),)


@pytest.mark.parametrize(("actions", "key"), [
    ({"on_warning": {"notify": True}}, "watch[0].on_warning"),
    ({"on_warning": [{}]}, "watch[0].on_warning[0]"),
    ({"on_warning": [{"notify": True, "exec": ["x"]}]}, "watch[0].on_warning[0]"),
    ({"on_critical": [{"exec": "rm -rf /"}]}, "watch[0].on_critical[0].exec"),
    ({"on_critical": [{"exec": ["x"], "grace": "1s"}]}, "watch[0].on_critical[0].grace"),
    ({"on_critical": [{"signal": "SIGNOPE"}]}, "watch[0].on_critical[0].signal"),
    ({"on_critical": [{"exec": ["x"], "timeout": "-1s"}]}, "watch[0].on_critical[0].timeout"),
    ({"on_warn": [{"notify": True}]}, "watch[0].on_warn"),
    ({"on_critical": [{"exec": ["x"], "timeout": "2h"}]}, "watch[0].on_critical[0].timeout"),
])
def test_bad_actions_name_their_key_path(actions: dict[str, object], key: str) -> None:
    """A wrong action is refused with the key path it sits at."""
    with pytest.raises(ConfigError) as caught:
        parse_config(watch_with(**actions), "f", {}, RAM)
    assert caught.value.key == key


def _tick(at: float, rss: int) -> TickSample:
    """One tick seeing pid 42 of watch w at ``rss`` bytes."""
    tree = TreeSample(watch="w", pid=42, key=(42, 1), name="agent", create_time=1.0,
                      rss_bytes=rss, cpu_percent=0.0, root_rss_bytes=rss,
                      root_cpu_percent=0.0, members=1)
    return TickSample(at, at, {"w": [tree]}, 1)


def test_a_trigger_fires_once_per_cooldown_and_critical_carries_its_report() -> None:
    """Warning fires on_warning; again within cooldown is suppressed; critical fires on_critical."""
    config = parse_config({"watch": [{
        "name": "w", "pid": 42, "rss_warning": "1MiB", "rss_critical": "100MiB",
        "sustained": 1, "cooldown": "60s", "on_warning": [{"exec": ["a"]}],
        "on_critical": [{"exec": ["b"]}]}]}, "f", {}, RAM)
    monitor = Monitor(config.watches, 10, 120.0)
    fired, _ = select(monitor.observe(_tick(0.0, 2 * 1024**2)), monitor.rules)
    assert [(f.trigger, f.actions[0].describe()) for f in fired] == [
        (Trigger.WARNING, "exec a (timeout 10s)")]
    assert fired[0].level == "warning" and fired[0].pid == 42
    monitor.observe(_tick(10.0, 0), None)  # back to ok
    fired, suppressed = select(monitor.observe(_tick(20.0, 2 * 1024**2)), monitor.rules)
    assert fired == [] and [s.trigger for s in suppressed] == [Trigger.WARNING]
    fired, _ = select(monitor.observe(_tick(30.0, 200 * 1024**2)), monitor.rules)
    assert [f.trigger for f in fired] == [Trigger.CRITICAL]


def test_a_full_queue_drops_instead_of_blocking_the_tick() -> None:
    """submit never waits: past the queue's bound a batch is dropped and logged."""
    busy = ExecAction((sys.executable, "-c", "import time; time.sleep(0.5)"), 10.0)
    item = Fired(Trigger.WARNING, "w", 1, (1, 1), 0.0, "warning", 0, None, (busy,))
    runner = ActionRunner(queue_size=1)
    with capture_logs() as logs:
        started = time.monotonic()
        results = [runner.submit(item) for _ in range(5)]
        elapsed = time.monotonic() - started
        runner.stop(timeout=30.0)  # the worker finishes what it took, inside the capture
    assert elapsed < 1.0
    assert results[0] and not all(results)
    assert any(e["event"] == "action.dropped" for e in logs)

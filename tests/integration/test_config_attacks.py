"""Hostile configs: out-of-range numbers, deep nesting, empty strings, catastrophic regexes,
FIFO config and pidfiles, and a reload that fails half-way are all refused cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from daemon.config.errors import ConfigError
from daemon.config.files.load import load_config
from daemon.config.parse import parse_config_text
from daemon.runtime.service import Service
from daemon.watch.proc.announcements import DEFAULT_WATCH
from tests.integration.test_cli_config import assert_config_error, telemetryd
from tests.support.daemon_proc import DaemonProcess, clean_env
from tests.support.waiting import wait_for

WATCH = '[[watch]]\nname = "w"\npid = 1\n'


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return telemetryd(tmp_path, "check-config", str(path))


@pytest.mark.parametrize(("text", "key"), [
    ("[daemon]\ninterval = 1e308\n" + WATCH, "daemon.interval"),
    ('[sentry]\nflush_interval = "365000d"\n' + WATCH, "sentry.flush_interval"),
    ('[sentry]\ntimeout = "99999999999999999999d"\n' + WATCH, "sentry.timeout"),
    (WATCH + "sustained = 10000000000\n", "watch[0].sustained"),
    ('[[watch]]\nname = "w"\npid = 99999999999\n', "watch[0].pid"),
    (WATCH + 'rss_critical = "99999999 TiB"\n', "watch[0].rss_critical"),
    ('[spool]\nmax_reports = 9223372036854775807\n' + WATCH, "spool.max_reports"),
    ("[daemon]\ninterval = 0.000001\n" + WATCH, "daemon.interval"),
    (WATCH + 'cooldown = "100000000d"\n', "watch[0].cooldown"),
    (WATCH + 'reap_grace = "100000000d"\n', "watch[0].reap_grace"),
    (WATCH + "orphans_warning = 10000000000\n", "watch[0].orphans_warning"),
    (WATCH + 'orphans_rss = "99999999 TiB"\n', "watch[0].orphans_rss"),
])
def test_numbers_outside_their_range_exit_78_with_the_key_path(tmp_path, text, key):
    """Each documented range is checked by check-config: exit 78 naming the key."""
    assert_config_error(check(tmp_path, text), key, "must be between")


def test_deeply_nested_array_is_a_config_error(tmp_path):
    """An array nested 5000 deep: a config error, not a RecursionError traceback."""
    text = WATCH + "x = " + "[" * 5000 + "]" * 5000 + "\n"
    assert_config_error(check(tmp_path, text), "nested too deeply")


def test_empty_string_is_an_error_not_a_default(tmp_path):
    """``state_dir = ""`` is refused instead of silently becoming the default."""
    assert_config_error(check(tmp_path, '[daemon]\nstate_dir = ""\n' + WATCH),
                        "daemon.state_dir", "empty string")


def test_catastrophic_regex_is_refused_with_the_key(tmp_path):
    """``(a+)+$`` (exponential backtracking on 34 ``a`` and a ``!``) is a config error."""
    assert_config_error(check(tmp_path, '[[watch]]\nname = "w"\ncmdline = "(a+)+$"\n'),
                        "watch[0].cmdline")


def test_polynomial_regex_cannot_stall_the_tick(tmp_path):
    """``.*.*.*x`` passes every shape check but backtracks for hours on a 4 KB command line
    in Python's ``re``; matched with RE2 the daemon keeps ticking beside such a process."""
    state = tmp_path / "state"
    path = tmp_path / "t.toml"
    path.write_text(f'[daemon]\ninterval = 0.2\nstate_dir = "{state}"\nlog_format = "json"\n'
                    '[metrics]\nenabled = false\n[otlp]\nenabled = false\n'
                    '[[watch]]\nname = "w"\ncmdline = ".*.*.*x"\n')
    victim = subprocess.Popen(["sleep", "600", "a" * 4000])
    daemon = DaemonProcess(path, tmp_path / "log.jsonl", env=clean_env())
    try:
        daemon.wait_event("daemon.ready")
        wait_for(lambda: _tick_count(state) >= 5, timeout=60, message="five ticks")
    finally:
        victim.kill()
        victim.wait()
        assert daemon.stop() == 0


def _tick_count(state: Path) -> int:
    import json

    try:
        return int(json.loads((state / "status.json").read_text())["last_tick"]["count"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def test_backreference_is_refused_with_the_key(tmp_path):
    """A back-reference (no linear-time bound) is a config error naming the key."""
    assert_config_error(check(tmp_path, '[[watch]]\nname = "w"\ncmdline = "(a)\\\\1"\n'),
                        "watch[0].cmdline")


def test_fifo_config_file_is_refused_without_blocking(tmp_path):
    """A FIFO given as the config file is refused at once, not waited on."""
    fifo = tmp_path / "t.toml"
    os.mkfifo(fifo)
    box: list[BaseException] = []

    def load() -> None:
        try:
            load_config(fifo, {}, 1 << 30)
        except ConfigError as exc:
            box.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive() and "expected a TOML file" in str(box[0])


def test_sighup_with_a_bad_config_changes_nothing(tmp_path):
    """SIGHUP to a config with new watches and an out-of-range interval: the old watches
    stay, the new one never appears (all or nothing)."""
    state = tmp_path / "state"
    path = tmp_path / "t.toml"
    base = (f'[daemon]\ninterval = 0.2\nstate_dir = "{state}"\nlog_format = "json"\n'
            '[metrics]\nenabled = false\n[otlp]\nenabled = false\n')
    path.write_text(base + '[[watch]]\nname = "old"\npid = 1\n')
    daemon = DaemonProcess(path, tmp_path / "log.jsonl", env=clean_env())
    try:
        daemon.wait_event("daemon.ready")
        path.write_text(base.replace("interval = 0.2", "interval = 1e308")
                        + '[[watch]]\nname = "new"\npid = 1\n')
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.error")
        time.sleep(0)  # the status below is polled, not waited for
        status = wait_for(lambda: (state / "status.json").exists()
                          and (state / "status.json").read_text(), message="status")
        ticks_seen = daemon.wait_event("daemon.ready")
        assert ticks_seen
        names = wait_for(lambda: _watch_names(state), message="status watches")
        assert names == ["old"], (names, status[:200])
    finally:
        assert daemon.stop() == 0


def _watch_names(state: Path) -> list[str] | None:
    import json

    try:
        data = json.loads((state / "status.json").read_text())
    except (OSError, ValueError):
        return None
    return [watch["name"] for watch in data["watches"]]


def test_reload_failing_half_way_restores_the_previous_config(tmp_path):
    """A reload that raises after the new watches were set (fault injected in the
    scheduler) puts the previous config back."""
    text = (f'[daemon]\ninterval = 0.2\nstate_dir = "{tmp_path}"\n[metrics]\nenabled = false\n'
            '[otlp]\nenabled = false\n')
    old = parse_config_text(text + '[[watch]]\nname = "old"\npid = 1\n', "<t>", {}, 1 << 34)
    new = parse_config_text(text.replace("0.2", "0.3") + '[[watch]]\nname = "new"\npid = 1\n',
                            "<t>", {}, 1 << 34)
    service = Service(old, config_loader=lambda: new)
    service.startup()
    try:
        running = service.running
        assert running is not None
        original = running.scheduler

        class Broken:
            def __getattr__(self, name: str) -> object:
                raise RuntimeError("injected scheduler failure")

        running.scheduler = Broken()
        try:
            assert service.reload() is False
        finally:
            running.scheduler = original
        # The old watches, and the built-in one `telemetryd wrap` children join.
        assert [rule.name for rule in service.ticker.sampler.rules] == ["old", DEFAULT_WATCH]
        assert service.config is old
    finally:
        service.shutdown()

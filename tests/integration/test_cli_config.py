"""`python -m daemon` run as a subprocess: bad configs exit 78 with one clear line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon.config.files.embedded import EMBEDDED_DEFAULT
from daemon.config.files.locations import SYSTEM_CONFIG_PATH, SYSTEM_STATE_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 60
GOOD_WATCH = '[[watch]]\nname = "claude-code"\nprocess_name = "claude"\n'
SECOND_WATCH = '[[watch]]\nname = "codex"\nprocess_name = "codex"\n'


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of the CLI: this repo importable, no stray telemetryd settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEMETRYD_CONFIG", "SENTRY_DSN", "STATE_DIRECTORY")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")
    env.update(extra)
    return env


def telemetryd(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
               prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``python -m daemon ARGS`` and capture its output."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "daemon", *args],
        cwd=tmp_path,
        env=env if env is not None else clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def assert_config_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 78, no stdout, one stderr line holding every fragment, and no traceback."""
    assert result.returncode == 78, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("telemetryd: config error: ")
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def write(tmp_path: Path, text: str | bytes, name: str = "telemetryd.toml") -> Path:
    """Write a config file and return its path."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


BAD_CONFIGS: list[tuple[str, str | bytes, tuple[str, ...]]] = [
    ("invalid-toml", "[daemon\ninterval = 1\n", ("invalid TOML", "line 1")),
    ("unknown-key", GOOD_WATCH + SECOND_WATCH + 'rss_critcal = "3GiB"\n',
     ("watch[1].rss_critcal", "unknown key")),
    ("wrong-type", '[daemon]\ninterval = "fast"\n',
     ("daemon.interval", "expected a number, got a string")),
    ("zero-interval", "[daemon]\ninterval = 0\n", ("daemon.interval", "expected a positive")),
    ("negative-interval", "[daemon]\ninterval = -2\n", ("daemon.interval", "positive")),
    ("nan-interval", "[daemon]\ninterval = nan\n", ("daemon.interval", "positive")),
    ("warning-not-below-critical",
     GOOD_WATCH + SECOND_WATCH + 'rss_warning = "3GiB"\nrss_critical = "3GiB"\n',
     ("watch[1].rss_warning", "must be below rss_critical")),
    ("cpu-warning-above-critical", GOOD_WATCH + "cpu_warning = 400\ncpu_critical = 350\n",
     ("watch[0].cpu_warning", "must be below cpu_critical")),
    ("invalid-regex", GOOD_WATCH + 'cmdline = "claude|(anthropic"\n',
     ("watch[0].cmdline", "invalid regular expression")),
    ("unparsable-size", GOOD_WATCH + SECOND_WATCH + 'rss_critical = "3 gigs"\n',
     ("watch[1].rss_critical", 'a size like "512MiB"', "'3 gigs'")),
    ("unparsable-percent", GOOD_WATCH + 'rss_warning = "twenty%"\n',
     ("watch[0].rss_warning", "a percent of RAM")),
    ("percent-out-of-range", GOOD_WATCH + 'rss_critical = "250%"\n',
     ("watch[0].rss_critical", "(0, 100]")),
    ("malformed-dsn", '[sentry]\ndsn = "https://o1.ingest.sentry.io/42"\n',
     ("sentry.dsn", "not a Sentry DSN")),
    ("no-selector", '[[watch]]\nname = "lonely"\n', ("watch[0]", "at least one selector")),
    ("not-utf8", b'[daemon]\nlog_level = "\xff"\n', ("not UTF-8",)),
]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [pytest.param(text, fragments, id=name) for name, text, fragments in BAD_CONFIGS],
)
def test_check_config_rejects_bad_input(tmp_path: Path, text: str | bytes,
                                        fragments: tuple[str, ...]) -> None:
    """check-config PATH on bad input: exit 78 and one line naming file, key and expectation."""
    path = write(tmp_path, text)
    result = telemetryd(tmp_path, "check-config", str(path))
    assert_config_error(result, str(path), *fragments)
    assert result.stdout == ""


def test_every_subcommand_refuses_a_bad_config(tmp_path: Path) -> None:
    """--config with a bad file stops run, status and reports the same way, before any work."""
    path = write(tmp_path, GOOD_WATCH + 'rss_critical = "lots"\n')
    for args in (("check-config",), ("status",), ("reports", "list"), ("run",)):
        result = telemetryd(tmp_path, "--config", str(path), *args)
        assert_config_error(result, str(path), "watch[0].rss_critical", "expected bytes")
    assert not (tmp_path / "xdg-state").exists()


@pytest.mark.parametrize("command", [("check-config",), ("status",), ("stats",),
                                     ("reports", "list"), ("reports", "show", "abc"),
                                     ("reports", "purge", "--all")])
def test_config_flag_is_read_after_a_subcommand_and_a_sub_subcommand(
        tmp_path: Path, command: tuple[str, ...]) -> None:
    """`telemetryd reports list --config X` reads X, as does --config right after the command."""
    path = write(tmp_path, GOOD_WATCH + 'rss_critical = "lots"\n')
    placements = [(*command[:1], "--config", str(path), *command[1:]),
                  (*command, "--config", str(path))]
    for args in placements:
        assert_config_error(telemetryd(tmp_path, *args), str(path), "watch[0].rss_critical")
    assert not (tmp_path / "xdg-state").exists()


def test_malformed_dsn_from_environment_never_echoes_the_key(tmp_path: Path) -> None:
    """A bad $SENTRY_DSN is named as such (not the file) and its key appears nowhere."""
    path = write(tmp_path, GOOD_WATCH)
    env = clean_env(tmp_path, SENTRY_DSN="https://s3cr3tk3y@o1.ingest.sentry.io:99999/1")
    result = telemetryd(tmp_path, "check-config", str(path), env=env)
    assert_config_error(result, "$SENTRY_DSN", "not a Sentry DSN")
    assert str(path) not in result.stderr
    assert "s3cr3tk3y" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda p: None, "file not found", id="missing"),
        pytest.param(lambda p: p.mkdir(), "is a directory", id="directory"),
        pytest.param(lambda p: p.symlink_to(p.parent / "gone.toml"), "file not found",
                     id="dangling-symlink"),
        pytest.param(lambda p: p.symlink_to(p), "cannot read", id="symlink-loop"),
    ],
)
def test_unreadable_paths(tmp_path: Path, make: Any, expected: str) -> None:
    """Paths that do not give a readable file are config errors naming the path (as root too)."""
    path = tmp_path / "telemetryd.toml"
    make(path)
    assert_config_error(telemetryd(tmp_path, "check-config", str(path)), str(path), expected)


def test_path_under_a_file_is_unreadable(tmp_path: Path) -> None:
    """A path whose parent is a file (ENOTDIR) is a config error, not a traceback."""
    parent = write(tmp_path, GOOD_WATCH)
    path = parent / "telemetryd.toml"
    assert_config_error(telemetryd(tmp_path, "--config", str(path), "check-config"), str(path),
                        "cannot read")


def test_permission_denied_without_root_override(tmp_path: Path) -> None:
    """A chmod 000 file is 'permission denied' once the DAC-override capabilities are dropped."""
    path = write(tmp_path, GOOD_WATCH)
    path.chmod(0o000)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        # root reads any file; drop the capabilities that let it, as a user would lack them.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is not installed")
        caps = "-dac_override,-dac_read_search"
        prefix = (setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}")
        probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
        if probe.returncode != 0:
            pytest.skip(f"cannot drop capabilities here: {probe.stderr.decode().strip()}")
    result = telemetryd(tmp_path, "check-config", str(path), prefix=prefix)
    assert_config_error(result, str(path), "permission denied")


def test_good_config_prints_the_effective_config(tmp_path: Path) -> None:
    """check-config on a good file exits 0 and prints every value as in force, sizes in bytes."""
    path = write(tmp_path, '[daemon]\ninterval = 0.5\nstate_dir = "/var/lib/td"\n' + GOOD_WATCH +
                 'cmdline = "claude|anthropic"\nrss_warning = "1GiB"\nrss_critical = "3GiB"\n'
                 "cpu_warning = 150\ncpu_critical = 350\nsustained = 4\ncooldown = \"10m\"\n"
                 '[sentry]\ndsn = "https://s3cr3tk3y@o1.ingest.sentry.io/42"\n')
    result = telemetryd(tmp_path, "check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"# config OK: {path}"
    for expected in ("[daemon]", "interval = 0.5", 'state_dir = "/var/lib/td"', "[[watch]]",
                     'name = "claude-code"', 'cmdline = "claude|anthropic"',
                     "rss_warning = 1073741824", "rss_critical = 3221225472",
                     "cpu_warning = 150.0", "sustained = 4", "cpu_sustained = 4",
                     "cooldown = 600.0",
                     '# dsn = "https://o1.ingest.sentry.io/42"  (key hidden)'):
        assert expected in lines, expected
    assert "s3cr3tk3y" not in result.stdout
    # What it prints is a config: fed back in, it gives the same effective config.
    again = tmp_path / "again.toml"
    again.write_text(result.stdout)
    second = telemetryd(tmp_path, "check-config", str(again))
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[1:] == [
        line for line in lines[1:] if not line.startswith("# dsn")]


def effective(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The --json effective config a command line resolves to."""
    result = telemetryd(tmp_path, *args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_config_precedence(tmp_path: Path) -> None:
    """check-config PATH beats --config, which beats $TELEMETRYD_CONFIG, then the user file."""
    flag = write(tmp_path, GOOD_WATCH, "flag.toml")
    from_env = write(tmp_path, SECOND_WATCH, "env.toml")
    positional = write(tmp_path, '[[watch]]\nname = "aider"\npid = 1\n', "positional.toml")
    user_file = tmp_path / "xdg-config" / "telemetryd" / "telemetryd.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text('[[watch]]\nname = "goose"\nprocess_name = "goose"\n', encoding="utf-8")
    env = clean_env(tmp_path, TELEMETRYD_CONFIG=str(from_env))

    assert effective(tmp_path, "--config", str(flag), "check-config", env=env)["source"] == str(
        flag)
    assert effective(tmp_path, "check-config", env=env)["source"] == str(from_env)
    assert effective(tmp_path, "--config", str(flag), "check-config", str(positional),
                     env=env)["source"] == str(positional)
    assert effective(tmp_path, "check-config")["source"] == str(user_file)
    assert [w["name"] for w in effective(tmp_path, "check-config")["watch"]] == ["goose"]


def test_explicit_bad_config_never_falls_back(tmp_path: Path) -> None:
    """A missing --config or $TELEMETRYD_CONFIG is an error even when a good file exists."""
    good = write(tmp_path, GOOD_WATCH, "good.toml")
    missing = tmp_path / "missing.toml"
    env = clean_env(tmp_path, TELEMETRYD_CONFIG=str(good))
    assert_config_error(telemetryd(tmp_path, "--config", str(missing), "check-config", env=env),
                        str(missing), "file not found")
    env = clean_env(tmp_path, TELEMETRYD_CONFIG=str(missing))
    assert_config_error(telemetryd(tmp_path, "check-config", env=env), str(missing),
                        "file not found")


def test_embedded_default_when_nothing_is_found(tmp_path: Path) -> None:
    """With no flag, no variable and no file, the embedded default watches the known agents."""
    if SYSTEM_CONFIG_PATH.exists():
        pytest.skip("this machine has a system-wide telemetryd config")
    data = effective(tmp_path, "check-config")
    assert data["source"] == EMBEDDED_DEFAULT
    names = {name for w in data["watch"] for name in
             ([w["process_name"]] if isinstance(w["process_name"], str)
              else w["process_name"] or [])}
    assert {"claude", "codex", "aider", "goose", "opencode", "gemini"} <= names
    # root shares the system unit's state dir, so `status` finds the daemon systemd runs.
    expected = SYSTEM_STATE_DIR if os.geteuid() == 0 else tmp_path / "xdg-state" / "telemetryd"
    assert data["daemon"]["state_dir"] == str(expected)

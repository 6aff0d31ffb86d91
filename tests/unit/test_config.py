"""Config parsing: TOML into frozen dataclasses; bad input gives a ConfigError naming the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config.errors import ConfigError
from daemon.config.files.embedded import DEFAULT_CONFIG_TOML, EMBEDDED_DEFAULT
from daemon.config.files.load import load_config
from daemon.config.files.locations import SYSTEM_CONFIG_PATH, config_search_path, find_config_file
from daemon.config.parse import parse_config, parse_config_text
from daemon.config.quantities import parse_duration, parse_size
from daemon.config.render import describe
from daemon.config.schema import Config

GIB = 1024**3
MEMORY = 8 * GIB
SOURCE = "/etc/x/telemetryd.toml"

WATCH_A = '[[watch]]\nname = "a"\nprocess_name = "a"\n'


def parse(text: str, memory: int = MEMORY, environ: dict[str, str] | None = None) -> Config:
    """Parse config text as if it came from SOURCE."""
    return parse_config_text(text, SOURCE, environ or {}, memory)


def error_of(text: str, memory: int = MEMORY, environ: dict[str, str] | None = None) -> ConfigError:
    """The ConfigError that parsing ``text`` raises."""
    with pytest.raises(ConfigError) as info:
        parse(text, memory, environ)
    return info.value


def test_full_watch_table_parses_into_units() -> None:
    """Every documented watch key lands in the rule in bytes, percent and seconds."""
    config = parse(
        """
        [daemon]
        interval = 0.5
        state_dir = "/var/lib/telemetryd"
        log_format = "json"
        log_level = "DEBUG"

        [[watch]]
        name = "claude-code"
        process_name = "claude"
        cmdline = "claude|anthropic"
        include_children = false
        rss_warning = "1GiB"
        rss_critical = "25%"
        cpu_warning = 150
        cpu_critical = 350.5
        sustained = 4
        cooldown = "10m"
        """
    )
    assert config.source == SOURCE
    assert config.daemon.interval_seconds == 0.5
    assert config.daemon.state_dir == Path("/var/lib/telemetryd")
    assert config.daemon.log_format == "json"
    assert config.daemon.log_level == "debug"
    (rule,) = config.watches
    assert rule.name == "claude-code"
    assert rule.process_names == ("claude",)
    assert rule.cmdline is not None and rule.cmdline.search("node anthropic")
    assert rule.include_children is False
    assert rule.rss_warning_bytes == GIB
    assert rule.rss_critical_bytes == 2 * GIB
    assert rule.cpu_warning_percent == 150.0
    assert rule.cpu_critical_percent == 350.5
    assert rule.sustained == 4
    assert rule.cpu_sustained == 4
    assert rule.cooldown_seconds == 600.0


def test_other_selectors_parse() -> None:
    """pid, pidfile and user are selectors of their own."""
    config = parse(
        '[[watch]]\nname = "p"\npid = 1234\n'
        '[[watch]]\nname = "f"\npidfile = "/run/agent.pid"\n'
        '[[watch]]\nname = "u"\nuser = "alice"\n'
    )
    pid_rule, file_rule, user_rule = config.watches
    assert pid_rule.pid == 1234
    assert file_rule.pidfile == Path("/run/agent.pid")
    assert user_rule.user == "alice"


def test_state_dir_defaults_to_systemd_state_directory() -> None:
    """Without state_dir, systemd's $STATE_DIRECTORY (its first path) is used."""
    config = parse(WATCH_A, environ={"STATE_DIRECTORY": "/var/lib/telemetryd:/var/lib/other"})
    assert config.daemon.state_dir == Path("/var/lib/telemetryd")


def test_embedded_default_watches_the_known_agents() -> None:
    """The embedded default parses and watches each well-known agent CLI."""
    config = parse_config_text(DEFAULT_CONFIG_TOML, EMBEDDED_DEFAULT, {}, MEMORY)
    names = {name for rule in config.watches for name in rule.process_names}
    for agent in ("claude", "codex", "aider", "goose", "opencode", "gemini", "codetether",
                  "cursor-agent"):
        assert agent in names
    for rule in config.watches:
        assert rule.rss_warning_bytes is not None and rule.rss_critical_bytes is not None
        assert rule.rss_warning_bytes < rule.rss_critical_bytes
    assert config.sentry.dsn is None


def test_config_error_message_names_file_key_and_expectation() -> None:
    """The message reads 'file: key: what was expected'."""
    error = error_of(WATCH_A + WATCH_A.replace('"a"', '"b"') + 'rss_critical = "lots"\n')
    assert error.source == SOURCE
    assert error.key == "watch[1].rss_critical"
    assert str(error).startswith(f"{SOURCE}: watch[1].rss_critical: expected bytes")
    assert "'lots'" in str(error)


BAD_INPUTS: list[tuple[str, str, str | None, str]] = [
    ("invalid toml", "[daemon\n", None, "invalid TOML"),
    ("unknown top-level table", "[deamon]\ninterval = 1\n", "deamon", "unknown key"),
    ("unknown daemon key", "[daemon]\nintervall = 1\n", "daemon.intervall", "unknown key"),
    ("unknown watch key", WATCH_A + WATCH_A.replace('"a"', '"b"') + "rss_critcal = 1\n",
     "watch[1].rss_critcal", "unknown key"),
    ("interval as string", '[daemon]\ninterval = "fast"\n', "daemon.interval",
     "expected a number, got a string"),
    ("interval as bool", "[daemon]\ninterval = true\n", "daemon.interval", "expected a number"),
    ("zero interval", "[daemon]\ninterval = 0\n", "daemon.interval", "positive"),
    ("negative interval", "[daemon]\ninterval = -1.5\n", "daemon.interval", "positive"),
    ("nan interval", "[daemon]\ninterval = nan\n", "daemon.interval", "positive"),
    ("infinite interval", "[daemon]\ninterval = inf\n", "daemon.interval", "positive"),
    ("bad log format", '[daemon]\nlog_format = "xml"\n', "daemon.log_format", '"json"'),
    ("bad log level", '[daemon]\nlog_level = "loud"\n', "daemon.log_level",
     'expected "debug", "info",'),
    ("daemon not a table", "daemon = 3\n", "daemon", "expected a table"),
    ("watch not an array of tables", "watch = 3\n", "watch", "array of tables"),
    ("watch without name", '[[watch]]\nprocess_name = "x"\n', "watch[0].name", "non-empty name"),
    ("watch name not a string", '[[watch]]\nname = 5\nprocess_name = "x"\n', "watch[0].name",
     "expected a string, got an integer"),
    ("watch without selector", '[[watch]]\nname = "x"\n', "watch[0]", "at least one selector"),
    ("duplicate watch name", WATCH_A + WATCH_A, "watch[1].name", "duplicate"),
    ("include_children not bool", WATCH_A + 'include_children = "yes"\n',
     "watch[0].include_children", "expected true or false"),
    ("pid not integer", '[[watch]]\nname = "x"\npid = 1.5\n', "watch[0].pid",
     "expected an integer"),
    ("pid zero", '[[watch]]\nname = "x"\npid = 0\n', "watch[0].pid", ">= 1"),
    ("sustained zero", WATCH_A + "sustained = 0\n", "watch[0].sustained", ">= 1"),
    ("rss warning above critical",
     WATCH_A + WATCH_A.replace('"a"', '"b"') + 'rss_warning = "2GiB"\nrss_critical = "1GiB"\n',
     "watch[1].rss_warning", "below rss_critical"),
    ("rss warning equal to critical", WATCH_A + 'rss_warning = "1GiB"\nrss_critical = 1073741824\n',
     "watch[0].rss_warning", "below rss_critical"),
    ("percent warning above byte critical",
     WATCH_A + 'rss_warning = "50%"\nrss_critical = "3GiB"\n', "watch[0].rss_warning",
     "below rss_critical"),
    ("cpu warning equal to critical", WATCH_A + "cpu_warning = 300\ncpu_critical = 300\n",
     "watch[0].cpu_warning", "below cpu_critical"),
    ("cpu warning nan", WATCH_A + "cpu_warning = nan\n", "watch[0].cpu_warning", "positive"),
    ("cpu critical negative", WATCH_A + "cpu_critical = -5\n", "watch[0].cpu_critical",
     "positive"),
    ("invalid regex", WATCH_A + 'cmdline = "claude(["\n', "watch[0].cmdline",
     "invalid regular expression"),
    ("unparsable size", WATCH_A + 'rss_critical = "lots"\n', "watch[0].rss_critical",
     "expected bytes"),
    ("unknown size unit", WATCH_A + 'rss_critical = "3 parsecs"\n', "watch[0].rss_critical",
     "expected bytes"),
    ("negative size", WATCH_A + 'rss_critical = "-1GiB"\n', "watch[0].rss_critical",
     "expected bytes"),
    ("zero size", WATCH_A + "rss_critical = 0\n", "watch[0].rss_critical", "positive"),
    ("size as bool", WATCH_A + "rss_critical = true\n", "watch[0].rss_critical", "expected bytes"),
    ("size as array", WATCH_A + "rss_critical = [1]\n", "watch[0].rss_critical", "expected bytes"),
    ("zero percent", WATCH_A + 'rss_warning = "0%"\n', "watch[0].rss_warning", "percent"),
    ("percent over 100", WATCH_A + 'rss_critical = "150%"\n', "watch[0].rss_critical", "percent"),
    ("unparsable percent", WATCH_A + 'rss_critical = "%50"\n', "watch[0].rss_critical",
     "expected bytes"),
    ("unparsable cooldown", WATCH_A + 'cooldown = "soon"\n', "watch[0].cooldown", "duration"),
    ("zero cooldown", WATCH_A + "cooldown = 0\n", "watch[0].cooldown", "positive"),
    ("nan cooldown", WATCH_A + "cooldown = nan\n", "watch[0].cooldown", "positive"),
    ("malformed dsn", '[sentry]\ndsn = "https://o1.ingest.sentry.io/42"\n', "sentry.dsn",
     "missing public key"),
    ("dsn without project", '[sentry]\ndsn = "https://k@o1.ingest.sentry.io/"\n', "sentry.dsn",
     "project id"),
    ("dsn bad scheme", '[sentry]\ndsn = "ftp://k@host/1"\n', "sentry.dsn", "scheme"),
    ("bad listen address", '[otlp]\nlisten = "nope"\n', "otlp.listen", "host:port"),
    ("percent for a non-memory size", '[spool]\nmax_bytes = "10%"\n', "spool.max_bytes",
     "expected"),
]


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [pytest.param(text, key, expected, id=name) for name, text, key, expected in BAD_INPUTS],
)
def test_bad_input_names_key_and_expectation(text: str, key: str | None, expected: str) -> None:
    """Each bad input raises ConfigError with the file, the exact key path and what was wanted."""
    error = error_of(text)
    assert error.source == SOURCE
    assert error.key == key
    assert expected in error.message
    assert "\n" not in str(error)


def test_percent_thresholds_follow_the_machines_ram() -> None:
    """A percent warning that is fine on a small machine is rejected on a big one."""
    text = WATCH_A + 'rss_warning = "50%"\nrss_critical = "3GiB"\n'
    rule = parse(text, memory=4 * GIB).watches[0]
    assert rule.rss_warning_bytes == 2 * GIB
    assert error_of(text, memory=8 * GIB).key == "watch[0].rss_warning"


def test_malformed_sentry_dsn_from_environment_is_a_config_error() -> None:
    """A bad $SENTRY_DSN is reported as $SENTRY_DSN, without repeating its key."""
    error = error_of(WATCH_A, environ={"SENTRY_DSN": "https://s3cr3tkey@host:99999/1"})
    assert error.source == "$SENTRY_DSN"
    assert "s3cr3tkey" not in str(error)


def test_dsn_key_never_appears_in_errors_or_described_config() -> None:
    """Neither an error about a DSN nor the printed config carries the DSN's key."""
    error = error_of('[sentry]\ndsn = "https://s3cr3tkey@o1.ingest.sentry.io/"\n')
    assert "s3cr3tkey" not in str(error)
    config = parse('[sentry]\ndsn = "https://s3cr3tkey@o1.ingest.sentry.io/42"\n')
    assert config.sentry.dsn is not None
    described = describe(config)
    assert described["sentry"]["dsn_redacted"] == "https://o1.ingest.sentry.io/42"
    assert "s3cr3tkey" not in repr(described)


def test_load_config_missing_explicit_file(tmp_path: Path) -> None:
    """A --config path that does not exist is an error, not a fallback to the default."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, {}, MEMORY)
    assert info.value.source == str(missing)
    assert "not found" in info.value.message


def test_load_config_from_environment_variable_that_is_missing(tmp_path: Path) -> None:
    """$TELEMETRYD_CONFIG naming a missing file is an error naming that file."""
    missing = tmp_path / "env.toml"
    with pytest.raises(ConfigError) as info:
        load_config(None, {"TELEMETRYD_CONFIG": str(missing)}, MEMORY)
    assert info.value.source == str(missing)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda p: p.mkdir(), "is a directory", id="directory"),
        pytest.param(lambda p: p.write_bytes(b'[daemon]\nlog_level = "\xff"\n'), "not UTF-8",
                     id="not-utf8"),
        pytest.param(lambda p: p.symlink_to(p), "cannot read", id="symlink-loop"),
    ],
)
def test_load_config_unreadable_files(tmp_path: Path, make: Any, expected: str) -> None:
    """Files that exist but cannot be read as TOML text give a ConfigError naming the file."""
    path = tmp_path / "telemetryd.toml"
    make(path)
    with pytest.raises(ConfigError) as info:
        load_config(path, {}, MEMORY)
    assert info.value.source == str(path)
    assert info.value.key is None
    assert expected in info.value.message


def test_load_config_reads_and_parses_a_file(tmp_path: Path) -> None:
    """A good file is read and its path becomes the config's source."""
    path = tmp_path / "telemetryd.toml"
    path.write_text(WATCH_A + 'rss_critical = "2GiB"\n', encoding="utf-8")
    config = load_config(path, {"TELEMETRYD_CONFIG": "/elsewhere.toml"}, MEMORY)
    assert config.source == str(path)
    assert config.watches[0].rss_critical_bytes == 2 * GIB


def test_search_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--config beats $TELEMETRYD_CONFIG, which beats the user config dir, then /etc."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    user_file = tmp_path / "xdg" / "telemetryd" / "telemetryd.toml"
    explicit = Path("/a.toml")
    env = {"TELEMETRYD_CONFIG": "/b.toml"}
    assert config_search_path(explicit, env) == [explicit]
    assert config_search_path(None, env) == [Path("/b.toml")]
    assert config_search_path(None, {}) == [user_file, SYSTEM_CONFIG_PATH]


def test_find_config_file_prefers_user_file_else_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no explicit path, the user file is used if present, else the embedded default."""
    if SYSTEM_CONFIG_PATH.exists():
        pytest.skip("this machine has a system-wide telemetryd config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert find_config_file(None, {}) is None
    assert load_config(None, {}, MEMORY).source == EMBEDDED_DEFAULT
    user_file = tmp_path / "xdg" / "telemetryd" / "telemetryd.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text(WATCH_A, encoding="utf-8")
    assert find_config_file(None, {}) == user_file


def test_config_is_frozen() -> None:
    """A parsed config cannot be changed behind the daemon's back."""
    config = parse(WATCH_A)
    with pytest.raises(AttributeError):
        config.watches[0].sustained = 9  # type: ignore[misc]


_UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
          "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


@given(count=st.integers(min_value=1, max_value=10**6), unit=st.sampled_from(sorted(_UNITS)),
       space=st.sampled_from(["", " "]), lower=st.booleans())
def test_parse_size_round_trips_integer_counts_of_every_unit(
    count: int, unit: str, space: str, lower: bool
) -> None:
    """'<n><unit>' parses to exactly n times the unit, whatever the case and spacing."""
    text = f"{count}{space}{unit.lower() if lower else unit}"
    assert parse_size(text, 0) == count * _UNITS[unit]


@given(st.integers(min_value=1, max_value=2**62))
def test_parse_size_passes_byte_counts_through(count: int) -> None:
    """An integer is already bytes, and its decimal string means the same (up to 2**53)."""
    assert parse_size(count, 0) == count
    # Strings go through float, exact only up to 2**53 bytes (8 PiB): far past any RAM.
    if count <= 2**53:
        assert parse_size(str(count), 0) == count


@given(percent=st.integers(min_value=1, max_value=100),
       memory=st.integers(min_value=1024**2, max_value=2**45))
def test_parse_size_percent_is_that_share_of_ram(percent: int, memory: int) -> None:
    """'p%' is p hundredths of the RAM given."""
    assert parse_size(f"{percent}%", memory) == int(memory * percent / 100)


@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.booleans(), st.none()))
def test_parse_size_returns_positive_bytes_or_value_error(value: object) -> None:
    """Any input either parses to a positive byte count or raises ValueError saying why."""
    try:
        size = parse_size(value, MEMORY)
    except ValueError as exc:
        assert str(exc)
    else:
        assert isinstance(size, int) and size > 0


def test_parse_size_percent_needs_known_ram() -> None:
    """A percent where RAM does not apply (0 bytes) is refused, never turned into 0 bytes."""
    with pytest.raises(ValueError, match="percent"):
        parse_size("10%", 0)
    with pytest.raises(ValueError):
        parse_size("0.00000001%", MEMORY)


@given(amount=st.integers(min_value=0, max_value=10**6), unit=st.sampled_from("smhd"))
def test_parse_duration_units(amount: int, unit: str) -> None:
    """'<n>s|m|h|d' parses to n times 1, 60, 3600 or 86400 seconds."""
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(f"{amount}{unit}") == amount * factor


_TOML_VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.booleans(),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
_WATCH_KEYS = ["name", "process_name", "cmdline", "pid", "pidfile", "user", "include_children",
               "rss_warning", "rss_critical", "cpu_warning", "cpu_critical", "sustained",
               "cpu_sustained", "cooldown", "bogus", "exe", "interpreter_cmdline",
               "exclude_exe", "exclude_cmdline", "orphans_warning", "orphans_rss",
               "reap_orphans", "reap_grace"]
_DAEMON_KEYS = ["interval", "state_dir", "log_format", "log_level", "history_samples",
                "trend_window"]


@settings(max_examples=300)
@given(
    watch=st.dictionaries(st.sampled_from(_WATCH_KEYS), _TOML_VALUES, max_size=6),
    daemon=st.dictionaries(st.sampled_from(_DAEMON_KEYS), _TOML_VALUES, max_size=3),
    section=st.sampled_from(["spool", "sentry", "otlp", "metrics", "budget"]),
    section_value=st.dictionaries(
        st.sampled_from(["max_reports", "max_bytes", "max_age_days", "dsn", "environment",
                         "listen", "enabled", "max_body_bytes", "queue_size", "agent",
                         "daily_usd", "retention_bytes"]),
        _TOML_VALUES, max_size=3),
)
def test_any_decoded_toml_gives_a_config_or_a_config_error(
    watch: dict[str, Any], daemon: dict[str, Any], section: str, section_value: dict[str, Any]
) -> None:
    """Whatever types a user writes, parsing never fails with anything but ConfigError."""
    data: dict[str, Any] = {"daemon": daemon, "watch": [{"name": "w", "pid": 1, **watch}],
                            section: [section_value] if section == "budget" else section_value}
    try:
        config = parse_config(data, SOURCE, {}, MEMORY)
    except ConfigError as exc:
        assert exc.source == SOURCE
        assert exc.key is None or re.match(r"^[a-z_]+(\[\d+\])?(\.[a-z_]+)?$", exc.key), exc.key
        return
    rule = config.watches[0]
    assert config.daemon.interval_seconds > 0
    assert rule.sustained >= 1 and rule.cooldown_seconds > 0
    for size in (rule.rss_warning_bytes, rule.rss_critical_bytes, config.spool.max_bytes):
        assert size is None or size > 0


def test_store_content_is_off_by_default_and_reaches_the_receiver() -> None:
    """[otlp] store_content defaults to false, true turns it on, and anything but a boolean
    is an error naming the key."""
    assert parse("").otlp.store_content is False
    assert parse("[otlp]\nstore_content = true\n").otlp.store_content is True
    with pytest.raises(ConfigError, match="store_content"):
        parse('[otlp]\nstore_content = "yes"\n')

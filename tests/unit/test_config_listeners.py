"""[otlp] and [metrics]: every receiver bound is a key with a range, and check-config prints it."""

from __future__ import annotations

import dataclasses

import pytest

from daemon.config.parse import ConfigError, parse_config_text
from daemon.config.render import as_toml, describe
from daemon.config.schema import Config, OtlpSettings
from daemon.web.http.routes import ListenerLimits

MEMORY = 8 * 1024**3
BOUNDS = """
[daemon]
state_dir = "/tmp/telemetryd-test"
[otlp]
max_connections = 8
read_timeout = "3s"
keepalive_timeout = "20s"
max_header_bytes = "8KiB"
max_body_bytes = "1MiB"
max_decompressed_bytes = "2MiB"
max_inflight_bytes = "16MiB"
max_items_per_request = 5000
decode_concurrency = 2
max_metrics = 100
max_series = 5000
max_agents = 20
max_models = 40
max_tools = 30
max_sessions = 500
series_idle = "30m"
retention_check_interval = "10s"
trust = "token"
[metrics]
max_connections = 4
read_timeout = "2s"
keepalive_timeout = "5s"
max_header_bytes = "4KiB"
"""


def parse(text: str) -> Config:
    """Parse a config text as the daemon would."""
    return parse_config_text(text, "<test>", {}, MEMORY)


def test_every_receiver_bound_is_read_from_the_file() -> None:
    """Each [otlp] and [metrics] bound lands in the settings, in bytes and seconds."""
    config = parse(BOUNDS)
    otlp, wire = config.otlp, config.otlp.wire
    assert (wire.max_connections, wire.read_timeout_seconds, wire.keepalive_timeout_seconds) == (
        8, 3.0, 20.0)
    assert (wire.max_header_bytes, wire.max_decompressed_bytes, wire.max_inflight_bytes) == (
        8192, 2 << 20, 16 << 20)
    assert (otlp.max_items_per_request, otlp.decode_concurrency) == (5000, 2)
    assert (otlp.max_metrics, otlp.max_series, otlp.max_agents, otlp.max_models,
            otlp.max_tools, otlp.max_sessions) == (100, 5000, 20, 40, 30, 500)
    assert (otlp.series_idle_seconds, otlp.retention_check_seconds) == (1800.0, 10.0)
    assert otlp.trust == "token"
    metrics = config.metrics.wire
    assert (metrics.max_connections, metrics.read_timeout_seconds,
            metrics.keepalive_timeout_seconds, metrics.max_header_bytes) == (4, 2.0, 5.0, 4096)


def test_both_listeners_share_one_wire_limits_type() -> None:
    """[otlp] and [metrics] wire limits are one type, the one the web listeners take; the
    metrics listener's body limits stay fixed (GET only)."""
    config = parse(BOUNDS)
    assert type(config.otlp.wire) is type(config.metrics.wire) is ListenerLimits
    assert (config.otlp.wire.max_connections, config.otlp.wire.max_header_bytes) == (8, 8192)
    assert config.metrics.wire.max_body_bytes == Config.metrics.wire.max_body_bytes


def test_check_config_prints_every_bound_and_it_parses_back() -> None:
    """check-config's TOML holds each bound and reads back to the same settings."""
    config = parse(BOUNDS)
    text = as_toml(describe(config))
    for key in ("max_agents = 20", "max_sessions = 500", "read_timeout = 3.0",
                "retention_check_interval = 10.0", "decode_concurrency = 2",
                'trust = "token"'):
        assert key in text
    again = parse(text)
    assert again.otlp == config.otlp
    assert again.metrics == config.metrics


def test_defaults_come_from_the_schema() -> None:
    """With no keys, the settings are the schema's defaults."""
    config = parse('[daemon]\nstate_dir = "/tmp/x"\n')
    assert config.otlp == dataclasses.replace(OtlpSettings(), listen=config.otlp.listen)
    assert config.otlp.trust == "watched"
    assert config.metrics == Config.metrics


@pytest.mark.parametrize(("text", "key", "expected"), [
    ("[otlp]\nmax_agents = 0", "otlp.max_agents", "expected an integer >= 1"),
    ("[otlp]\nmax_sessions = 100000000", "otlp.max_sessions", "between 1 and 1e+07"),
    ("[otlp]\ndecode_concurrency = 65", "otlp.decode_concurrency", "between 1 and 64"),
    ("[otlp]\nmax_connections = 1.5", "otlp.max_connections", "expected an integer"),
    ('[otlp]\nread_timeout = "2h"', "otlp.read_timeout", "between 0.1 and 3600"),
    ('[otlp]\nmax_header_bytes = "100"', "otlp.max_header_bytes", "between 1024"),
    ('[otlp]\nmax_body_bytes = "8MiB"\nmax_decompressed_bytes = "4MiB"',
     "otlp.max_decompressed_bytes", "at least max_body_bytes"),
    ('[otlp]\nmax_inflight_bytes = "1MiB"', "otlp.max_inflight_bytes",
     "at least max_decompressed_bytes"),
    ('[otlp]\nseries_idle = "0s"', "otlp.series_idle", "positive"),
    ('[otlp]\ntrust = "all"', "otlp.trust", 'expected "any", "watched" or "token"'),
    ("[otlp]\ntrust = true", "otlp.trust", "expected a string"),
    ("[metrics]\nmax_connections = 0", "metrics.max_connections", "expected an integer >= 1"),
    ('[metrics]\nkeepalive_timeout = "1d"', "metrics.keepalive_timeout", "between"),
    ("[metrics]\nmax_body_bytes = 10", "metrics.max_body_bytes", "unknown key"),
])
def test_a_bound_out_of_range_names_its_key(text: str, key: str, expected: str) -> None:
    """Out of range, wrong type or inconsistent: a ConfigError with the key path."""
    with pytest.raises(ConfigError) as caught:
        parse('[daemon]\nstate_dir = "/tmp/x"\n' + text)
    assert caught.value.key == key
    assert expected in caught.value.message

"""The exporter-toolkit web config: what it accepts, and errors that name the key path."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt
import pytest

from daemon.config.errors import ConfigError
from daemon.config.files.web_config import parse_web_config
from daemon.config.parse import parse_config_text
from daemon.web.http.auth import WebGuard

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)


def error_key(text: str) -> str | None:
    with pytest.raises(ConfigError) as caught:
        parse_web_config(text, "web.yml", Path("/etc/telemetryd"))
    return caught.value.key


def test_relative_paths_are_taken_from_the_file_folder() -> None:
    """cert_file and key_file relative to the web config, as exporter-toolkit reads them."""
    cfg = parse_web_config("tls_server_config:\n  cert_file: a.crt\n  key_file: /k/a.key\n"
                           f"basic_auth_users:\n  prom: '{HASH}'\n", "w", Path("/etc/t"))
    assert cfg.tls is not None
    assert cfg.tls.cert_file == Path("/etc/t/a.crt") and cfg.tls.key_file == Path("/k/a.key")
    assert cfg.users == {"prom": HASH.encode()}
    assert HASH not in repr(cfg)


@pytest.mark.parametrize(("text", "key"), [
    ("tls_server_config:\n  key_file: k\n", "tls_server_config.cert_file"),
    ("tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: []\n",
     "tls_server_config.cipher_suites"),
    ("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: "
     "RequireAndVerifyClientCert\n", "tls_server_config.client_ca_file"),
    ("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Any\n",
     "tls_server_config.client_auth_type"),
    ("http_server_config:\n  http2: false\n", "http_server_config"),
    ("basic_auth_users:\n  prom: hunter2\n", "basic_auth_users.prom"),
    ("basic_auth_users: [a]\n", "basic_auth_users"),
])
def test_errors_name_the_key(text: str, key: str) -> None:
    """Each mistake is refused with its key path (a password in place of a hash is not echoed)."""
    assert error_key(text) == key


def test_yaml_errors_say_where() -> None:
    """Broken YAML is a ConfigError with a line, not a traceback."""
    with pytest.raises(ConfigError, match="line 2"):
        parse_web_config("a: 1\n b: [\n", "w", Path("/"))


def test_non_loopback_listen_needs_a_web_config_or_an_opt_out() -> None:
    """listen off loopback: refused naming [metrics] web_config_file, unless opted out."""
    base = '[daemon]\nstate_dir = "/tmp/x"\n[metrics]\nlisten = "10.0.0.5:9464"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config_text(base, "<t>", {}, 1 << 33)
    assert caught.value.key == "metrics.web_config_file"
    parse_config_text(base + "allow_unauthenticated = true\n", "<t>", {}, 1 << 33)
    config = parse_config_text(base + 'web_config_file = "/etc/t/web.yml"\n', "<t>", {}, 1 << 33)
    assert config.metrics.web_config_file == Path("/etc/t/web.yml")
    with pytest.raises(ConfigError, match="absolute"):
        parse_config_text(base + 'web_config_file = "web.yml"\n', "<t>", {}, 1 << 33)


def test_guard_checks_users_and_takes_new_ones() -> None:
    """Right password passes, wrong or unknown fails; apply() replaces the users."""
    def header(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    guard = WebGuard(parse_web_config(f"basic_auth_users:\n  prom: '{HASH}'\n", "w", Path("/")))
    assert guard.check(header("prom", "s3cret")) and guard.check(header("prom", "s3cret"))
    assert not guard.check(header("prom", "wrong")) and not guard.check(header("x", "s3cret"))
    assert not guard.check(None) and not guard.check(header("prom", "a" * 100))
    other = bcrypt.hashpw(b"new", bcrypt.gensalt(4)).decode()
    guard.apply(parse_web_config(f"basic_auth_users:\n  prom: '{other}'\n", "w", Path("/")))
    assert not guard.check(header("prom", "s3cret")) and guard.check(header("prom", "new"))


def test_unknown_users_pay_a_full_bcrypt_check() -> None:
    """The dummy hash an unknown user is checked against is a valid cost-10 hash, as dear as
    htpasswd's: a malformed one would raise and answer an unknown user at once."""
    from daemon.web.http import auth

    assert auth._DUMMY_HASH.split(b"$")[2] == b"10"
    assert bcrypt.checkpw(b"telemetryd-no-such-user", auth._DUMMY_HASH)

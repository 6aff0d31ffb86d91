"""[metrics] web_config_file: TLS and basic auth on every page of the metrics listener, reloaded
on SIGHUP; a listen address off loopback without it is refused at start."""

from __future__ import annotations

import json
import signal
import ssl
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_watchdog import write_config
from tests.support.daemon_proc import DaemonProcess, cli
from tests.support.web_auth import (
    file_cert_sha256,
    get,
    make_cert,
    served_cert_sha256,
    write_web_config,
)

NO_MATCH = 'name = "nobody"\nprocess_name = "telemetryd-no-such-agent"\n'
PAGES = ("/metrics", "/", "/api/status", "/api/history")


@dataclass
class Secured:
    """A running daemon whose metrics listener takes a web config."""

    daemon: DaemonProcess
    config: Path
    web: Path
    cert: Path
    key: Path
    port: int

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"


def metrics_port(daemon: DaemonProcess) -> int:
    """The metrics listener's bound port, as the daemon logs it."""
    return int(daemon.wait_event("metrics.listening", timeout=60)["port"])


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    cert, key = make_cert(tmp_path, "server", ("127.0.0.1",))
    web = write_web_config(tmp_path / "web.yml", {"prometheus": "first-pass"}, cert, key)
    config = write_config(tmp_path, NO_MATCH)
    config.write_text(config.read_text().replace(
        '[metrics]\nlisten = "127.0.0.1:0"\n',
        f'[metrics]\nlisten = "127.0.0.1:0"\nweb_config_file = "{web}"\n'))
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        daemon.wait_event("metrics.listening", tls=True, basic_auth=True)
        yield Secured(daemon, config, web, cert, key, metrics_port(daemon))
    finally:
        assert daemon.stop() == 0


def test_every_page_needs_credentials_over_tls(secured: Secured) -> None:
    """No credentials or a wrong password: 401 with a Basic challenge; the right ones: 200."""
    for path in PAGES:
        bare = get(secured.url(path), secured.cert)
        assert bare.status == 401, path
        assert bare.headers.get("WWW-Authenticate", "").startswith("Basic"), path
        assert get(secured.url(path), secured.cert, ("prometheus", "wrong")).status == 401, path
        assert get(secured.url(path), secured.cert, ("nobody", "first-pass")).status == 401, path
        good = get(secured.url(path), secured.cert, ("prometheus", "first-pass"))
        assert good.status == 200, path
    scrape = get(secured.url("/metrics"), secured.cert, ("prometheus", "first-pass"))
    assert b"telemetryd_" in scrape.body


def test_a_page_of_the_tls_listener_is_served_to_its_own_https_origin(secured: Secured) -> None:
    """Behind TLS the status page's own requests carry ``Origin: https://`` + Host: served;
    the same page's ``http://`` origin, or another site's, is refused (403)."""
    good = ("prometheus", "first-pass")
    own = f"https://127.0.0.1:{secured.port}"
    for path in ("/api/status", "/metrics"):
        answer = get(secured.url(path), secured.cert, good, headers={"Origin": own})
        assert answer.status == 200, path
        for other in (f"http://127.0.0.1:{secured.port}", "https://evil.example"):
            refused = get(secured.url(path), secured.cert, good, headers={"Origin": other})
            assert refused.status == 403, (path, other)


def test_plain_http_gets_nothing(secured: Secured) -> None:
    """The listener speaks TLS only: a plain-HTTP scrape with good credentials gets no page."""
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        answer = get(f"http://127.0.0.1:{secured.port}/metrics", auth=("prometheus", "first-pass"))
        assert answer.status != 200


def test_a_changed_password_file_takes_effect_on_sighup(secured: Secured) -> None:
    """New users and passwords apply after SIGHUP, and the old password stops working."""
    assert get(secured.url("/metrics"), secured.cert, ("prometheus", "first-pass")).status == 200
    write_web_config(secured.web, {"prometheus": "second-pass", "grafana": "other"},
                     secured.cert, secured.key)
    assert get(secured.url("/metrics"), secured.cert, ("prometheus", "first-pass")).status == 200
    secured.daemon.signal(signal.SIGHUP)
    secured.daemon.wait_event("web_config.loaded", users=2)
    assert get(secured.url("/metrics"), secured.cert, ("prometheus", "first-pass")).status == 401
    assert get(secured.url("/metrics"), secured.cert, ("prometheus", "second-pass")).status == 200
    assert get(secured.url("/api/status"), secured.cert, ("grafana", "other")).status == 200


def test_a_rotated_certificate_is_served_after_sighup(secured: Secured, tmp_path: Path) -> None:
    """Certificate and key replaced in place: new handshakes present the new one after SIGHUP."""
    before = served_cert_sha256("127.0.0.1", secured.port)
    assert before == file_cert_sha256(secured.cert)
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    new_cert, new_key = make_cert(rotated, "server", ("127.0.0.1",))
    secured.cert.write_bytes(new_cert.read_bytes())
    secured.key.write_bytes(new_key.read_bytes())
    secured.daemon.signal(signal.SIGHUP)
    secured.daemon.wait_event("web_config.loaded")
    after = served_cert_sha256("127.0.0.1", secured.port)
    assert after == file_cert_sha256(secured.cert) != before
    assert get(secured.url("/metrics"), secured.cert, ("prometheus", "first-pass")).status == 200


def test_a_broken_web_config_on_sighup_keeps_the_old_one(secured: Secured) -> None:
    """A web config that does not parse is refused on reload; the users in force stay."""
    secured.web.write_text("basic_auth_users:\n  prometheus: not-a-hash\n")
    secured.daemon.signal(signal.SIGHUP)
    event = secured.daemon.wait_event("config.error")
    assert event["key"] == "basic_auth_users.prometheus" and "not-a-hash" not in json.dumps(event)
    assert get(secured.url("/metrics"), secured.cert, ("prometheus", "first-pass")).status == 200


def test_listen_off_loopback_without_auth_is_refused(tmp_path: Path) -> None:
    """`run` and `check-config` exit 78 naming [metrics] web_config_file; opting out works."""
    config = write_config(tmp_path, NO_MATCH)
    config.write_text(config.read_text().replace('[metrics]\nlisten = "127.0.0.1:0"',
                                                 '[metrics]\nlisten = "0.0.0.0:0"'))
    for command in ("run", "check-config"):
        result = cli("--config", str(config), command, timeout=60)
        assert result.returncode == 78, (command, result.stderr)
        assert "metrics.web_config_file" in result.stderr, command
    config.write_text(config.read_text().replace(
        '"0.0.0.0:0"', '"0.0.0.0:0"\nallow_unauthenticated = true'))
    assert cli("--config", str(config), "check-config").returncode == 0


def test_the_status_page_of_an_unsecured_listener_stays_open(tmp_path: Path) -> None:
    """Without a web config the loopback listener answers as before (no TLS, no auth)."""
    config = write_config(tmp_path, NO_MATCH)
    daemon = DaemonProcess(config, tmp_path / "log.jsonl")
    try:
        port = metrics_port(daemon)
        assert get(f"http://127.0.0.1:{port}/metrics").status == 200
    finally:
        assert daemon.stop() == 0


_ = ssl  # imported for the type of the errors urllib raises over TLS

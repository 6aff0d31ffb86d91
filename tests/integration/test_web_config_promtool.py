"""The web configs telemetryd takes are the ones Prometheus's own tool accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path

from daemon.config.files.web_config import load_web_config
from tests.support.web_auth import make_cert, write_web_config


def test_promtool_and_telemetryd_accept_the_same_file(tmp_path: Path) -> None:
    """A TLS + htpasswd-hashed basic-auth file passes `promtool check web-config` and ours."""
    cert, key = make_cert(tmp_path, "server", ("127.0.0.1",))
    web = write_web_config(tmp_path / "web.yml", {"prometheus": "pw"}, cert, key)
    checked = subprocess.run(["promtool", "check", "web-config", str(web)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    config = load_web_config(web)
    assert config.tls is not None and config.tls.cert_file == cert
    assert list(config.users) == ["prometheus"]

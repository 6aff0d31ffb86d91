"""``[metrics] web_config_file``: Prometheus's exporter-toolkit web configuration (YAML).

The same file every Prometheus exporter takes with ``--web.config.file``::

    tls_server_config:
      cert_file: server.crt        # relative paths are relative to this file
      key_file: server.key
      client_ca_file: clients.pem  # optional, with client_auth_type
      client_auth_type: RequireAndVerifyClientCert
      min_version: TLS12           # optional
    basic_auth_users:
      prometheus: $2y$10$...       # bcrypt hashes (htpasswd -nbBC 10 USER PASS)

``parse_web_config`` is pure (text in, ``WebConfig`` out, ``ConfigError`` naming the key
path); ``load_web_config`` reads the file. Keys exporter-toolkit knows and telemetryd does
not implement (cipher suites, curve preferences, allowed SANs, HTTP headers) are refused by
name rather than ignored, so a file never promises more than the listener does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from daemon.config.errors import ConfigError

ClientAuth = Literal["NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]
CLIENT_AUTH_TYPES: tuple[ClientAuth, ...] = (
    "NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")
MAX_WEB_CONFIG_BYTES = 1 << 20
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


@dataclass(frozen=True)
class TlsServerConfig:
    """``tls_server_config``: the certificate the listener presents, and client certs."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth_type: ClientAuth = "NoClientCert"
    min_version: str = "TLS12"


@dataclass(frozen=True)
class WebConfig:
    """A parsed web config; ``users`` maps a name to its bcrypt hash (never a password)."""

    source: str
    tls: TlsServerConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)

    def __repr__(self) -> str:  # the hashes stay out of logs and tracebacks
        return f"WebConfig({self.source!r}, tls={self.tls is not None}, users={len(self.users)})"


def parse_web_config(text: str, source: str, base_dir: Path) -> WebConfig:
    """The web config in ``text``; relative paths are taken from ``base_dir``.

    >>> cfg = parse_web_config("basic_auth_users:\\n  p: $2y$10$" + "a" * 53, "w.yml", Path("/"))
    >>> sorted(cfg.users), cfg.tls
    (['p'], None)
    >>> parse_web_config("tls_server_config: {cert_file: c}", "w.yml", Path("/etc"))
    Traceback (most recent call last):
    ...
    daemon.config.errors.ConfigError: w.yml: tls_server_config.key_file: is required with cert_file
    """
    import yaml  # only configs that name a web config pay for PyYAML

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(source, None, f"not valid YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, None, "expected a mapping at the top")
    _reject_unknown(data, source, "", ("tls_server_config", "basic_auth_users"))
    tls = _tls(data.get("tls_server_config"), source, base_dir)
    return WebConfig(source, tls, _users(data.get("basic_auth_users"), source))


def load_web_config(path: Path) -> WebConfig:
    """Read and parse the web config at ``path`` (ConfigError when it cannot be read)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_WEB_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_WEB_CONFIG_BYTES:
        raise ConfigError(str(path), None, f"larger than {MAX_WEB_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, "not UTF-8 text") from None
    return parse_web_config(text, str(path), path.parent)


def _reject_unknown(data: Mapping[Any, Any], source: str, prefix: str,
                    known: tuple[str, ...]) -> None:
    for key in data:
        if key not in known:
            raise ConfigError(source, f"{prefix}{key}",
                              "not supported by telemetryd (known: " + ", ".join(known) + ")")


def _tls(value: Any, source: str, base_dir: Path) -> TlsServerConfig | None:
    if value is None:
        return None
    key = "tls_server_config"
    if not isinstance(value, dict):
        raise ConfigError(source, key, "expected a mapping")
    _reject_unknown(value, source, f"{key}.", ("cert_file", "key_file", "client_ca_file",
                                               "client_auth_type", "min_version"))

    def path(name: str) -> Path | None:
        text = value.get(name)
        if text is None:
            return None
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(source, f"{key}.{name}", "expected a file path")
        return base_dir / Path(text).expanduser()

    cert, private = path("cert_file"), path("key_file")
    if cert is None:
        raise ConfigError(source, f"{key}.cert_file", "is required in tls_server_config")
    if private is None:
        raise ConfigError(source, f"{key}.key_file", "is required with cert_file")
    auth = value.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH_TYPES:
        raise ConfigError(source, f"{key}.client_auth_type",
                          f"expected one of {', '.join(CLIENT_AUTH_TYPES)}, got {auth!r}")
    ca = path("client_ca_file")
    if auth != "NoClientCert" and ca is None:
        raise ConfigError(source, f"{key}.client_ca_file", f"is required with {auth}")
    version = value.get("min_version", TlsServerConfig.min_version)
    if version not in TLS_VERSIONS:
        raise ConfigError(source, f"{key}.min_version",
                          f"expected one of {', '.join(TLS_VERSIONS)}, got {version!r}")
    return TlsServerConfig(cert, private, ca, auth, version)


def _users(value: Any, source: str) -> dict[str, bytes]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(source, "basic_auth_users", "expected a mapping of name to bcrypt hash")
    users: dict[str, bytes] = {}
    for name, hashed in value.items():
        where = f"basic_auth_users.{name}"
        if not isinstance(name, str) or not name or ":" in name:
            raise ConfigError(source, "basic_auth_users", "a user name is empty or holds ':'")
        if not isinstance(hashed, str) or not hashed.startswith(_BCRYPT_PREFIXES) \
                or len(hashed) != 60:
            # Never echo the value: a password pasted in place of its hash would be logged.
            raise ConfigError(source, where, "expected a bcrypt hash ($2y$..., 60 characters; "
                              "make one with `htpasswd -nbBC 10 USER PASS`)")
        users[name] = hashed.encode("ascii")
    return users

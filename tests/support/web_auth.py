"""Certificates, htpasswd hashes, exporter-toolkit web configs and HTTPS requests for tests."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Answer:
    """What a server answered."""

    status: int
    body: bytes
    headers: dict[str, str]


def make_cert(folder: Path, name: str, ips: tuple[str, ...]) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) valid for ``ips``, made by openssl."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    sans = ",".join(f"IP:{ip}" for ip in ips)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName={sans}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    return cert, key


def htpasswd_hash(user: str, password: str) -> str:
    """A bcrypt hash in the ``$2y$`` form exporters take, made by apache2-utils' htpasswd."""
    out = subprocess.run(["htpasswd", "-nbBC", "10", user, password], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return out.strip().split(":", 1)[1]


def write_web_config(path: Path, users: dict[str, str], cert: Path | None = None,
                     key: Path | None = None) -> Path:
    """An exporter-toolkit web config with these users (name -> password, hashed here)."""
    lines = []
    if cert is not None and key is not None:
        lines += ["tls_server_config:", f"  cert_file: {cert}", f"  key_file: {key}"]
    if users:
        lines.append("basic_auth_users:")
        lines += [f"  {name}: '{htpasswd_hash(name, pw)}'" for name, pw in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def get(url: str, cafile: Path | None = None, auth: tuple[str, str] | None = None,
        timeout: float = 30.0, headers: dict[str, str] | None = None) -> Answer:
    """GET ``url`` (over TLS trusting only ``cafile``); any HTTP status is an answer."""
    request = urllib.request.Request(url, headers=headers or {})
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return Answer(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read(), dict(exc.headers))


def served_cert_sha256(host: str, port: int) -> str:
    """The SHA-256 of the certificate the server presents now (not verified)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def file_cert_sha256(cert: Path) -> str:
    """The SHA-256 of the DER form of a PEM certificate file."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.read_text())).hexdigest()

"""TLS and basic auth for a listener, from an exporter-toolkit web config.

``WebGuard`` holds what a ``WebConfig`` asks for: an ``ssl.SSLContext`` handed to uvicorn
when the socket is served, and the users' bcrypt hashes. ``guard(route, web_guard)`` wraps a
route so a request without valid credentials gets a 401 with ``WWW-Authenticate`` before the
handler runs. ``WebGuard.apply(new)`` swaps users and reloads the certificate chain into the
same context (new handshakes use it; connections open keep theirs): SIGHUP's path.

bcrypt costs about 50 ms at cost 10, so checks run off the event loop, and a password that
matched once is remembered (by a SHA-256 of user, hash and password, never the password) so
a Prometheus scraping every few seconds pays it once. An unknown user is checked against a
dummy hash, so the answer takes as long as for a known one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ssl
import threading
from collections.abc import Mapping

import bcrypt
import structlog

from daemon.config.files.web_config import TlsServerConfig, WebConfig
from daemon.web.http.routes import Request, Response, Route

log = structlog.get_logger(component="web.auth")

_REALM = 'Basic realm="telemetryd"'
_MAX_REMEMBERED = 64
# An unknown user is checked against this hash of a string no user sends, at cost 10 like
# htpasswd's: a literal, because hashing it at import took 60 ms of the daemon's start-up.
_DUMMY_HASH = b"$2b$10$155X2Y5MN3EwVwuxLqZpWeVIeGxmhvpEsbO6Vn0FxzlUAeN.5ojfe"
_TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                 "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
                "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}


def parse_basic(header: str | None) -> tuple[str, bytes] | None:
    """User and password from an ``Authorization: Basic`` header (None if absent or malformed).

    >>> parse_basic("Basic " + base64.b64encode(b"prom:s3cret").decode())
    ('prom', b's3cret')
    >>> parse_basic("Bearer x") is None, parse_basic("Basic !!") is None
    (True, True)
    """
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode("utf-8", "replace"), password


def make_ssl_context(tls: TlsServerConfig) -> ssl.SSLContext:
    """A server context for ``tls`` (OSError / ssl.SSLError when a file is unusable)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[tls.min_version]
    load_tls(context, tls)
    return context


def load_tls(context: ssl.SSLContext, tls: TlsServerConfig) -> None:
    """Load the chain, the client CA and the client-auth mode into ``context``."""
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.client_ca_file is not None:
        context.load_verify_locations(cafile=str(tls.client_ca_file))
    context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]


class WebGuard:
    """The TLS context and users of one listener; ``apply`` takes a reloaded web config."""

    def __init__(self, config: WebConfig) -> None:
        self.tls = config.tls
        self.ssl_context = make_ssl_context(config.tls) if config.tls else None
        self._users: Mapping[str, bytes] = dict(config.users)
        self._good: set[bytes] = set()
        self._lock = threading.Lock()

    @property
    def requires_auth(self) -> bool:
        """Whether requests must carry credentials (the config lists users)."""
        return bool(self._users)

    def apply(self, config: WebConfig) -> bool:
        """Take new users and reload the certificate chain; False (old kept) on a bad file."""
        if (config.tls is None) != (self.ssl_context is None):
            log.warning("web_config.reload_ignored", key="tls_server_config",
                        reason="switching TLS on or off takes a restart")
        elif config.tls is not None and self.ssl_context is not None:
            try:
                load_tls(self.ssl_context, config.tls)
            except (OSError, ssl.SSLError) as exc:
                log.error("web_config.tls_failed", file=config.source, error=str(exc),
                          action="kept the previous certificate")
                return False
            self.tls = config.tls
        with self._lock:
            self._users = dict(config.users)
            self._good.clear()
        log.info("web_config.loaded", file=config.source, users=len(config.users),
                 tls=self.ssl_context is not None)
        return True

    def check(self, header: str | None) -> bool:
        """Whether ``header`` carries a user of the config and its password (blocking)."""
        with self._lock:
            users = self._users
        if not users:
            return True
        credentials = parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        hashed = users.get(user)
        key = hashlib.sha256(b"\0".join((user.encode(), hashed or b"", password))).digest()
        with self._lock:
            if hashed is not None and key in self._good:
                return True
        try:
            ok = bcrypt.checkpw(password, hashed or _DUMMY_HASH) and hashed is not None
        except ValueError:  # bcrypt refuses passwords over 72 bytes
            ok = False
        if ok:
            with self._lock:
                if users is self._users:
                    if len(self._good) >= _MAX_REMEMBERED:
                        self._good.clear()
                    self._good.add(key)
        return ok


def guard(route: Route, web_guard: WebGuard) -> Route:
    """``route`` answering 401 to a request without a valid user of ``web_guard``."""
    inner = route.handler

    async def handler(request: Request) -> Response:
        if web_guard.requires_auth:
            header = request.headers.get("authorization")
            loop = asyncio.get_running_loop()
            if not await loop.run_in_executor(None, web_guard.check, header):
                log.info("http.unauthorized", path=request.path,
                         client=request.client[0] if request.client else None)
                return Response(401, b"unauthorized\n", headers=(("WWW-Authenticate", _REALM),))
        return await inner(request)

    return Route(handler, route.methods, route.body)

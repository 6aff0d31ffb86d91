"""One synchronous POST of one envelope to Sentry, and what the answer means.

The outcome is a value: ``Delivered`` (2xx: the report may be removed), ``Retry``
(keep it and try later: network trouble, 5xx, 429, garbage) or ``Reject`` (the server
refused this envelope for good: quarantine it).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sentry_sdk.utils import Dsn

from crash_reports.delivery.deadline import bounded
from crash_reports.delivery.dsn import parse_dsn, redacted
from crash_reports.delivery.retry import (
    ALL_CATEGORIES,
    DEFAULT_RATE_LIMIT_SECONDS,
    parse_rate_limits,
    parse_retry_after,
)
from crash_reports.spool.envelope import EnvelopeHeader, parse_header

_MAX_BODY_BYTES = 64 * 1024
_REASON_MAX_CHARS = 300


@dataclass(frozen=True)
class Delivered:
    """The server accepted the envelope (any 2xx, even with an empty body)."""

    status: int


@dataclass(frozen=True)
class Retry:
    """Keep the envelope and try later; ``rate_limits`` maps category -> seconds."""

    reason: str
    after_seconds: float | None = None
    rate_limits: Mapping[str, float] = field(default_factory=dict)
    status: int | None = None


@dataclass(frozen=True)
class Reject:
    """The server refused this envelope for good (a 4xx other than 429)."""

    status: int | None
    reason: str


UploadOutcome = Delivered | Retry | Reject


def prepare_envelope(envelope: bytes, sent_at: datetime,
                     header: EnvelopeHeader | None = None) -> bytes:
    """The envelope with its header's ``sent_at`` set to ``sent_at`` and any ``dsn`` removed.

    Only the header line changes; items go out byte for byte. ``header``: the header as
    the spool's listing parsed it (then it is not parsed again).

    >>> raw = b'{"event_id":"ab","dsn":"x","sent_at":"old"}\\n{"type":"event"}\\n{}\\n'
    >>> out = prepare_envelope(raw, datetime(2026, 11, 2, 3, 4, 5, 600000, tzinfo=UTC))
    >>> out.splitlines()[0]
    b'{"event_id":"ab","sent_at":"2026-11-02T03:04:05.600000Z"}'
    >>> stale = parse_header(b'{"event_id":"cd"}\\n{}')  # parsed from another file
    >>> prepare_envelope(raw, datetime(2026, 11, 2, tzinfo=UTC), stale)[:16]
    b'{"event_id":"ab"'
    """
    # The listing's header, unless the bytes read are not the file it parsed.
    parsed = header if header is not None and header.heads(envelope) else parse_header(envelope)
    fields = dict(parsed.fields)
    # A stored dsn would route the envelope to whatever project wrote it, not ours.
    fields.pop("dsn", None)
    fields["sent_at"] = sent_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(fields, separators=(",", ":")).encode() + envelope[parsed.length:]


def classify_response(
    status: int, headers: Mapping[str, str], body: bytes, now: float
) -> UploadOutcome:
    """What an HTTP answer means for the spooled envelope (pure).

    >>> classify_response(200, {}, b"", 0.0)
    Delivered(status=200)
    >>> classify_response(429, {"retry-after": "30"}, b"", 0.0)
    Retry(reason='rate limited (HTTP 429)', after_seconds=30.0, rate_limits={'': 30.0}, status=429)
    >>> classify_response(413, {}, b'{"detail":"envelope too large"}', 0.0)
    Reject(status=413, reason='HTTP 413: envelope too large')
    >>> classify_response(503, {}, b"down", 0.0).reason
    'server error (HTTP 503)'
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    retry_after = parse_retry_after(lowered.get("retry-after"), now)
    if 200 <= status < 300:
        return Delivered(status)
    if status == 429:
        limits = parse_rate_limits(lowered.get("x-sentry-rate-limits"))
        if not limits:
            limits = {ALL_CATEGORIES: retry_after or DEFAULT_RATE_LIMIT_SECONDS}
        after = retry_after if retry_after is not None else max(limits.values())
        return Retry("rate limited (HTTP 429)", after, limits, status)
    if 400 <= status < 500:
        return Reject(status, f"HTTP {status}: {_body_reason(body)}".rstrip(": "))
    if status >= 500:
        return Retry(f"server error (HTTP {status})", retry_after, {}, status)
    # 1xx/3xx: not a Sentry answer (a proxy or a wrong URL); keep the report.
    return Retry(f"unexpected HTTP {status}", retry_after, {}, status)


def _body_reason(body: bytes) -> str:
    """Sentry's ``detail`` from a JSON error body, else the body's first printable text."""
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("detail"), str):
        text = parsed["detail"]
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:_REASON_MAX_CHARS]


def _network_reason(exc: BaseException) -> str:
    """A short, secret-free description of a connection-level failure."""
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed ({exc.strerror or exc})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | http.client.RemoteDisconnected):
        return "connection reset"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.__class__.__name__})"
    if isinstance(exc, http.client.HTTPException):
        return f"bad HTTP response ({exc.__class__.__name__})"
    return f"network error ({exc.__class__.__name__}: {getattr(exc, 'strerror', None) or exc})"


class Uploader:
    """Sends one envelope to the DSN's envelope endpoint and classifies the answer."""

    def __init__(
        self,
        dsn: Dsn | str,
        version: str,
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Prepare the endpoint and auth header once; ``version`` goes into the User-Agent."""
        self.dsn = dsn if isinstance(dsn, Dsn) else parse_dsn(dsn)
        self.target = redacted(self.dsn)
        self.timeout_seconds = timeout_seconds
        self._clock = clock
        client = f"telemetryd/{version}"
        self._path = f"{self.dsn.path}api/{self.dsn.project_id}/envelope/"
        self._headers = {
            "Content-Type": "application/x-sentry-envelope",
            "User-Agent": client,
            "X-Sentry-Auth": self.dsn.to_auth(client=client).to_header(),
        }

    def send(self, envelope: bytes, cancel: threading.Event | None = None,
             header: EnvelopeHeader | None = None) -> UploadOutcome:
        """POST ``envelope`` (with ``sent_at`` set to now) and return what happened;
        ``header``: its header as the spool parsed it (not parsed again).

        The whole exchange (connect, send, answer) gets ``timeout_seconds`` in total, not
        per socket read (``deadline.bounded``); ``cancel``, once set, ends it at once.
        Either way the outcome is a ``Retry`` (``timed out`` or ``cancelled``).
        """
        now = self._clock()
        try:
            body = prepare_envelope(envelope, datetime.fromtimestamp(now, UTC), header)
        except ValueError as exc:
            return Reject(None, f"not sendable: {exc}")
        connection = self._connect()
        with bounded(connection, self.timeout_seconds, cancel) as expiry:
            try:
                connection.connect()
                if expiry.reason is not None:  # ran out while connecting: no socket to stop
                    return Retry(expiry.reason)
                connection.request("POST", self._path, body=body, headers=self._headers)
                response = connection.getresponse()
                answer = response.read(_MAX_BODY_BYTES)
                headers = {key: value for key, value in response.getheaders()}
                return classify_response(response.status, headers, answer, self._clock())
            except (OSError, http.client.HTTPException) as exc:
                return Retry(expiry.reason or _network_reason(exc))
            finally:
                connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        """A fresh connection (no pooling: one flush sends few envelopes, rarely)."""
        if self.dsn.scheme == "https":
            return http.client.HTTPSConnection(
                self.dsn.host,
                self.dsn.port,
                timeout=self.timeout_seconds,
                context=ssl.create_default_context(),
            )
        return http.client.HTTPConnection(
            self.dsn.host, self.dsn.port, timeout=self.timeout_seconds
        )

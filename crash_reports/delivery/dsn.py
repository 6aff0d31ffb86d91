"""Parse and validate a Sentry DSN once, at config load; show it only without its key."""

from __future__ import annotations

from sentry_sdk.utils import BadDsn, Dsn


def parse_dsn(text: str) -> Dsn:
    """A validated DSN, or ValueError with a message that never repeats the key.

    >>> parse_dsn("https://abc@o1.ingest.sentry.io/42").project_id
    '42'
    >>> parse_dsn("not a dsn")
    Traceback (most recent call last):
    ...
    ValueError: not a Sentry DSN: unsupported scheme '' (expected http or https)
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("not a Sentry DSN: empty")
    value = text.strip()
    try:
        dsn = Dsn(value)
    except BadDsn as exc:
        raise ValueError(f"not a Sentry DSN: {_explain(value, exc)}") from None
    except ValueError:
        # urlsplit rejects things like an invalid port number.
        raise ValueError("not a Sentry DSN: malformed URL (bad host or port)") from None
    if any(ch.isspace() for ch in value):
        raise ValueError("not a Sentry DSN: contains whitespace")
    return dsn


def _explain(value: str, exc: BadDsn) -> str:
    """Why a DSN failed, in words that do not quote the DSN itself (it may hold the key)."""
    message = str(exc)
    if message.startswith("Unsupported scheme"):
        scheme = value.split("://", 1)[0] if "://" in value else ""
        return f"unsupported scheme {scheme!r} (expected http or https)"
    if message.startswith("Invalid project"):
        return "the path must end with a numeric project id (…/PROJECT_ID)"
    if message == "Missing public key":
        return "missing public key (expected scheme://KEY@host/PROJECT_ID)"
    if message == "Missing hostname":
        return "missing host name"
    return "malformed"


def redacted(dsn: Dsn | str) -> str:
    """The DSN's scheme, host and project, never its key: safe for logs and status.

    >>> redacted("https://secretkey@o1.ingest.sentry.io/42")
    'https://o1.ingest.sentry.io/42'
    >>> redacted("http://k:s@127.0.0.1:8000/sub/7")
    'http://127.0.0.1:8000/sub/7'
    """
    parsed = dsn if isinstance(dsn, Dsn) else parse_dsn(dsn)
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path}{parsed.project_id}"

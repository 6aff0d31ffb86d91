"""Sort a failed model call into a class a user can act on (pure).

network (no answer: connection refused or reset, DNS, fetch failed, timeouts), auth (401,
403), rate_limit (429), overloaded (503, 529), server (other 5xx), client (other 4xx), other.
"""

from __future__ import annotations

from daemon.agents.decoding.records import ErrorClass

_TEXT_RULES: tuple[tuple[ErrorClass, tuple[str, ...]], ...] = (
    ("rate_limit", ("rate_limit", "rate limit", "ratelimit", "too many requests", "quota")),
    ("overloaded", ("overloaded", "service unavailable", "unavailable")),
    (
        "auth",
        (
            "unauthorized", "unauthenticated", "forbidden", "authentication", "api key",
            "api_key", "x-api-key", "permission", "credential", "invalid token",
        ),
    ),
    (
        "network",
        (
            "connection", "connect", "econnrefused", "econnreset", "enotfound", "eai_again",
            "ehostunreach", "enetunreach", "socket hang up", "fetch failed",
            "error sending request", "name does not resolve", "lookup address",
            "name or service not known", "dns", "timed out", "timeout", "etimedout",
            "network",
        ),
    ),
)


def classify_error(status_code: int | None, error: str | None) -> ErrorClass:
    """Class of a failed model call from its HTTP status and error text or ``error.type``.

    >>> classify_error(429, None), classify_error(529, "Overloaded"), classify_error(503, None)
    ('rate_limit', 'overloaded', 'overloaded')
    >>> classify_error(401, None), classify_error(500, None), classify_error(400, "too long")
    ('auth', 'server', 'client')
    >>> classify_error(None, "Connection error."), classify_error(None, "error sending request")
    ('network', 'network')
    >>> classify_error(None, "TypeError: fetch failed"), classify_error(None, "_OTHER")
    ('network', 'other')
    """
    if status_code is not None:
        if status_code == 429:
            return "rate_limit"
        if status_code in (401, 403, 407):
            return "auth"
        if status_code in (503, 529):
            return "overloaded"
        if 500 <= status_code <= 599:
            return "server"
        if status_code == 408:
            return "network"
        if 400 <= status_code <= 499:
            return "client"
    text = (error or "").lower()
    for error_class, needles in _TEXT_RULES:
        if any(needle in text for needle in needles):
            return error_class
    if text.isdigit():
        return classify_error(int(text), None) if text != str(status_code) else "other"
    return "other"

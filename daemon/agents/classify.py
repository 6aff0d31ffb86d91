"""Sort an API error into a small fixed set of classes (pure)."""

from __future__ import annotations

from daemon.agents.records import ErrorClass

_TEXT_RULES: tuple[tuple[ErrorClass, tuple[str, ...]], ...] = (
    ("rate_limit", ("rate_limit", "rate limit", "ratelimit", "too many requests", "quota")),
    (
        "context_overflow",
        (
            "context_length",
            "context length",
            "context window",
            "context_overflow",
            "prompt is too long",
            "maximum context",
            "too many tokens",
            "max_tokens",
        ),
    ),
    ("timeout", ("timeout", "timed out", "etimedout", "deadline", "econnaborted")),
    (
        "auth",
        ("auth", "api key", "api_key", "unauthorized", "forbidden", "permission", "credential"),
    ),
    (
        "provider_error",
        (
            "overloaded",
            "internal server error",
            "internal_error",
            "service unavailable",
            "bad gateway",
            "server_error",
            "api_error",
            "connection",
            "econnreset",
        ),
    ),
)


def classify_error(status_code: int | None, error: str | None) -> ErrorClass:
    """Class of a failed model call from its HTTP status and error text or ``error.type``.

    >>> classify_error(429, None)
    'rate_limit'
    >>> classify_error(400, "prompt is too long: 210000 tokens > 200000 maximum")
    'context_overflow'
    >>> classify_error(None, "Request timed out.")
    'timeout'
    >>> classify_error(529, "Overloaded")
    'provider_error'
    >>> classify_error(None, "_OTHER")
    'other'
    """
    if status_code == 429:
        return "rate_limit"
    if status_code in (408, 504):
        return "timeout"
    if status_code in (401, 403):
        return "auth"
    text = (error or "").lower()
    for error_class, needles in _TEXT_RULES:
        if any(needle in text for needle in needles):
            return error_class
    if status_code is not None and 500 <= status_code <= 599:
        return "provider_error"
    return "other"

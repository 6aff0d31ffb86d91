"""Where a delivered report can be seen in Sentry: a link built from the DSN's host and project.

Only the DSN's scheme, host and project id go into the link, never its key. Sentry's issue
search takes an event id and opens that event, so the link is a search for it.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit


def sentry_event_url(dsn: str | None, event_id: str) -> str | None:
    """The web address of ``event_id`` in the Sentry the DSN points at (None without a DSN).

    >>> sentry_event_url("https://k@o12.ingest.us.sentry.io/345", "ab12")
    'https://sentry.io/issues/?project=345&query=ab12'
    >>> sentry_event_url("http://k@127.0.0.1:9000/7", "ab12")
    'http://127.0.0.1:9000/issues/?project=7&query=ab12'
    >>> sentry_event_url(None, "ab12") is None
    True
    """
    if not dsn:
        return None
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    project = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if not host or not project.isdigit():
        return None
    query = urlencode({"project": project, "query": event_id})
    if host == "sentry.io" or host.endswith(".sentry.io"):
        return f"https://sentry.io/issues/?{query}"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host:
        netloc = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
    return f"{parts.scheme}://{netloc}/issues/?{query}"

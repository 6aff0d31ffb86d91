"""The listen address of the [otlp] and [metrics] listeners ("host:port"), pure."""

from __future__ import annotations

import re


def parse_listen_address(text: str) -> tuple[str, int] | None:
    """Split "host:port" or "[::1]:port"; None when it is not one.

    >>> parse_listen_address("127.0.0.1:4318")
    ('127.0.0.1', 4318)
    >>> parse_listen_address("[::1]:9464")
    ('::1', 9464)
    >>> parse_listen_address("nope") is None
    True
    """
    match = re.fullmatch(r"\[([0-9a-fA-F:]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", text.strip())
    if not match:
        return None
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 <= port <= 65535:
        return None
    return host, port
